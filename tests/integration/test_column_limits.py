"""Quantities and balances never leave their NUMERIC columns: refused before writing, the same on both backends.

Before: PostgreSQL answered 500 `numeric field overflow` (and reset the connection);
SQLite accepted the write and stored an inexact REAL, after which `minimarket verify` failed.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from minimarket.limits import MONEY, QUANTITY
from tests.integration.helpers import assert_ledger_clean, create_product, error_of, movement_rows, stock_by_location

TOP = "999999999.999"


@pytest.fixture(autouse=True)
def _ledger_stays_consistent(app):  # noqa: ANN001, ANN202
    yield
    assert_ledger_clean(app)


def test_the_limits_come_from_the_column_types():
    assert QUANTITY.maximum == Decimal(TOP)
    assert MONEY.maximum == Decimal("999999999999.99")


def test_an_entrada_over_a_full_initial_stock_is_409_naming_the_field_and_the_limit(client, admin, app):
    create_product(client, admin, "KG-TOPE", unit="kg", initial_stock=TOP)
    rows = movement_rows(app)
    r = client.post("/api/inventory/KG-TOPE/movements", json={"type": "entrada", "quantity": "1"}, headers=admin)
    error = error_of(r, 409, code="fuera_de_rango", mentions=("quantity", TOP))
    assert error["details"]["field"] == "quantity" and error["details"]["maximum"] == TOP
    assert movement_rows(app) == rows
    assert stock_by_location(client, admin, "KG-TOPE") == {"DEP": Decimal(TOP)}
    # The connection is still good: the next request on the same store works.
    r = client.post("/api/inventory/KG-TOPE/movements", json={"type": "venta", "quantity": "0.999"}, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["balance_after"] == "999999999.000"


def test_a_batch_that_would_overflow_is_refused_whole(client, admin, app):
    create_product(client, admin, "KG-LOTE", unit="kg")
    rows = movement_rows(app)
    lines = [{"sku": "KG-LOTE", "type": "entrada", "quantity": "999999999"}] * 2
    r = client.post("/api/movements", json={"lines": lines}, headers=admin)
    error_of(r, 409, code="fuera_de_rango", mentions=("lines[1].quantity", TOP))
    assert movement_rows(app) == rows
    assert stock_by_location(client, admin, "KG-LOTE") == {}


def test_a_transfer_into_a_full_location_is_refused(client, admin, app):
    create_product(client, admin, "KG-TRANS", unit="kg", initial_stock=TOP)
    r = client.post("/api/inventory/KG-TRANS/movements", json={"type": "entrada", "quantity": TOP, "location": "SAL"},
                    headers=admin)
    assert r.status_code == 201, r.text
    rows = movement_rows(app)
    body = {"from_location": "DEP", "to_location": "SAL", "lines": [{"sku": "KG-TRANS", "quantity": TOP}]}
    error = error_of(client.post("/api/transfers", json=body, headers=admin), 409, code="fuera_de_rango",
                     mentions=("lines[0].quantity", "SAL", TOP))
    assert error["details"]["location"] == "SAL"
    assert movement_rows(app) == rows
    assert stock_by_location(client, admin, "KG-TRANS") == {"DEP": Decimal(TOP), "SAL": Decimal(TOP)}


def test_a_stocktake_difference_that_does_not_fit_a_ledger_row_is_refused(client, admin, app):
    # With negative stock allowed the balance can sit at -TOP; counting TOP would need a
    # ledger row of 2 × TOP, which the `cantidad` column cannot hold.
    with app.state.db.write() as session:
        from minimarket.stock.policy import set_negative_stock_allowed

        set_negative_stock_allowed(session, allowed=True)
    create_product(client, admin, "KG-NEG", unit="kg")
    r = client.post("/api/inventory/KG-NEG/movements", json={"type": "salida", "quantity": TOP}, headers=admin)
    assert r.status_code == 201, r.text
    rows = movement_rows(app)
    r = client.post("/api/stocktake", json={"lines": [{"sku": "KG-NEG", "counted": TOP}]}, headers=admin)
    error_of(r, 409, code="fuera_de_rango", mentions=("lines[0].counted", TOP))
    assert movement_rows(app) == rows
    # ... and a sale below -TOP cannot happen either, even with negative stock allowed.
    r = client.post("/api/inventory/KG-NEG/movements", json={"type": "venta", "quantity": "0.001"}, headers=admin)
    error_of(r, 409, code="fuera_de_rango", mentions=("quantity", TOP))


def test_the_exact_limit_is_accepted_and_one_step_past_it_is_not(client, admin):
    create_product(client, admin, "KG-BORDE", unit="kg", initial_stock="999999999.998")
    ok = client.post("/api/inventory/KG-BORDE/movements", json={"type": "entrada", "quantity": "0.001"}, headers=admin)
    assert ok.status_code == 201 and ok.json()["balance_after"] == TOP, ok.text
    over = client.post("/api/inventory/KG-BORDE/movements", json={"type": "entrada", "quantity": "0.001"},
                       headers=admin)
    error_of(over, 409, code="fuera_de_rango")


@pytest.mark.parametrize(("field", "value", "limit"), [
    ("quantity", "1000000000", TOP), ("quantity", "-1000000000", TOP), ("unit_cost", "1000000000000", "999999999999.99"),
])
def test_a_value_too_large_for_its_column_is_422_naming_the_limit(client, admin, app, field, value, limit):
    create_product(client, admin, "KG-GRANDE", unit="kg", initial_stock="1")
    body = {"type": "ajuste", "quantity": "1", field: value}
    error = error_of(client.post("/api/inventory/KG-GRANDE/movements", json=body, headers=admin), 422,
                     code="datos_invalidos", mentions=(field, limit))
    assert error["details"][0]["field"] == field


@pytest.mark.parametrize(("field", "value", "limit"), [
    ("initial_stock", "1000000000", TOP), ("min_stock", "1000000000.5", TOP), ("price", "1000000000000", "999999999999.99"),
])
def test_product_values_too_large_for_their_columns_are_422(client, admin, field, value, limit):
    body = {"sku": "GRANDE", "name": "Grande", "unit": "kg", field: value}
    error_of(client.post("/api/inventory", json=body, headers=admin), 422, code="datos_invalidos",
             mentions=(field, limit))
