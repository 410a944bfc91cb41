"""The per-product totals behind the "bajo mínimo" and "sin stock" lists follow every movement and every
change of the minimum, carry their product's SKU (the lists' order) whoever inserts them, and `verify` notices a
total that left the ledger or a SKU that is not the product's."""

from __future__ import annotations

from sqlalchemy import delete, select, update

from minimarket.catalog.models import Product
from minimarket.stock.models import ProductStock
from minimarket.stock.totals import rebuild_totals
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


def _kept_skus(app) -> dict[str, str | None]:  # noqa: ANN001
    """Each totals row's copy of the SKU, by its product's own SKU."""
    with app.state.db.read() as session:
        rows = session.execute(select(Product.sku, ProductStock.sku)
                               .join(ProductStock, ProductStock.product_id == Product.id)).all()
    return dict(rows)


def _drop_row(app, sku: str) -> None:  # noqa: ANN001
    """As a product loaded by bulk SQL (an import, migrate-to): no totals row until something opens one."""
    with app.state.db.write() as session:
        product_id = session.execute(select(Product.id).where(Product.sku == sku)).scalar_one()
        session.execute(delete(ProductStock).where(ProductStock.product_id == product_id))


def test_every_totals_row_carries_its_products_sku(client, admin, app, backend: str) -> None:  # noqa: ANN001
    create_product(client, admin, "NUEVO-1", min_stock=1)  # a new product's row
    create_product(client, admin, "CON-STOCK-1", min_stock=1, initial_stock=3)
    for sku in ("PRIMER-MOV-1", "REHECHO-1", "PRECIO-1"):
        create_product(client, admin, sku, min_stock=1)
        _drop_row(app, sku)
    moved = client.post("/api/inventory/PRIMER-MOV-1/movements", headers=admin,
                        json={"type": "entrada", "quantity": 2, "reason": "primer movimiento"})
    assert moved.status_code == 201, moved.text  # the ledger's upsert inserts the row
    with app.state.db.write() as session:
        rebuild_totals(session)  # a bulk rebuild (the demo, a migration) opens REHECHO-1's and PRECIO-1's rows
    _drop_row(app, "PRECIO-1")
    priced = client.patch("/api/inventory/PRECIO-1", headers=admin, json={"price": "150.00"})
    assert priced.status_code == 200, priced.text  # on PostgreSQL productos_cambio (0015) opens the row
    kept = _kept_skus(app)
    expected = {sku: sku for sku in ("NUEVO-1", "CON-STOCK-1", "PRIMER-MOV-1", "REHECHO-1")}
    if backend == "postgresql":
        expected["PRECIO-1"] = "PRECIO-1"
    assert kept == expected
    moved = client.post("/api/inventory/PRIMER-MOV-1/movements", headers=admin,
                        json={"type": "salida", "quantity": 2, "reason": "venta"})
    assert moved.status_code == 201, moved.text  # an upsert that updates leaves the copy as it was
    assert _kept_skus(app)["PRIMER-MOV-1"] == "PRIMER-MOV-1"
    assert _skus(client, admin, low_stock="true") == sorted(set(expected) - {"CON-STOCK-1"})  # 0 ≤ 1, by SKU
    assert_ledger_clean(app)

    with app.state.db.write() as session:  # a copy that is not the product's: verify says so
        session.execute(update(ProductStock).where(ProductStock.sku == "NUEVO-1").values(sku="OTRO-1"))
    with app.state.db.read() as session:
        report = verify_ledger(session)
    assert [(m.sku, m.location) for m in report.mismatches] == [("NUEVO-1", "TOTAL")]
    assert "SKU OTRO-1" in report.mismatches[0].problem
    with app.state.db.write() as session:
        session.execute(update(ProductStock).where(ProductStock.sku == "OTRO-1").values(sku="NUEVO-1"))
    assert_ledger_clean(app)
