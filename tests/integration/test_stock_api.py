"""Stock over HTTP on SQLite and PostgreSQL: movements, batches, the ledger, counts, transfers, sales, retries."""

from __future__ import annotations

from datetime import date, timedelta

from decimal import Decimal

import pytest

from tests.integration.helpers import (
    assert_ledger_clean,
    create_product,
    error_of,
    movement_rows,
    stock_by_location,
    store_today,
    total_stock,
)


@pytest.fixture(autouse=True)
def _ledger_stays_consistent(app):  # noqa: ANN001, ANN202
    yield
    assert_ledger_clean(app)


@pytest.fixture
def stocked(client, admin):  # noqa: ANN001, ANN201
    """YERBA (u) 10, AZUCAR (u) 5, QUESO (kg) 2.000, all in DEP."""
    create_product(client, admin, "YERBA", price="4200.00", cost="2500", initial_stock=10)
    create_product(client, admin, "AZUCAR", price="1100.50", initial_stock=5)
    create_product(client, admin, "QUESO", unit="kg", price="12000.00", initial_stock="2.000")


def move(client, headers, sku, **body):  # noqa: ANN001, ANN003, ANN201
    return client.post(f"/api/inventory/{sku}/movements", json=body, headers=headers)


# --- single movements -------------------------------------------------------------------------------


def test_each_movement_type_moves_stock_in_its_direction(client, admin, stocked, app):
    steps = [  # (type, quantity sent, signed ledger quantity, balance after)
        ("entrada", 5, "5.000", "15.000"),
        ("venta", 2, "-2.000", "13.000"),
        ("salida", 1, "-1.000", "12.000"),
        ("merma", 3, "-3.000", "9.000"),
        ("devolucion", 1, "1.000", "10.000"),
        ("ajuste", -4, "-4.000", "6.000"),
        ("ajuste", 2, "2.000", "8.000"),
    ]
    for movement_type, quantity, signed, after in steps:
        r = move(client, admin, "yerba", type=movement_type, quantity=quantity, reference="REM-1", reason="prueba")
        assert r.status_code == 201, r.text
        body = r.json()
        assert (body["sku"], body["type"], body["quantity"], body["balance_after"]) == ("YERBA", movement_type,
                                                                                        signed, after)
        assert (body["location"], body["reference"], body["actor"]) == ("DEP", "REM-1", "apikey:test-admin")
    assert total_stock(client, admin, "YERBA") == 8
    sale = client.get("/api/movements", params={"sku": "YERBA", "type": "venta"}, headers=admin).json()["items"]
    assert sale[0]["unit_price"] == "4200.00"  # a sale records the shelf price charged
    assert movement_rows(app) == 3 + len(steps)


@pytest.mark.parametrize("movement_type", ["entrada", "venta", "salida", "merma", "devolucion", "ajuste"])
@pytest.mark.parametrize("quantity", [0, "0.000"])
def test_zero_quantity_is_refused_for_every_type(client, admin, stocked, app, movement_type, quantity):
    rows = movement_rows(app)
    error_of(move(client, admin, "YERBA", type=movement_type, quantity=quantity), 422, mentions="quantity")
    assert movement_rows(app) == rows and total_stock(client, admin, "YERBA") == 10


@pytest.mark.parametrize("movement_type", ["entrada", "venta", "salida", "merma", "devolucion"])
def test_negative_quantity_is_refused_except_for_ajuste(client, admin, stocked, app, movement_type):
    error_of(move(client, admin, "YERBA", type=movement_type, quantity=-1), 422, mentions="quantity")
    assert total_stock(client, admin, "YERBA") == 10 and movement_rows(app) == 3


def test_unit_products_move_whole_units_and_weighed_ones_three_decimals(client, admin, stocked):
    for movement_type in ("entrada", "venta", "ajuste"):
        error_of(move(client, admin, "YERBA", type=movement_type, quantity="1.5"), 422, mentions=("quantity", "YERBA"))
    r = move(client, admin, "QUESO", type="venta", quantity="0.250")
    assert r.status_code == 201, r.text
    assert (r.json()["quantity"], r.json()["balance_after"]) == ("-0.250", "1.750")
    error_of(move(client, admin, "QUESO", type="venta", quantity="0.0001"), 422, mentions="quantity")
    assert total_stock(client, admin, "YERBA") == 10 and total_stock(client, admin, "QUESO") == Decimal("1.750")


@pytest.mark.parametrize("movement_type", ["venta", "salida", "merma"])
def test_oversell_is_409_with_available_and_requested_and_changes_nothing(client, admin, stocked, app, movement_type):
    error = error_of(move(client, admin, "AZUCAR", type=movement_type, quantity=6), 409, code="stock_insuficiente",
                     mentions="AZUCAR")
    assert Decimal(error["details"]["available"]) == 5 and Decimal(error["details"]["requested"]) == 6
    assert error["details"]["location"] == "DEP"
    error = error_of(move(client, admin, "AZUCAR", type="ajuste", quantity=-6), 409, code="stock_insuficiente")
    assert Decimal(error["details"]["available"]) == 5
    assert total_stock(client, admin, "AZUCAR") == 5 and movement_rows(app) == 3
    r = move(client, admin, "AZUCAR", type=movement_type, quantity=5)  # exactly what there is: allowed, down to 0
    assert r.status_code == 201 and r.json()["balance_after"] == "0.000"


def test_movement_at_another_location_and_by_barcode(client, admin):
    create_product(client, admin, "GAS-1", barcode="7790895000010")
    r = move(client, admin, "7790895000010", type="entrada", quantity=6, location="sal")
    assert r.status_code == 201 and r.json()["location"] == "SAL"
    error_of(move(client, admin, "GAS-1", type="venta", quantity=1, location="DEP"), 409, code="stock_insuficiente")
    error_of(move(client, admin, "GAS-1", type="entrada", quantity=1, location="GALPON"), 422,
             mentions=("GALPON", "DEP", "SAL"))
    assert stock_by_location(client, admin, "GAS-1") == {"SAL": Decimal(6)}


# --- batches ----------------------------------------------------------------------------------------


def test_batch_is_all_or_nothing(client, admin, stocked, app):
    before = {sku: stock_by_location(client, admin, sku) for sku in ("YERBA", "AZUCAR", "QUESO")}
    ledger = client.get("/api/movements", headers=admin).json()
    rows = movement_rows(app)
    r = client.post("/api/movements", headers=admin, json={"lines": [
        {"sku": "YERBA", "type": "entrada", "quantity": 5},
        {"sku": "QUESO", "type": "venta", "quantity": "0.500"},
        {"sku": "AZUCAR", "type": "venta", "quantity": 6},  # only 5: the whole batch is refused
    ]})
    error = error_of(r, 409, code="stock_insuficiente", mentions="AZUCAR")
    assert Decimal(error["details"]["available"]) == 5 and Decimal(error["details"]["requested"]) == 6
    assert {sku: stock_by_location(client, admin, sku) for sku in before} == before
    assert movement_rows(app) == rows
    assert client.get("/api/movements", headers=admin).json() == ledger

    r = client.post("/api/movements", headers=admin, json={"lines": [
        {"sku": "YERBA", "type": "entrada", "quantity": 5, "reference": "REM-77"},
        {"sku": "QUESO", "type": "venta", "quantity": "0.500"},
        {"sku": "azucar", "type": "venta", "quantity": 5},
    ]})
    assert r.status_code == 201, r.text
    body = r.json()
    assert [(m["sku"], m["balance_after"]) for m in body["movements"]] == [
        ("YERBA", "15.000"), ("QUESO", "1.500"), ("AZUCAR", "0.000")]
    assert {m["operation_id"] for m in body["movements"]} == {body["operation_id"]}


def test_batch_with_an_unknown_product_names_the_line_and_moves_nothing(client, admin, stocked, app):
    r = client.post("/api/movements", headers=admin, json={"lines": [
        {"sku": "YERBA", "type": "entrada", "quantity": 1},
        {"sku": "NO-EXISTE", "type": "entrada", "quantity": 1},
    ]})
    error_of(r, 404, mentions=("lines[1]", "NO-EXISTE"))
    assert movement_rows(app) == 3 and total_stock(client, admin, "YERBA") == 10


def test_a_one_line_batch_names_its_line_and_the_single_route_names_its_fields(client, admin, stocked, app):
    # A batch of one line is still a batch: its errors say which line and which field of it.
    unknown = client.post("/api/movements", headers=admin, json={"lines": [{"sku": "NO-EXISTE", "type": "entrada",
                                                                           "quantity": 1}]})
    assert error_of(unknown, 404, mentions=("NO-EXISTE",))["message"].startswith("lines[0].sku: ")
    unsold = client.post("/api/movements", headers=admin, json={"lines": [{"sku": "YERBA", "type": "venta",
                                                                          "quantity": 0}]})
    assert error_of(unsold, 422)["message"].startswith("lines[0].quantity: ")
    # The single route names the path's product as `sku` and the body's fields by their names.
    assert error_of(move(client, admin, "NO-EXISTE", type="entrada", quantity=1), 404)["message"].startswith("sku: ")
    assert error_of(move(client, admin, "YERBA", type="venta", quantity=0), 422)["message"].startswith("quantity: ")
    too_long = move(client, admin, "X" * 50, type="entrada", quantity=1)  # the path allows 60, a line's sku 40
    assert [d["field"] for d in error_of(too_long, 422)["details"]] == ["sku"]
    assert movement_rows(app) == 3 and total_stock(client, admin, "YERBA") == 10


def test_batch_of_501_lines_is_refused(client, admin, stocked, app):
    line = {"sku": "YERBA", "type": "entrada", "quantity": 1}
    error_of(client.post("/api/movements", json={"lines": [line] * 501}, headers=admin), 422, mentions="lines")
    error_of(client.post("/api/movements", json={"lines": []}, headers=admin), 422, mentions="lines")
    assert movement_rows(app) == 3


def test_the_same_product_twice_in_a_batch_accumulates(client, admin, stocked):
    r = client.post("/api/movements", headers=admin, json={"lines": [
        {"sku": "AZUCAR", "type": "venta", "quantity": 3},
        {"sku": "AZUCAR", "type": "venta", "quantity": 3},  # 6 > 5 in total
    ]})
    error_of(r, 409, code="stock_insuficiente")
    assert total_stock(client, admin, "AZUCAR") == 5


# --- the movements log ------------------------------------------------------------------------------


SALE_DAY = date.fromisoformat(store_today()) - timedelta(days=20)  # a till that sends its queue late
NEXT_DAY = SALE_DAY + timedelta(days=1)


@pytest.fixture
def history(client, admin, make_key):  # noqa: ANN001, ANN201
    """Movements by two actors, at two locations, on two days (a POS sale sent with its own time)."""
    deposito = {"X-API-Key": make_key("deposito", name="deposito-1")}
    create_product(client, admin, "YERBA", initial_stock=20, price="100")
    create_product(client, admin, "AZUCAR", initial_stock=20, price="50")
    assert move(client, deposito, "YERBA", type="entrada", quantity=5, reference="REM-001").status_code == 201
    assert move(client, deposito, "AZUCAR", type="merma", quantity=1, reason="roto").status_code == 201
    assert client.post("/api/transfers", headers=deposito, json={
        "from_location": "DEP", "to_location": "SAL", "lines": [{"sku": "YERBA", "quantity": 3}]}).status_code == 201
    r = client.post("/api/sales", headers=admin, json={
        "ticket_id": "0001-00000042", "location": "SAL", "sold_at": f"{SALE_DAY}T12:30:00-03:00",
        "lines": [{"sku": "YERBA", "quantity": 1}, {"sku": "AZUCAR", "quantity": 2, "unit_price": "45"}]})
    assert r.status_code == 409  # nothing of AZUCAR at SAL yet
    r = client.post("/api/sales", headers=admin, json={
        "ticket_id": "0001-00000042", "location": "SAL", "sold_at": f"{SALE_DAY}T12:30:00-03:00",
        "lines": [{"sku": "YERBA", "quantity": 1}]})
    assert r.status_code == 201, r.text
    return deposito


def ids(response) -> list[int]:  # noqa: ANN001
    assert response.status_code == 200, response.text
    return [m["id"] for m in response.json()["items"]]


def listed(client, headers, **params) -> list[dict]:  # noqa: ANN001, ANN003
    r = client.get("/api/movements", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def test_log_is_newest_first_and_filters(client, admin, history):
    everything = listed(client, admin)
    assert len(everything) == 7  # 2 opening entradas, entrada, merma, 2 transfer legs, venta
    assert [m["id"] for m in everything] == sorted((m["id"] for m in everything), reverse=True)

    assert {(m["sku"], m["type"]) for m in listed(client, admin, sku="azucar")} == {("AZUCAR", "entrada"),
                                                                                     ("AZUCAR", "merma")}
    assert [m["type"] for m in listed(client, admin, type="merma")] == ["merma"]
    assert [m["quantity"] for m in listed(client, admin, type="transferencia")] == ["3.000", "-3.000"]
    by_deposito = listed(client, admin, actor="apikey:deposito-1")
    assert len(by_deposito) == 4 and {m["actor"] for m in by_deposito} == {"apikey:deposito-1"}
    at_sal = listed(client, admin, location="sal")
    assert {(m["type"], m["quantity"]) for m in at_sal} == {("transferencia", "3.000"), ("venta", "-1.000")}
    assert [m["sku"] for m in listed(client, admin, reference="REM-001")] == ["YERBA"]
    assert [m["type"] for m in listed(client, admin, reference="ticket:0001-00000042")] == ["venta"]
    assert listed(client, admin, sku="YERBA", type="merma") == []
    error_of(client.get("/api/movements", params={"sku": "NO-EXISTE"}, headers=admin), 404, mentions="NO-EXISTE")
    error_of(client.get("/api/movements", params={"location": "GALPON"}, headers=admin), 422, mentions="GALPON")
    error_of(client.get("/api/movements", params={"type": "robo"}, headers=admin), 422, mentions="type")


def test_log_date_filters_use_store_days(client, admin, history):
    today = store_today()
    assert len(listed(client, admin, **{"from": today})) == 6
    assert len(listed(client, admin, to=today)) == 7  # `to` includes the whole day
    sale_day = listed(client, admin, **{"from": str(SALE_DAY), "to": str(SALE_DAY)})
    assert [(m["type"], m["reference"]) for m in sale_day] == [("venta", "ticket:0001-00000042")]
    assert listed(client, admin, **{"from": str(NEXT_DAY), "to": str(NEXT_DAY + timedelta(days=5))}) == []
    # 12:30 in Buenos Aires is 15:30 UTC: ISO date-times with an offset are honoured.
    assert len(listed(client, admin, **{"from": f"{SALE_DAY}T15:30:00+00:00", "to": str(SALE_DAY)})) == 1
    assert listed(client, admin, **{"from": f"{SALE_DAY}T15:30:01+00:00", "to": str(SALE_DAY)}) == []
    error_of(client.get("/api/movements", params={"from": "15/01/2026"}, headers=admin), 422, mentions="from")


def test_log_cursor_walks_every_row_once(client, admin, history):
    def walk(**params) -> list[int]:  # noqa: ANN003
        seen, cursor = [], None
        while True:
            r = client.get("/api/movements", params={**params, **({"cursor": cursor} if cursor else {})},
                           headers=admin)
            page = ids(r)
            assert 0 < len(page) <= params["limit"]
            seen.extend(page)
            cursor = r.json()["next_cursor"]
            if cursor is None:
                return seen

    assert walk(limit=2) == ids(client.get("/api/movements", headers=admin))
    assert walk(limit=1, sku="YERBA") == ids(client.get("/api/movements", params={"sku": "YERBA"}, headers=admin))
    assert len(walk(limit=1, sku="YERBA")) == 5  # filters hold across pages
    error_of(client.get("/api/movements", params={"cursor": "abc"}, headers=admin), 422, mentions="cursor")


# --- stocktake --------------------------------------------------------------------------------------


def test_stocktake_turns_differences_into_ajustes(client, admin, stocked, app):
    create_product(client, admin, "NUEVO")  # never had stock: counted 4 ⇒ +4
    r = client.post("/api/stocktake", headers=admin, json={"reason": "Recuento mensual", "lines": [
        {"sku": "yerba", "counted": 7}, {"sku": "AZUCAR", "counted": 5}, {"sku": "QUESO", "counted": "2.125"},
        {"sku": "NUEVO", "counted": 4}]})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["location"] == "DEP"
    lines = {line["sku"]: line for line in body["lines"]}
    assert {sku: (line["previous"], line["counted"], line["difference"]) for sku, line in lines.items()} == {
        "YERBA": ("10.000", "7.000", "-3.000"), "AZUCAR": ("5.000", "5.000", "0.000"),
        "QUESO": ("2.000", "2.125", "0.125"), "NUEVO": ("0.000", "4.000", "4.000")}
    assert lines["AZUCAR"]["movement_id"] is None  # no difference, no movement
    adjustments = listed(client, admin, type="ajuste")
    assert {m["id"]: (m["sku"], m["quantity"], m["balance_after"]) for m in adjustments} == {
        lines["YERBA"]["movement_id"]: ("YERBA", "-3.000", "7.000"),
        lines["QUESO"]["movement_id"]: ("QUESO", "0.125", "2.125"),
        lines["NUEVO"]["movement_id"]: ("NUEVO", "4.000", "4.000")}
    assert {(m["reason"], m["reference"], m["operation_id"]) for m in adjustments} == {
        ("Recuento mensual", "recuento", body["operation_id"])}
    assert movement_rows(app) == 6
    assert [total_stock(client, admin, s) for s in ("YERBA", "AZUCAR", "QUESO")] == [7, 5, Decimal("2.125")]


def test_stocktake_of_an_unchanged_shelf_writes_nothing_and_counts_per_location(client, admin, stocked, app):
    r = client.post("/api/stocktake", headers=admin, json={"lines": [{"sku": "YERBA", "counted": 10}]})
    assert r.status_code == 201 and r.json()["lines"][0]["movement_id"] is None
    assert movement_rows(app) == 3
    r = client.post("/api/stocktake", headers=admin,
                    json={"location": "SAL", "lines": [{"sku": "YERBA", "counted": 2}]})
    assert r.status_code == 201 and r.json()["lines"][0]["previous"] == "0.000"
    assert stock_by_location(client, admin, "YERBA") == {"DEP": 10, "SAL": 2}


def test_stocktake_refuses_bad_counts(client, admin, stocked, app):
    error_of(client.post("/api/stocktake", headers=admin, json={"lines": [{"sku": "YERBA", "counted": -1}]}), 422,
             mentions="counted")
    error_of(client.post("/api/stocktake", headers=admin, json={"lines": [{"sku": "YERBA", "counted": "2.5"}]}), 422,
             mentions="YERBA")
    error_of(client.post("/api/stocktake", headers=admin, json={"lines": [
        {"sku": "YERBA", "counted": 1}, {"sku": "yerba", "counted": 2}]}), 422, mentions="dos veces")
    error_of(client.post("/api/stocktake", headers=admin, json={"lines": [
        {"sku": "YERBA", "counted": 1}, {"sku": "NO-EXISTE", "counted": 2}]}), 404, mentions="NO-EXISTE")
    assert movement_rows(app) == 3 and total_stock(client, admin, "YERBA") == 10


# --- transfers --------------------------------------------------------------------------------------


def test_transfer_writes_two_legs_of_one_operation(client, admin, stocked):
    r = client.post("/api/transfers", headers=admin, json={
        "from_location": "dep", "to_location": "SAL", "lines": [{"sku": "YERBA", "quantity": 4},
                                                                {"sku": "QUESO", "quantity": "0.750"}]})
    assert r.status_code == 201, r.text
    body = r.json()
    legs = [(m["sku"], m["location"], m["type"], m["quantity"], m["balance_after"]) for m in body["movements"]]
    assert legs == [("YERBA", "DEP", "transferencia", "-4.000", "6.000"),
                    ("YERBA", "SAL", "transferencia", "4.000", "4.000"),
                    ("QUESO", "DEP", "transferencia", "-0.750", "1.250"),
                    ("QUESO", "SAL", "transferencia", "0.750", "0.750")]
    assert {m["operation_id"] for m in body["movements"]} == {body["operation_id"]}
    assert stock_by_location(client, admin, "YERBA") == {"DEP": 6, "SAL": 4}
    assert total_stock(client, admin, "YERBA") == 10  # a transfer never changes the total


def test_transfer_oversell_at_origin_moves_nothing(client, admin, stocked, app):
    r = client.post("/api/transfers", headers=admin, json={
        "from_location": "DEP", "to_location": "SAL",
        "lines": [{"sku": "YERBA", "quantity": 4}, {"sku": "AZUCAR", "quantity": 6}]})
    error = error_of(r, 409, code="stock_insuficiente", mentions="AZUCAR")
    assert Decimal(error["details"]["available"]) == 5 and Decimal(error["details"]["requested"]) == 6
    assert movement_rows(app) == 3
    assert stock_by_location(client, admin, "YERBA") == {"DEP": 10}
    assert stock_by_location(client, admin, "AZUCAR") == {"DEP": 5}


@pytest.mark.parametrize(("origin", "destination"), [("DEP", "DEP"), ("sal", "SAL"), ("DEP", " dep")])
def test_transfer_to_the_same_place_is_422(client, admin, stocked, app, origin, destination):
    r = client.post("/api/transfers", headers=admin, json={
        "from_location": origin, "to_location": destination, "lines": [{"sku": "YERBA", "quantity": 1}]})
    error_of(r, 422, mentions="to_location")
    assert movement_rows(app) == 3


@pytest.mark.parametrize("field", ["from_location", "to_location"])
def test_transfer_to_an_unknown_place_names_the_valid_codes(client, admin, stocked, app, field):
    body = {"from_location": "DEP", "to_location": "SAL", "lines": [{"sku": "YERBA", "quantity": 1}]}
    body[field] = "GALPON"
    error_of(client.post("/api/transfers", headers=admin, json=body), 422, mentions=("GALPON", "DEP", "SAL"))
    assert movement_rows(app) == 3


def test_transfer_refuses_zero_and_fractions_of_units(client, admin, stocked, app):
    for quantity, field in ((0, "quantity"), (-2, "quantity"), ("1.5", "YERBA")):
        r = client.post("/api/transfers", headers=admin, json={
            "from_location": "DEP", "to_location": "SAL", "lines": [{"sku": "YERBA", "quantity": quantity}]})
        error_of(r, 422, mentions=field)
    assert movement_rows(app) == 3


# --- POS sales --------------------------------------------------------------------------------------


def sale(client, headers, ticket, lines, **extra):  # noqa: ANN001, ANN003, ANN201
    return client.post("/api/sales", headers=headers, json={"ticket_id": ticket, "lines": lines, **extra})


def test_sale_total_is_price_times_quantity_with_overrides(client, admin, stocked):
    r = sale(client, admin, "0001-00000001", [
        {"sku": "YERBA", "quantity": 2},                              # 2 × 4200.00
        {"sku": "AZUCAR", "quantity": 3, "unit_price": "999.99"},     # 3 × 999.99 (promo)
        {"sku": "QUESO", "quantity": "0.250"},                        # 0.250 × 12000.00
    ])
    assert r.status_code == 201, r.text
    body = r.json()
    assert Decimal(body["total"]) == Decimal("8400.00") + Decimal("2999.97") + Decimal("3000.00")
    assert body["ticket_id"] == "0001-00000001"
    assert [(m["sku"], m["type"], m["quantity"], m["unit_price"]) for m in body["movements"]] == [
        ("YERBA", "venta", "-2.000", "4200.00"), ("AZUCAR", "venta", "-3.000", "999.99"),
        ("QUESO", "venta", "-0.250", "12000.00")]
    assert {m["reference"] for m in body["movements"]} == {"ticket:0001-00000001"}
    assert [total_stock(client, admin, s) for s in ("YERBA", "AZUCAR", "QUESO")] == [8, 2, Decimal("1.750")]


def test_a_resent_ticket_replays_the_first_result_and_moves_stock_once(client, admin, stocked, app, make_key):
    lines = [{"sku": "YERBA", "quantity": 2}, {"sku": "AZUCAR", "quantity": 1}]
    first = sale(client, admin, "T-100", lines)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    rows = movement_rows(app)
    again = sale(client, admin, "T-100", lines)
    assert again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    other_till = {"X-API-Key": make_key("deposito", name="caja-2")}
    assert sale(client, other_till, "T-100", lines).json() == first.json()  # the ticket is the key, whoever sends it
    assert movement_rows(app) == rows
    assert total_stock(client, admin, "YERBA") == 8 and total_stock(client, admin, "AZUCAR") == 4

    error_of(sale(client, admin, "T-100", [{"sku": "YERBA", "quantity": 3}]), 409, mentions="T-100")
    error_of(sale(client, admin, "T-100", lines, location="SAL"), 409, mentions="T-100")
    assert movement_rows(app) == rows


def test_a_refused_sale_can_be_sent_again_once_fixed(client, admin, stocked, app):
    error_of(sale(client, admin, "T-200", [{"sku": "AZUCAR", "quantity": 9}]), 409, code="stock_insuficiente")
    error_of(sale(client, admin, "T-200", [{"sku": "NO-EXISTE", "quantity": 1}]), 404, mentions="NO-EXISTE")
    assert movement_rows(app) == 3
    r = sale(client, admin, "T-200", [{"sku": "AZUCAR", "quantity": 5}])
    assert r.status_code == 201 and "Idempotent-Replayed" not in r.headers
    assert total_stock(client, admin, "AZUCAR") == 0


def test_selling_a_deactivated_product_is_409_and_sells_nothing(client, admin, stocked, app):
    assert client.delete("/api/inventory/AZUCAR", headers=admin).status_code == 200
    error_of(sale(client, admin, "T-300", [{"sku": "YERBA", "quantity": 1}, {"sku": "AZUCAR", "quantity": 1}]), 409,
             mentions=("lines[1]", "AZUCAR"))
    assert movement_rows(app) == 3 and total_stock(client, admin, "YERBA") == 10


def test_sale_dated_in_the_future_is_refused(client, admin, stocked):
    error_of(sale(client, admin, "T-400", [{"sku": "YERBA", "quantity": 1}], sold_at="2999-01-01T10:00:00-03:00"),
             422, mentions="sold_at")
    error_of(sale(client, admin, "T-401", [{"sku": "YERBA", "quantity": 1}], sold_at="2026-01-01T10:00:00"),
             422, mentions="sold_at")  # without an offset the hour is ambiguous


def test_sale_from_a_till_with_a_reset_clock_is_refused(client, admin, stocked):
    long_ago = date.fromisoformat(store_today()) - timedelta(days=120)
    error_of(sale(client, admin, "T-402", [{"sku": "YERBA", "quantity": 1}], sold_at=f"{long_ago}T10:00:00-03:00"),
             422, mentions="sold_at")
    error_of(sale(client, admin, "T-403", [{"sku": "YERBA", "quantity": 1}], sold_at="1970-01-01T00:00:00-03:00"),
             422, mentions="sold_at")


# --- Idempotency-Key --------------------------------------------------------------------------------

IDEMPOTENT_WRITES = {
    "movement": ("/api/inventory/YERBA/movements", {"type": "entrada", "quantity": 2},
                 {"type": "entrada", "quantity": 3}),
    "batch": ("/api/movements", {"lines": [{"sku": "YERBA", "type": "venta", "quantity": 1},
                                           {"sku": "AZUCAR", "type": "entrada", "quantity": 1}]},
              {"lines": [{"sku": "YERBA", "type": "venta", "quantity": 2}]}),
    "stocktake": ("/api/stocktake", {"lines": [{"sku": "YERBA", "counted": 8}]},
                  {"lines": [{"sku": "YERBA", "counted": 9}]}),
    "transfer": ("/api/transfers", {"from_location": "DEP", "to_location": "SAL",
                                    "lines": [{"sku": "YERBA", "quantity": 1}]},
                 {"from_location": "DEP", "to_location": "SAL", "lines": [{"sku": "YERBA", "quantity": 2}]}),
    "product": ("/api/inventory", {"sku": "NUEVO-1", "name": "Nuevo", "initial_stock": 3},
                {"sku": "NUEVO-1", "name": "Nuevo", "initial_stock": 4}),
}


@pytest.mark.parametrize("write", list(IDEMPOTENT_WRITES))
def test_idempotency_key_replays_and_guards_its_body(client, admin, stocked, app, make_key, write):
    path, body, other_body = IDEMPOTENT_WRITES[write]
    key = {**admin, "Idempotency-Key": f"retry-{write}-0001"}
    first = client.post(path, json=body, headers=key)
    assert first.status_code == 201, first.text
    assert "Idempotent-Replayed" not in first.headers
    rows = movement_rows(app)
    products = client.get("/api/inventory", headers=admin).json()

    again = client.post(path, json=body, headers=key)
    assert again.status_code == 201, again.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    assert movement_rows(app) == rows
    assert client.get("/api/inventory", headers=admin).json() == products

    error_of(client.post(path, json=other_body, headers=key), 409, code="idempotencia_conflicto",
             mentions=f"retry-{write}-0001")
    assert movement_rows(app) == rows

    # Another API key's namespace is its own: the same Idempotency-Key runs a new operation there.
    encargado = {"X-API-Key": make_key("encargado", name="encargado-1"), "Idempotency-Key": f"retry-{write}-0001"}
    other = client.post(path, json=body if write != "product" else {**body, "sku": "NUEVO-2"}, headers=encargado)
    assert other.status_code == 201, other.text
    assert "Idempotent-Replayed" not in other.headers
    assert other.json() != first.json()
    if write != "stocktake":  # a second identical count finds nothing to adjust
        assert movement_rows(app) > rows


def test_two_tills_with_the_same_key_name_keep_separate_idempotency_keys(client, admin, stocked, app, make_key):
    till_1 = {"X-API-Key": make_key("deposito", name="caja"), "Idempotency-Key": "venta-0001"}
    till_2 = {"X-API-Key": make_key("deposito", name="caja"), "Idempotency-Key": "venta-0001"}
    rows = movement_rows(app)
    first = client.post("/api/inventory/YERBA/movements", json={"type": "venta", "quantity": 1}, headers=till_1)
    second = client.post("/api/inventory/YERBA/movements", json={"type": "venta", "quantity": 2}, headers=till_2)
    assert first.status_code == 201 and second.status_code == 201, (first.text, second.text)
    assert "Idempotent-Replayed" not in second.headers
    assert movement_rows(app) == rows + 2


def test_a_failed_write_does_not_burn_its_idempotency_key(client, admin, stocked, app):
    key = {**admin, "Idempotency-Key": "retry-oversell"}
    error_of(client.post("/api/inventory/AZUCAR/movements", json={"type": "venta", "quantity": 6}, headers=key), 409,
             code="stock_insuficiente")
    assert client.post("/api/inventory/AZUCAR/movements", json={"type": "entrada", "quantity": 1},
                       headers=key).status_code == 201
    r = client.post("/api/inventory/AZUCAR/movements", json={"type": "venta", "quantity": 6}, headers=key)
    error_of(r, 409, code="idempotencia_conflicto")
    assert total_stock(client, admin, "AZUCAR") == 6


# --- reference lists --------------------------------------------------------------------------------


def test_locations_and_categories(client, admin):
    locations = client.get("/api/locations", headers=admin)
    assert locations.status_code == 200
    assert locations.json() == [{"code": "DEP", "name": "Depósito", "branch": "Casa central", "active": True},
                                {"code": "SAL", "name": "Salón de ventas", "branch": "Casa central", "active": True}]
    assert client.get("/api/categories", headers=admin).json() == []
    create_product(client, admin, "A-1", category="Limpieza")
    create_product(client, admin, "A-2", category="Almacén")
    create_product(client, admin, "A-3", category="almacén")
    categories = client.get("/api/categories", headers=admin).json()
    assert [(c["name"], c["products"]) for c in categories] == [("Almacén", 2), ("Limpieza", 1)]
    assert all(isinstance(c["id"], int) for c in categories)
