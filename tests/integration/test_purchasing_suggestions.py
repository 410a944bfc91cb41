"""Reorder suggestions over HTTP on SQLite and PostgreSQL: forecast + stock + supplier terms
(order days, lead time, pack size, minimum order) → what to order, grouped and sorted, with reasons."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from minimarket.ar.dates import store_day_start
from minimarket.catalog.models import Product
from minimarket.suppliers.models import WEEKDAYS, SupplierCode
from tests.integration.helpers import create_product, error_of
from tests.integration.test_forecast_api import _write_history

DAYS = 60


def _sells(app, sku: str, per_day: int, left: int) -> None:
    plan = {d: [("venta", -per_day)] for d in range(1, DAYS + 1)}
    plan[DAYS + 1] = [("entrada", per_day * DAYS + left)]
    _write_history(app, sku, plan)


def _order_days_three_days_apart() -> list[str]:
    """Two order days, the nearer one 3 days after the store's today: the next chance to order is 3 days away
    whatever weekday the test runs on (with fixed days, a Wednesday's next Thursday is 1 day away)."""
    today = store_day_start().date()
    return [WEEKDAYS[(today + timedelta(days=ahead)).weekday()] for ahead in (3, 6)]


def test_suggestions_for_one_supplier(app, client, admin) -> None:  # noqa: ANN001
    order_days = _order_days_three_days_apart()
    supplier = client.post("/api/suppliers", headers=admin, json={
        "name": "Distribuidora Norte", "order_days": order_days, "lead_time_days": 2,
        "min_order": "100000"}).json()
    other = client.post("/api/suppliers", headers=admin, json={"name": "Otro"}).json()
    create_product(client, admin, "YERBA", name="Yerba 1 kg", supplier="Distribuidora Norte", cost="3000")
    create_product(client, admin, "FIDEOS", name="Fideos 500 g", supplier="Distribuidora Norte", cost="900")
    create_product(client, admin, "SOBRA", name="Con stock de sobra", supplier="Distribuidora Norte")
    create_product(client, admin, "NUEVO", name="Sin historia", supplier="Distribuidora Norte", min_stock=6,
                   max_stock=24, initial_stock=2)
    create_product(client, admin, "AJENO", name="De otro proveedor", supplier="Otro")
    _sells(app, "YERBA", 6, left=8)  # 8 left at 6 a day: 1.3 days of cover
    _sells(app, "FIDEOS", 3, left=10)  # 3.3 days, under 3 × (2 days of lead + 3 to the next order day)
    _sells(app, "SOBRA", 1, left=200)
    _sells(app, "AJENO", 5, left=0)
    with app.state.db.write() as session:
        yerba = session.scalar(select(Product.id).where(Product.sku == "YERBA"))
        session.add(SupplierCode(supplier_id=supplier["id"], code="Y-1", product_id=yerba, pack_size=10))
    assert client.post("/api/forecast/run", headers=admin, json={"days": DAYS}).status_code == 200

    body = client.get(f"/api/purchasing/suggestions?supplier={supplier['id']}", headers=lectura(client, admin)).json()
    assert [g["supplier"] for g in body["suppliers"]] == ["Distribuidora Norte"]
    group = body["suppliers"][0]
    assert sorted(group["order_days"], key=WEEKDAYS.index) == sorted(order_days, key=WEEKDAYS.index)
    assert group["lead_time_days"] == 2
    lines = group["lines"]
    assert [line["sku"] for line in lines] == ["YERBA", "FIDEOS", "NUEVO"]  # most urgent first, no SOBRA
    yerba_line = lines[0]
    assert Decimal(yerba_line["quantity"]) % 10 == 0 and Decimal(yerba_line["quantity"]) >= 6 * 16 - 8
    assert yerba_line["daily_forecast"] == 6.0 and yerba_line["days_of_cover"] == 1.3
    assert any("bultos de 10" in why for why in yerba_line["why"])
    assert lines[2]["method"] == "min_max" and lines[2]["quantity"] == "22"  # up to max 24 from 2
    total = sum(Decimal(line["line_cost"]) for line in lines)
    assert Decimal(group["total_cost"]) == total
    assert group["reaches_min_order"] == (total >= Decimal("100000"))

    everyone = client.get("/api/purchasing/suggestions", headers=admin).json()
    assert {g["supplier"] for g in everyone["suppliers"]} == {"Distribuidora Norte", "Otro"}
    assert other["id"] in {g["supplier_id"] for g in everyone["suppliers"]}


def lectura(client, admin) -> dict[str, str]:  # noqa: ANN001
    from minimarket.accounts.audit import Context
    from minimarket.accounts.keys import create_api_key

    app = client.app
    with app.state.db.write() as session:
        _, key = create_api_key(session, Context(actor="test"), name="lectura-sugerencias", role="lectura")
    return {"X-API-Key": key}


def test_bad_suggestion_input_names_the_field(client, admin) -> None:  # noqa: ANN001
    error_of(client.get("/api/purchasing/suggestions?supplier=Nadie", headers=admin), 422, mentions="supplier")
    error_of(client.get("/api/purchasing/suggestions?cover_days=0", headers=admin), 422, mentions="cover_days")
    error_of(client.get("/api/purchasing/suggestions?service_level=1.5", headers=admin), 422,
             mentions="service_level")
