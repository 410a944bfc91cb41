"""The stock path end to end on both backends: create, move, sell, count, verify."""

from decimal import Decimal

from minimarket.stock.verify import verify_ledger


def test_product_life_keeps_ledger_and_balance_equal(client, admin, app):
    r = client.post("/api/inventory", json={"sku": "yer-1", "name": "Yerba 1 kg", "barcode": "7790387000016",
                                            "cost": "2500", "price": "4200", "initial_stock": 20}, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["stock"] == "20.000"
    r = client.post("/api/inventory/YER-1/movements", json={"type": "venta", "quantity": 3}, headers=admin)
    assert r.status_code == 201 and r.json()["balance_after"] == "17.000"
    r = client.post("/api/inventory/7790387000016/movements", json={"type": "salida", "quantity": 18}, headers=admin)
    assert r.status_code == 409
    assert r.json()["error"]["details"]["available"] == "17.000"
    with app.state.db.read() as session:
        report = verify_ledger(session)
    assert report.ok and report.movements_checked == 2
    assert Decimal(client.get("/api/inventory/yer-1", headers=admin).json()["stock"]) == 17
