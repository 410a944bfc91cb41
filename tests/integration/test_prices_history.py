"""Store pricing settings, price history (PATCH /api/inventory, record_cost_change), markups — SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from minimarket.accounts.audit import Context
from minimarket.accounts.models import AuditEntry
from minimarket.catalog.service import find_product
from minimarket.catalog.price_history import PriceChange
from minimarket.pricing.service import record_cost_change
from minimarket.stock.models import Movement
from tests.integration.helpers import create_product, error_of

D = Decimal


def test_settings_defaults_then_admin_changes_them(client, admin):
    create_product(client, admin, "YERBA-1", category="Almacén")
    body = client.get("/api/prices/settings", headers=admin).json()
    assert body["default_markup"] == "35" and body["rounding"] == "10"
    assert body["monthly_inflation"] == "0" and body["apply_suggested_price"] is False
    assert body["category_markups"] == [{"category": "Almacén", "target_markup": None, "products": 1}]
    response = client.patch("/api/prices/settings", headers=admin, json={
        "default_markup": "40", "rounding": "termina_9", "monthly_inflation": "3.5",
        "apply_suggested_price": True, "category_markups": {"almacén": "30"}})
    assert response.status_code == 200, response.text
    body = client.get("/api/prices/settings", headers=admin).json()
    assert (body["default_markup"], body["rounding"], body["monthly_inflation"]) == ("40.00", "termina_9", "3.50")
    assert body["apply_suggested_price"] is True
    assert body["category_markups"][0]["target_markup"] == "30.00"


def test_bad_settings_are_422_naming_the_field(client, admin):
    error_of(client.patch("/api/prices/settings", headers=admin, json={"rounding": "7"}), 422, mentions="rounding")
    error_of(client.patch("/api/prices/settings", headers=admin, json={"default_markup": "-1"}), 422,
             mentions="default_markup")
    error_of(client.patch("/api/prices/settings", headers=admin, json={"monthly_inflation": "101"}), 422,
             mentions="monthly_inflation")
    error_of(client.patch("/api/prices/settings", headers=admin, json={"category_markups": {"Nada": "10"}}), 422,
             mentions="Nada")
    error_of(client.patch("/api/prices/settings", headers=admin, json={"rounding": None}), 422, mentions="rounding")
    assert client.get("/api/prices/settings", headers=admin).json()["rounding"] == "10"


def test_patch_inventory_writes_price_history(client, admin, app):
    create_product(client, admin, "YERBA-1", cost="1000", price="1640")
    assert client.patch("/api/inventory/yerba-1", headers=admin, json={"name": "Otro nombre"}).status_code == 200
    assert client.patch("/api/inventory/yerba-1", headers=admin, json={"cost": "1100.50"}).status_code == 200
    assert client.patch("/api/inventory/yerba-1", headers=admin, json={"price": "1800"}).status_code == 200
    history = client.get("/api/prices/YERBA-1/history", headers=admin).json()
    changes = history["changes"]
    assert [(c["cost_before"], c["cost_after"], c["price_before"], c["price_after"], c["reason"]) for c in changes] == [
        ("1100.50", "1100.50", "1640.00", "1800.00", "manual"),
        ("1000.00", "1100.50", "1640.00", "1640.00", "manual")]
    assert all(c["actor"] and c["batch_id"] is None for c in changes)
    # 1100.50 × 1.35 × 1.21 = 1797.66 → $1800 with the default rounding to $10
    assert history["suggested_price"] == "1800.00" and history["target_markup"] == "35"
    assert history["markup_source"] == "tienda" and history["below_target"] is False
    assert history["replacement_cost"] == "1100.50"  # inflation 0 % by default


def test_replacement_cost_uses_the_last_purchase(client, admin, app):
    create_product(client, admin, "YERBA-1", cost="1000", price="1640", initial_stock=5)
    client.patch("/api/prices/settings", headers=admin, json={"monthly_inflation": "4"})
    with app.state.db.write() as session:  # the purchase happened a month ago
        movement = session.scalars(select(Movement).where(Movement.type == "entrada")).one()
        movement.created_at = movement.created_at - timedelta(days=30.44)
    body = client.get("/api/prices/YERBA-1/history", headers=admin).json()
    assert D(body["days_since_purchase"]) >= D("30.44")
    assert D("1040.00") <= D(body["replacement_cost"]) <= D("1040.02")


def test_record_cost_change_writes_history_and_suggests(client, admin, app):
    create_product(client, admin, "YERBA-1", cost="1000", price="1640", category="Almacén")
    client.patch("/api/prices/settings", headers=admin, json={"category_markups": {"Almacén": "50"}})
    ctx = Context(actor="factura-test")
    with app.state.db.write() as session:
        product = find_product(session, "YERBA-1")
        suggested = record_cost_change(session, ctx, product=product, new_cost=D("1200.004"), reason="factura")
    # 1200 × 1.5 × 1.21 = 2178 → 2180; the store does not apply it automatically by default
    assert suggested == D("2180.00")
    body = client.get("/api/prices/YERBA-1/history", headers=admin).json()
    assert (body["cost"], body["price"], body["below_target"]) == ("1200.00", "1640.00", True)
    assert body["changes"][0]["reason"] == "factura" and body["changes"][0]["actor"] == "factura-test"
    client.patch("/api/prices/settings", headers=admin, json={"apply_suggested_price": True})
    with app.state.db.write() as session:
        product = find_product(session, "YERBA-1")
        assert record_cost_change(session, ctx, product=product, new_cost=D("1300"), reason="factura",
                                  reference="0003-00012345") == D("2360.00")
    body = client.get("/api/prices/YERBA-1/history", headers=admin).json()
    assert (body["cost"], body["price"]) == ("1300.00", "2360.00")
    assert body["changes"][0]["reference"] == "0003-00012345"
    with app.state.db.read() as session:
        actions = session.scalars(select(AuditEntry.action).where(AuditEntry.action == "price.cost_change")).all()
        assert len(actions) == 2


def test_record_cost_change_checks_limits_before_writing(client, admin, app):
    create_product(client, admin, "YERBA-1", cost="1000", price="1640")
    with app.state.db.write() as session:
        product = find_product(session, "YERBA-1")
        try:
            record_cost_change(session, Context(actor="t"), product=product, new_cost=D("999999999999"),
                               reason="factura")
        except Exception as exc:  # noqa: BLE001
            assert "price" in str(exc)
        else:
            raise AssertionError("a cost whose suggested price overflows NUMERIC(14,2) must be refused")
    with app.state.db.read() as session:
        assert session.scalars(select(PriceChange)).all() == []


def test_product_markup_override(client, admin):
    create_product(client, admin, "YERBA-1", cost="1000", price="1640", category="Almacén")
    response = client.put("/api/prices/YERBA-1/markup", headers=admin, json={"markup": "60"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["target_markup"], body["markup_source"], body["suggested_price"]) == ("60.00", "producto", "1940.00")
    assert body["below_target"] is True
    body = client.put("/api/prices/YERBA-1/markup", headers=admin, json={"markup": None}).json()
    assert body["markup_source"] == "tienda"
    error_of(client.put("/api/prices/YERBA-1/markup", headers=admin, json={"markup": "-5"}), 422, mentions="markup")
    error_of(client.get("/api/prices/NADA-1/history", headers=admin), 404, mentions="NADA-1")
