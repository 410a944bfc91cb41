"""The per-product totals behind the "bajo mínimo" and "sin stock" lists follow every movement and every
change of the minimum, and `verify` notices a total that left the ledger."""

from __future__ import annotations

from sqlalchemy import update

from minimarket.stock.models import ProductStock
from minimarket.stock.verify import verify_ledger
from tests.integration.helpers import assert_ledger_clean, create_product


def _skus(client, admin, **filters) -> list[str]:  # noqa: ANN001, ANN003
    response = client.get("/api/inventory", headers=admin, params={"limit": 50, **filters})
    assert response.status_code == 200, response.text
    return [item["sku"] for item in response.json()["items"]]


def test_low_and_out_of_stock_lists_follow_movements_and_minimums(client, admin) -> None:  # noqa: ANN001
    create_product(client, admin, "LECHE-1", min_stock=5, initial_stock=10)
    create_product(client, admin, "PAN-1", min_stock=2, initial_stock=2)
    create_product(client, admin, "SAL-1", min_stock=1)  # never moved: 0 ≤ 1
    assert _skus(client, admin, low_stock="true") == ["PAN-1", "SAL-1"]
    assert _skus(client, admin, out_of_stock="true") == ["SAL-1"]
    assert _skus(client, admin, low_stock="false") == ["LECHE-1"]

    sold = client.post("/api/inventory/LECHE-1/movements", headers=admin,
                       json={"type": "salida", "quantity": 6, "reason": "rotura"})
    assert sold.status_code == 201, sold.text  # 4 ≤ 5
    assert _skus(client, admin, low_stock="true") == ["LECHE-1", "PAN-1", "SAL-1"]
    lowered = client.patch("/api/inventory/LECHE-1", headers=admin, json={"min_stock": 3})
    assert lowered.status_code == 200, lowered.text  # 4 > 3
    assert _skus(client, admin, low_stock="true") == ["PAN-1", "SAL-1"]
    assert _skus(client, admin, low_stock="true", q="pan") == ["PAN-1"]
    emptied = client.post("/api/inventory/PAN-1/movements", headers=admin,
                          json={"type": "salida", "quantity": 2, "reason": "vencido"})
    assert emptied.status_code == 201, emptied.text
    assert _skus(client, admin, out_of_stock="true") == ["PAN-1", "SAL-1"]
    assert_ledger_clean(client.app)


def test_verify_reports_a_total_that_left_the_ledger(client, admin, app) -> None:  # noqa: ANN001
    create_product(client, admin, "ARROZ-1", min_stock=1, initial_stock=4)
    assert_ledger_clean(app)
    with app.state.db.write() as session:
        session.execute(update(ProductStock).values(quantity=7))
    with app.state.db.read() as session:
        report = verify_ledger(session)
    assert [(m.sku, m.location) for m in report.mismatches] == [("ARROZ-1", "TOTAL")]
    assert "4" in report.mismatches[0].problem and "7" in report.mismatches[0].problem
    with app.state.db.write() as session:
        session.execute(update(ProductStock).values(quantity=4))
    assert_ledger_clean(app)
