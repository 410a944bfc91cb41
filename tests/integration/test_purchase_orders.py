"""Purchase orders over HTTP on SQLite and PostgreSQL: suggestions → order → send → partial receipt →
stock, on-order and costs right; a retried receipt moves stock once; bad input is a Spanish 422."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from hypothesis import strategies as st
from sqlalchemy import func, select

from minimarket.catalog.models import Product
from minimarket.catalog.price_history import PriceChange
from minimarket.stock.models import Movement
from minimarket.suppliers.models import SupplierCode
from tests.integration.fuzzing import FUZZ_EXAMPLES, JSON_VALUES, NUMBERS, never_5xx, shaped
from tests.integration.helpers import assert_ledger_clean, create_product, error_of, movement_rows, total_stock
from tests.integration.test_purchasing_suggestions import _sells

DAYS = 60
BASE = "/api/purchase-orders"


def _suggested(client, admin, supplier_id: int) -> dict[str, dict]:  # noqa: ANN001
    body = client.get(f"/api/purchasing/suggestions?supplier={supplier_id}&all_lines=true", headers=admin).json()
    return {line["sku"]: line for group in body["suppliers"] for line in group["lines"]}


@pytest.fixture
def plain(app, client, admin) -> dict:  # noqa: ANN001
    """Distribuidora Norte with YERBA (cases of 10, cost 3000) and FIDEOS (cost 900); no sales history."""
    supplier = client.post("/api/suppliers", headers=admin, json={
        "name": "Distribuidora Norte", "phone": "+54 9 11 5555-1234", "lead_time_days": 2}).json()
    create_product(client, admin, "YERBA", name="Yerba 1 kg", supplier="Distribuidora Norte", cost="3000",
                   price="4500")
    create_product(client, admin, "FIDEOS", name="Fideos 500 g", supplier="Distribuidora Norte", cost="900")
    with app.state.db.write() as session:
        yerba = session.scalar(select(Product.id).where(Product.sku == "YERBA"))
        session.add(SupplierCode(supplier_id=supplier["id"], code="Y-1", product_id=yerba, pack_size=10))
    return supplier


@pytest.fixture
def norte(app, client, admin, plain) -> dict:  # noqa: ANN001
    """The same supplier with two fast sellers running out, and their forecast."""
    _sells(app, "YERBA", 6, left=8)
    _sells(app, "FIDEOS", 3, left=4)
    assert client.post("/api/forecast/run", headers=admin, json={"days": DAYS}).status_code == 200
    return plain


def test_suggestions_to_order_to_partial_receipt(app, client, admin, norte) -> None:  # noqa: ANN001
    before = _suggested(client, admin, norte["id"])
    wanted = Decimal(before["YERBA"]["quantity"])
    assert wanted > 20 and wanted % 10 == 0 and before["YERBA"]["on_order"] == "0"

    created = client.post(BASE, headers=admin, json={"supplier": str(norte["id"]), "from_suggestions": True})
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["state"] == "borrador" and order["supplier"] == "Distribuidora Norte"
    lines = {line["sku"]: line for line in order["lines"]}
    assert set(lines) == {"YERBA", "FIDEOS"}
    assert Decimal(lines["YERBA"]["quantity"]) == wanted and lines["YERBA"]["pack_size"] == 10
    assert Decimal(lines["YERBA"]["packs"]) == wanted / 10 and "bultos de 10" in lines["YERBA"]["reason"]
    assert Decimal(order["total_cost"]) == sum(Decimal(x["line_cost"]) for x in order["lines"])
    # A draft is not ordered yet: the suggestion does not change.
    assert _suggested(client, admin, norte["id"])["YERBA"]["on_order"] == "0"

    # Edit while draft: FIDEOS by hand, YERBA in packs.
    patched = client.patch(f"{BASE}/{order['id']}", headers=admin, json={"lines": [
        {"sku": "YERBA", "packs": int(wanted / 10)}, {"sku": "fideos", "quantity": 30}], "notes": "Por la tarde"})
    assert patched.status_code == 200, patched.text
    assert [(x["sku"], Decimal(x["quantity"])) for x in patched.json()["lines"]] == [("YERBA", wanted),
                                                                                   ("FIDEOS", Decimal(30))]
    sent = client.post(f"{BASE}/{order['id']}/send", headers=admin)
    assert sent.status_code == 200, sent.text
    assert sent.json()["state"] == "enviado" and sent.json()["expected_on"] is not None
    error_of(client.patch(f"{BASE}/{order['id']}", headers=admin, json={"notes": "x"}), 409, code="pedido_estado",
             mentions="borrador")
    after_send = _suggested(client, admin, norte["id"])
    assert Decimal(after_send["YERBA"]["on_order"]) == wanted and after_send["YERBA"]["quantity"] == "0"

    text = client.get(f"{BASE}/{order['id']}/whatsapp.txt", headers=admin)
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain")
    assert f"pedido N° {order['id']}" in text.text and f"{wanted / 10:.0f} bultos x 10" in text.text
    assert "[Y-1] Yerba 1 kg" in text.text and "Por la tarde" in text.text and "$ " in text.text
    pdf = client.get(f"{BASE}/{order['id']}.pdf", headers=admin)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF") and len(pdf.content) > 1000

    stock_before, rows_before = total_stock(client, admin, "YERBA"), movement_rows(app)
    key = {**admin, "Idempotency-Key": "entrega-1"}
    first = client.post(f"{BASE}/{order['id']}/receive", headers=key, json={"lines": [{"sku": "YERBA", "quantity": 20}]})
    assert first.status_code == 200, first.text
    again = client.post(f"{BASE}/{order['id']}/receive", headers=key, json={"lines": [{"sku": "YERBA", "quantity": 20}]})
    assert again.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    assert total_stock(client, admin, "YERBA") == stock_before + 20 and movement_rows(app) == rows_before + 1
    got = first.json()["order"]
    assert got["state"] == "recibido_parcial" and first.json()["received"] == {"YERBA": "20.000"}
    yerba = next(x for x in got["lines"] if x["sku"] == "YERBA")
    assert Decimal(yerba["received"]) == 20 and Decimal(yerba["pending"]) == wanted - 20
    assert Decimal(got["pending_units"]) == wanted - 20 + 30
    assert Decimal(_suggested(client, admin, norte["id"])["YERBA"]["on_order"]) == wanted - 20
    with app.state.db.read() as session:
        moved = session.execute(select(Movement.type, Movement.quantity).where(
            Movement.reference == f"pedido:{order['id']}")).all()
    assert [tuple(m) for m in moved] == [("entrada", Decimal(20))]

    over = client.post(f"{BASE}/{order['id']}/receive", headers=admin, json={"lines": [{"sku": "YERBA",
                                                                                       "quantity": str(wanted)}]})
    error_of(over, 422, mentions=("lines[0].quantity", "allow_over", "quedan"))
    # The rest, at a new cost: the product's cost and its price history follow.
    rest = client.post(f"{BASE}/{order['id']}/receive", headers=admin, json={"lines": [
        {"sku": "YERBA", "quantity": str(wanted - 20), "unit_cost": "3300.00"}, {"sku": "FIDEOS", "quantity": 30}]})
    assert rest.status_code == 200, rest.text
    assert rest.json()["order"]["state"] == "recibido" and rest.json()["order"]["pending_units"] == "0.000"
    assert [c["sku"] for c in rest.json()["cost_changes"]] == ["YERBA"]
    assert client.get("/api/inventory/YERBA", headers=admin).json()["cost"] == "3300.00"
    with app.state.db.read() as session:
        reasons = session.scalars(select(PriceChange.reason).join(Product).where(Product.sku == "YERBA")).all()
    assert "pedido" in reasons
    assert _suggested(client, admin, norte["id"])["YERBA"]["on_order"] == "0"
    error_of(client.post(f"{BASE}/{order['id']}/receive", headers=admin), 409, code="pedido_estado",
             mentions="recibido")
    listed = client.get(f"{BASE}?supplier={norte['id']}&state=recibido", headers=admin).json()
    assert [o["id"] for o in listed["items"]] == [order["id"]]
    assert_ledger_clean(app)


def test_short_full_cancelled_and_depot_deliveries(app, client, admin, make_key, plain) -> None:  # noqa: ANN001
    """One store, four orders: closed short (what is missing shown, no longer on order), received in full
    by default, cancelled (twice is a 409), and received by the depósito (who may not change costs)."""
    order = client.post(BASE, headers=admin, json={"supplier": "Distribuidora Norte", "lines": [
        {"sku": "YERBA", "quantity": 20}, {"sku": "FIDEOS", "quantity": 12, "unit_cost": "950"}]}).json()
    error_of(client.post(f"{BASE}/{order['id']}/receive", headers=admin), 409, code="pedido_estado", mentions="envia")
    client.post(f"{BASE}/{order['id']}/send", headers=admin)
    # FIDEOS comes short and the store closes the order.
    closed = client.post(f"{BASE}/{order['id']}/receive", headers=admin, json={
        "lines": [{"sku": "YERBA", "quantity": 20}, {"sku": "FIDEOS", "quantity": 7}], "close": True}).json()
    assert closed["order"]["state"] == "recibido" and closed["order"]["pending_units"] == "0.000"
    fideos = next(x for x in closed["order"]["lines"] if x["sku"] == "FIDEOS")
    assert fideos["pending"] == "5.000" and fideos["received"] == "7.000"  # shown, no longer on order
    assert _suggested(client, admin, plain["id"])["FIDEOS"]["on_order"] == "0"
    # The order's cost 950 differs from the product's 900: the receipt records it.
    assert client.get("/api/inventory/FIDEOS", headers=admin).json()["cost"] == "950.00"

    order = client.post(BASE, headers=admin, json={"supplier": plain["id"], "lines": [
        {"sku": "FIDEOS", "quantity": 5}]}).json()
    client.post(f"{BASE}/{order['id']}/send", headers=admin)
    before = total_stock(client, admin, "FIDEOS")
    full = client.post(f"{BASE}/{order['id']}/receive", headers=admin, json={"location": "DEP"})  # all that is due
    assert full.status_code == 200, full.text
    assert full.json()["order"]["state"] == "recibido"
    assert total_stock(client, admin, "FIDEOS") == before + 5

    other = client.post(BASE, headers=admin, json={"supplier": plain["id"], "lines": [{"sku": "FIDEOS",
                                                                                      "quantity": 5}]}).json()
    client.post(f"{BASE}/{other['id']}/send", headers=admin)
    cancelled = client.post(f"{BASE}/{other['id']}/cancel", headers=admin, json={"reason": "No tenía stock"})
    assert cancelled.json()["state"] == "cancelado" and cancelled.json()["cancel_reason"] == "No tenía stock"
    error_of(client.post(f"{BASE}/{other['id']}/cancel", headers=admin, json={"reason": "otra vez"}), 409,
             code="pedido_estado", mentions="cancelado")
    assert _suggested(client, admin, plain["id"])["FIDEOS"]["on_order"] == "0"

    deposito = {"X-API-Key": make_key("deposito", name="deposito-pedidos")}
    order = client.post(BASE, headers=admin, json={"supplier": "1", "lines": [{"sku": "FIDEOS", "quantity": 4}]}).json()
    client.post(f"{BASE}/{order['id']}/send", headers=admin)
    error_of(client.post(f"{BASE}/{order['id']}/receive", headers=deposito, json={
        "lines": [{"sku": "FIDEOS", "quantity": 4, "unit_cost": "1"}]}), 403, mentions=("unit_cost", "deposito"))
    ok = client.post(f"{BASE}/{order['id']}/receive", headers=deposito, json={"lines": [{"sku": "FIDEOS", "quantity": 4}]})
    assert ok.status_code == 200, ok.text
    assert client.get("/api/inventory/FIDEOS", headers=admin).json()["cost"] == "950.00"  # as the first order left it


def test_bad_input_is_a_spanish_422_naming_the_field(app, client, admin, plain) -> None:  # noqa: ANN001
    def bad(body: dict, *mentions: str) -> None:
        error_of(client.post(BASE, headers=admin, json=body), 422, mentions=mentions)

    bad({"supplier": "Nadie", "lines": [{"sku": "YERBA", "quantity": 10}]}, "supplier", "Nadie")
    bad({"supplier": "1"}, "lines")
    bad({"lines": [{"sku": "YERBA", "quantity": 10}]}, "supplier")
    bad({"supplier": "1", "lines": [{"sku": "YERBA", "quantity": 15}]}, "lines[0].quantity", "bultos de 10", "10 o 20")
    bad({"supplier": "1", "lines": [{"sku": "FIDEOS", "packs": 2}]}, "lines[0].pack_size")
    bad({"supplier": "1", "lines": [{"sku": "FIDEOS", "quantity": 1.5}]}, "quantity", "entera")
    bad({"supplier": "1", "lines": [{"sku": "NOEXISTE", "quantity": 1}]}, "lines[0].sku", "NOEXISTE")
    bad({"supplier": "1", "lines": [{"sku": "FIDEOS", "quantity": 1}, {"sku": "fideos", "quantity": 2}]},
        "lines[1].sku", "línea 0")
    bad({"supplier": "1", "from_suggestions": True, "skus": ["FIDEOS", "OTRO"]}, "skus", "OTRO")
    bad({"supplier": "1", "from_suggestions": True, "lines": [{"sku": "FIDEOS", "quantity": 1}]}, "lines")
    raw = client.post(BASE, headers={**admin, "Content-Type": "application/json"},
                      content=b'{"supplier": "1", "lines": [{"sku": "FIDEOS", "quantity": 1e3}]}')
    error_of(raw, 422, mentions=("quantity", "exponente"))
    bad({"supplier": "1", "lines": [{"sku": "FIDEOS", "quantity": "1_000"}]}, "quantity")
    bad({"supplier": "1", "lines": [{"sku": "FIDEOS", "quantity": 1, "unit_cost": "-5"}]}, "unit_cost")
    order = client.post(BASE, headers=admin, json={"supplier": "1", "lines": [{"sku": "FIDEOS", "quantity": 3}]})
    assert order.status_code == 201, order.text
    oid = order.json()["id"]
    error_of(client.patch(f"{BASE}/{oid}", headers=admin, json={"invoice_id": 999}), 422, mentions="invoice_id")
    error_of(client.get(f"{BASE}/999999", headers=admin), 404, mentions="999999")
    error_of(client.get(f"{BASE}/abc.pdf", headers=admin), 422, mentions="order_id")
    client.post(f"{BASE}/{oid}/send", headers=admin)
    rows = movement_rows(app)
    error_of(client.post(f"{BASE}/{oid}/receive", headers=admin, json={"lines": [{"sku": "YERBA", "quantity": 1}]}),
             422, mentions=("lines[0].sku", "no está en el pedido"))
    error_of(client.post(f"{BASE}/{oid}/receive", headers=admin, json={"lines": [{"sku": "FIDEOS", "quantity": 0}]}),
             422, mentions="quantity")
    error_of(client.post(f"{BASE}/{oid}/receive", headers=admin, json={"location": "NOPE"}), 422, mentions="NOPE")
    assert movement_rows(app) == rows
    with app.state.db.read() as session:
        assert session.scalar(select(func.count()).select_from(PriceChange).where(PriceChange.reason == "pedido")) == 0


ORDER_LINES = st.lists(shaped({"sku": st.sampled_from(["YERBA", "fideos", "NO", ""]), "quantity": NUMBERS,
                               "packs": NUMBERS, "pack_size": NUMBERS, "unit_cost": NUMBERS}), max_size=3)
FUZZED = (
    ("POST", BASE, shaped({"supplier": st.sampled_from(["1", "Distribuidora Norte", "nadie", "9" * 12]),
                           "lines": ORDER_LINES, "from_suggestions": st.booleans(),
                           "skus": st.lists(st.sampled_from(["YERBA", "X"]), max_size=2), "cover_days": NUMBERS,
                           "notes": st.text(max_size=10)})),
    ("PATCH", f"{BASE}/1", shaped({"lines": ORDER_LINES, "notes": st.text(max_size=10), "invoice_id": NUMBERS})),
    ("POST", f"{BASE}/2/receive", shaped({"lines": st.lists(shaped({
        "sku": st.sampled_from(["YERBA", "FIDEOS", "x"]), "quantity": NUMBERS, "unit_cost": NUMBERS}), max_size=2),
        "location": st.sampled_from(["DEP", "sal", "X", ""]), "allow_over": st.booleans(), "close": st.booleans(),
        "invoice_id": NUMBERS})),
)


def test_fuzzed_order_writes_never_answer_5xx(app, client, admin, plain) -> None:  # noqa: ANN001
    """One bounded run over the three write bodies (a third of FUZZ_EXAMPLES each): never a 5xx, the ledger clean."""
    lines = [{"sku": "YERBA", "quantity": 10_000}, {"sku": "FIDEOS", "quantity": 10_000}]
    for _ in range(2):
        assert client.post(BASE, headers=admin, json={"supplier": "1", "lines": lines}).status_code == 201
    client.post(f"{BASE}/2/send", headers=admin)
    for method, path, fields in FUZZED:
        _fuzz(client, admin, method, path, fields)
    assert_ledger_clean(app)


def _fuzz(client, admin, method: str, path: str, fields) -> None:  # noqa: ANN001
    never_5xx(client, admin, f"{method} {path}", method, path, st.one_of(JSON_VALUES, fields),
              examples=max(10, FUZZ_EXAMPLES // 3))


def test_concurrent_deliveries_of_one_order_bring_the_goods_in_once(app, client, admin, make_key, plain) -> None:  # noqa: ANN001
    """Four clerks receive everything that is due at once, each with its own key (real threads): the order row
    lock makes one of them take it all; the others find nothing pending and are refused, stock moved once."""
    order = client.post(BASE, headers=admin, json={"supplier": "1", "lines": [
        {"sku": "YERBA", "quantity": 30}, {"sku": "FIDEOS", "quantity": 12}]}).json()
    client.post(f"{BASE}/{order['id']}/send", headers=admin)
    clerks = [{"X-API-Key": make_key("deposito", name=f"deposito-{n}"), "Idempotency-Key": f"llegada-{n}"}
              for n in range(4)]
    rows, start = movement_rows(app), threading.Barrier(len(clerks))

    def receive(headers: dict[str, str]) -> int:
        start.wait()
        return client.post(f"{BASE}/{order['id']}/receive", headers=headers).status_code

    with ThreadPoolExecutor(len(clerks)) as pool:
        answers = sorted(pool.map(receive, clerks))
    assert answers == [200, 409, 409, 409]  # the order is recibido: nothing more comes in
    assert movement_rows(app) == rows + 2
    assert total_stock(client, admin, "YERBA") == 30 and total_stock(client, admin, "FIDEOS") == 12
    assert_ledger_clean(app)


def test_an_order_whose_invoice_brought_the_goods_is_not_received_again(app, client, admin, plain) -> None:  # noqa: ANN001
    invoice = client.post("/api/invoices", headers=admin, json={
        "supplier": "1", "issuer_cuit": "30-71234567-1", "type": "A", "point_of_sale": 3, "number": 77,
        "date": "2026-11-20", "net": {"21": "900.00"}, "vat": {"21": "189.00"}, "total": "1089.00",
        "lines": [{"sku": "FIDEOS", "quantity": 1, "unit_cost": "900.00"}]})
    assert invoice.status_code == 201, invoice.text
    assert client.post(f"/api/invoices/{invoice.json()['id']}/confirm", headers=admin).status_code == 200
    order = client.post(BASE, headers=admin, json={"supplier": "1", "lines": [{"sku": "FIDEOS", "quantity": 1}]}).json()
    client.post(f"{BASE}/{order['id']}/send", headers=admin)
    linked = client.patch(f"{BASE}/{order['id']}", headers=admin, json={"invoice_id": invoice.json()["id"]})
    assert linked.status_code == 200 and linked.json()["invoice_id"] == invoice.json()["id"]
    stock, rows = total_stock(client, admin, "FIDEOS"), movement_rows(app)
    error_of(client.post(f"{BASE}/{order['id']}/receive", headers=admin), 409, code="mercaderia_ya_ingresada",
             mentions=("confirmada", "otra vez"))
    assert total_stock(client, admin, "FIDEOS") == stock and movement_rows(app) == rows
