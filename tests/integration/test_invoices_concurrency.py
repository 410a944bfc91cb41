"""The same invoice posted and confirmed by several clients at once (real threads; SQLite and PostgreSQL):
one draft, one confirmation, the goods in once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from minimarket.invoices.models import Invoice
from minimarket.stock.models import Movement
from tests.integration.helpers import assert_ledger_clean, total_stock
from tests.integration.invoice_helpers import invoice_body, supplier_store

CLIENTS = 6


def test_posting_and_confirming_concurrently_brings_goods_in_once(client, admin, app, make_key):
    supplier_store(client, admin)
    keys = [{"X-API-Key": make_key("encargado", name=f"encargado-{n}")} for n in range(CLIENTS)]
    body = invoice_body(lines=invoice_body()["lines"][:2], net={"21": "12399.96", "10.5": "2295.27"},
                        vat={"21": "2603.99", "10.5": "241.00"}, total="17640.22")
    start = threading.Barrier(CLIENTS)

    def clerk(headers: dict[str, str]) -> tuple[int, int, int]:
        start.wait()
        posted = client.post("/api/invoices", json=body, headers=headers)
        if posted.status_code == 201:
            invoice_id = posted.json()["id"]
        else:
            assert posted.status_code == 409, posted.text
            assert posted.json()["error"]["code"] == "factura_duplicada"
            invoice_id = posted.json()["error"]["details"]["existing_id"]
        confirmed = client.post(f"/api/invoices/{invoice_id}/confirm", headers=headers)
        if confirmed.status_code != 200:
            assert confirmed.status_code == 409, confirmed.text
            assert confirmed.json()["error"]["code"] == "factura_ya_confirmada"
        return posted.status_code, invoice_id, confirmed.status_code

    with ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(clerk, keys))
    posts, ids, confirms = zip(*results, strict=True)
    assert sorted(posts) == [201] + [409] * (CLIENTS - 1)
    assert len(set(ids)) == 1
    assert sorted(confirms) == [200] + [409] * (CLIENTS - 1)
    assert total_stock(client, admin, "YERBA-1") == 12 and total_stock(client, admin, "AZUCAR-1") == 3
    with app.state.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Invoice)) == 1
        assert session.scalar(select(func.count()).select_from(Movement).where(Movement.type == "entrada")) == 2
    assert_ledger_clean(app)
