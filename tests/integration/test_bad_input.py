"""Bad input over HTTP on both backends: always a 4xx in the one error shape, in Spanish, naming the field.

Never a 500. Ends with a small property-based fuzz of every write endpoint.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import strategies as st

from tests.integration.fuzzing import JSON_VALUES, NUMBERS, SKUS, never_5xx, shaped
from tests.integration.helpers import assert_ledger_clean, create_product, error_of, movement_rows

PRODUCT = {"sku": "NUEVO-1", "name": "Nuevo"}


@pytest.fixture(scope="module")
def refusing(module_client, module_admin, module_app):  # noqa: ANN001, ANN201
    """(client, admin headers, app) of one store per backend with YERBA-1 (10 in stock), for the tests
    whose every request must be refused. A refusal writes nothing and each of these tests checks
    that, so they share the store instead of each paying for a database and an app (they are ~270).
    The tests that write (an idempotent retry, Unicode round trips, the fuzz) get a store of their own."""
    create_product(module_client, module_admin, "YERBA-1", barcode="7790387000016", price="100", initial_stock=10)
    return module_client, module_admin, module_app


@pytest.fixture
def yerba(client, admin):  # noqa: ANN001, ANN201
    return create_product(client, admin, "YERBA-1", barcode="7790387000016", price="100", initial_stock=10)


def post(client, headers, path, body):  # noqa: ANN001, ANN201
    return client.post(path, json=body, headers=headers)


# (path, body, status, field the message must name)
BAD_BODIES = [
    # wrong types
    ("/api/inventory", {**PRODUCT, "price": "mucho"}, 422, "price"),
    ("/api/inventory", {**PRODUCT, "name": 123}, 422, "name"),
    ("/api/inventory", {**PRODUCT, "active": "tal vez"}, 422, "active"),
    ("/api/inventory", {**PRODUCT, "unit": "docena"}, 422, "unit"),
    ("/api/inventory", {**PRODUCT, "vat_rate": "19"}, 422, "vat_rate"),
    ("/api/inventory", {**PRODUCT, "barcode": 7790387000016}, 422, "barcode"),
    ("/api/inventory/YERBA-1/movements", {"type": "entrada", "quantity": "muchos"}, 422, "quantity"),
    ("/api/inventory/YERBA-1/movements", {"type": "robo", "quantity": 1}, 422, "type"),
    ("/api/inventory/YERBA-1/movements", {"type": "entrada", "quantity": [1]}, 422, "quantity"),
    ("/api/movements", {"lines": "YERBA-1"}, 422, "lines"),
    ("/api/movements", {"lines": [{"sku": "YERBA-1", "type": "entrada"}]}, 422, "lines[0].quantity"),
    ("/api/stocktake", {"lines": [{"sku": "YERBA-1", "counted": True}]}, 422, "counted"),
    ("/api/transfers", {"from_location": 1, "to_location": "SAL", "lines": [{"sku": "YERBA-1", "quantity": 1}]},
     422, "from_location"),
    ("/api/sales", {"ticket_id": 17, "lines": [{"sku": "YERBA-1", "quantity": 1}]}, 422, "ticket_id"),
    ("/api/sales", {"ticket_id": "T-1", "sold_at": "ayer", "lines": [{"sku": "YERBA-1", "quantity": 1}]}, 422,
     "sold_at"),
    ("/api/sales", {"ticket_id": "T-1", "sold_at": "2026-01-01T10:00:00",
                    "lines": [{"sku": "YERBA-1", "quantity": 1}]}, 422, "sold_at"),
    ("/api/sales", {"ticket_id": "T-1", "sold_at": [2026, 1, 1], "lines": [{"sku": "YERBA-1", "quantity": 1}]},
     422, "sold_at"),
    ("/api/sales", {"ticket_id": "T-1", "lines": ["YERBA-1"]}, 422, "lines[0]"),
    # negative money and quantities
    ("/api/inventory", {**PRODUCT, "price": -1}, 422, "price"),
    ("/api/inventory", {**PRODUCT, "cost": "-0.01"}, 422, "cost"),
    ("/api/inventory", {**PRODUCT, "min_stock": -5}, 422, "min_stock"),
    ("/api/inventory", {**PRODUCT, "initial_stock": -5}, 422, "initial_stock"),
    ("/api/inventory/YERBA-1/movements", {"type": "entrada", "quantity": 1, "unit_cost": -3}, 422, "unit_cost"),
    ("/api/sales", {"ticket_id": "T-1", "lines": [{"sku": "YERBA-1", "quantity": 1, "unit_price": "-5"}]}, 422,
     "lines[0].unit_price"),
    # bad barcodes
    ("/api/inventory", {**PRODUCT, "barcode": "7790387000017"}, 422, "barcode"),
    ("/api/inventory", {**PRODUCT, "barcode": "77903870"}, 422, "barcode"),
    ("/api/inventory", {**PRODUCT, "barcode": "779038700001"}, 422, "barcode"),
    ("/api/inventory", {**PRODUCT, "barcode": "ABC1234567890"}, 422, "barcode"),
    # unknown fields
    ("/api/inventory", {**PRODUCT, "color": "rojo"}, 422, "color"),
    ("/api/inventory", {**PRODUCT, "stock": 10}, 422, "stock"),
    ("/api/inventory/YERBA-1/movements", {"type": "entrada", "quantity": 1, "sku": "OTRO"}, 422, "sku"),
    ("/api/movements", {"lines": [{"sku": "YERBA-1", "type": "entrada", "quantity": 1, "precio": 3}]}, 422,
     "lines[0].precio"),
    ("/api/sales", {"ticket_id": "T-1", "total": 100, "lines": [{"sku": "YERBA-1", "quantity": 1}]}, 422, "total"),
    # huge numbers
    ("/api/inventory", {**PRODUCT, "price": 1e20}, 422, "price"),
    ("/api/inventory", {**PRODUCT, "price": 10**40}, 422, "price"),
    ("/api/inventory", {**PRODUCT, "price": "0.001"}, 422, "price"),
    ("/api/inventory/YERBA-1/movements", {"type": "entrada", "quantity": 10**12}, 422, "quantity"),
    ("/api/inventory/YERBA-1/movements", {"type": "ajuste", "quantity": -(10**12)}, 422, "quantity"),
    ("/api/stocktake", {"lines": [{"sku": "YERBA-1", "counted": "1e30"}]}, 422, "counted"),
    ("/api/sales", {"ticket_id": "T-1", "lines": [{"sku": "YERBA-1", "quantity": 1, "unit_price": "1e15"}]}, 422,
     "unit_price"),
    # NaN and Infinity as strings
    ("/api/inventory", {**PRODUCT, "price": "NaN"}, 422, "price"),
    ("/api/inventory", {**PRODUCT, "cost": "Infinity"}, 422, "cost"),
    ("/api/inventory", {**PRODUCT, "vat_rate": "NaN"}, 422, "vat_rate"),
    ("/api/inventory", {**PRODUCT, "initial_stock": "Infinity"}, 422, "initial_stock"),
    ("/api/inventory/YERBA-1/movements", {"type": "ajuste", "quantity": "-Infinity"}, 422, "quantity"),
    ("/api/inventory/YERBA-1/movements", {"type": "entrada", "quantity": "nan"}, 422, "quantity"),
    ("/api/stocktake", {"lines": [{"sku": "YERBA-1", "counted": "sNaN"}]}, 422, "counted"),
    ("/api/transfers", {"from_location": "DEP", "to_location": "SAL", "lines": [{"sku": "YERBA-1",
                                                                               "quantity": "Infinity"}]}, 422,
     "quantity"),
    # very long strings
    ("/api/inventory", {**PRODUCT, "name": "x" * 201}, 422, "name"),
    ("/api/inventory", {**PRODUCT, "sku": "X" * 41}, 422, "sku"),
    ("/api/inventory", {**PRODUCT, "brand": "x" * 101}, 422, "brand"),
    ("/api/inventory", {**PRODUCT, "category": "x" * 101}, 422, "category"),
    ("/api/inventory", {**PRODUCT, "supplier": "x" * 201}, 422, "supplier"),
    ("/api/inventory/YERBA-1/movements", {"type": "entrada", "quantity": 1, "reason": "x" * 100_000}, 422, "reason"),
    ("/api/inventory/YERBA-1/movements", {"type": "entrada", "quantity": 1, "reference": "x" * 101}, 422,
     "reference"),
    ("/api/inventory/YERBA-1/movements", {"type": "entrada", "quantity": 1, "location": "x" * 21}, 422, "location"),
    ("/api/sales", {"ticket_id": "T" * 81, "lines": [{"sku": "YERBA-1", "quantity": 1}]}, 422, "ticket_id"),
    # empty things
    ("/api/inventory", {**PRODUCT, "name": "   "}, 422, "name"),
    ("/api/inventory", {**PRODUCT, "sku": ""}, 422, "sku"),
    ("/api/inventory", {"name": "Sin SKU"}, 422, "sku"),
    ("/api/sales", {"ticket_id": "T-1", "lines": []}, 422, "lines"),
    ("/api/stocktake", {"lines": [{"sku": "", "counted": 1}]}, 422, "sku"),
    # unicode where it does not belong
    ("/api/inventory", {**PRODUCT, "sku": "ÑANDÚ-1"}, 422, "sku"),
    ("/api/inventory", {**PRODUCT, "barcode": "７７９０３８７０００００１６"}, 422, "barcode"),
    ("/api/inventory", {**PRODUCT, "name": "Yerba\u0000Mate"}, 422, "name"),
    ("/api/inventory/YERBA-1/movements", {"type": "entrada", "quantity": 1, "reason": "roto\u0000"}, 422, "reason"),
    ("/api/sales", {"ticket_id": "T-\u0000", "lines": [{"sku": "YERBA-1", "quantity": 1}]}, 422, "ticket_id"),
    ("/api/stocktake", {"lines": [{"sku": "YERBA\u00001", "counted": 1}]}, 422, "sku"),
]


@pytest.mark.parametrize(("path", "body", "status", "field"), BAD_BODIES,
                         ids=[f"{p.split('/')[-1]}-{f}-{i}" for i, (p, _, _, f) in enumerate(BAD_BODIES)])
def test_bad_body_is_refused_naming_the_field(refusing, path, body, status, field):
    client, admin, app = refusing
    rows = movement_rows(app)
    error = error_of(post(client, admin, path, body), status, code="datos_invalidos", mentions=field)
    if isinstance(error["details"], list):
        assert any(d["field"] == field or d["field"].endswith("." + field) or field in d["problem"]
                   for d in error["details"]), error["details"]
    assert movement_rows(app) == rows
    assert [p["sku"] for p in client.get("/api/inventory", headers=admin).json()["items"]] == ["YERBA-1"]


@pytest.mark.parametrize(("method", "path", "body", "mentions"), [
    ("GET", "/api/inventory/NO-EXISTE", None, "NO-EXISTE"),
    ("GET", "/api/inventory/7790895000010", None, "7790895000010"),
    ("PATCH", "/api/inventory/NO-EXISTE", {"price": 1}, "NO-EXISTE"),
    ("DELETE", "/api/inventory/NO-EXISTE", None, "NO-EXISTE"),
    ("POST", "/api/inventory/NO-EXISTE/movements", {"type": "entrada", "quantity": 1}, "NO-EXISTE"),
    ("POST", "/api/movements", {"lines": [{"sku": "NO-EXISTE", "type": "entrada", "quantity": 1}]}, "NO-EXISTE"),
    ("POST", "/api/stocktake", {"lines": [{"sku": "NO-EXISTE", "counted": 1}]}, "NO-EXISTE"),
    ("POST", "/api/transfers", {"from_location": "DEP", "to_location": "SAL",
                                "lines": [{"sku": "NO-EXISTE", "quantity": 1}]}, "NO-EXISTE"),
    ("POST", "/api/sales", {"ticket_id": "T-1", "lines": [{"sku": "NO-EXISTE", "quantity": 1}]}, "NO-EXISTE"),
    ("GET", "/api/movements?sku=NO-EXISTE", None, "NO-EXISTE"),
    ("GET", "/api/inventory/%C3%B1and%C3%BA", None, "ñandú"),
])
def test_unknown_product_is_404_naming_it(refusing, method, path, body, mentions):
    client, admin, app = refusing
    error = error_of(client.request(method, path, json=body, headers=admin), 404, code="no_encontrado",
                     mentions=mentions)
    assert error["details"]["sku"] == mentions
    assert movement_rows(app) == 1


def test_malformed_json_is_400(refusing):
    client, admin, app = refusing
    for raw in (b"{", b'{"sku": "A",}', b"{'sku': 'A'}", b'{"sku": "A" "name": "B"}', b"\xff\xfe{}", b"nul"):
        r = client.post("/api/inventory", content=raw, headers={**admin, "Content-Type": "application/json"})
        error_of(r, 400, code="json_invalido", mentions="JSON")


def test_json_the_parser_gives_up_on_is_400_in_spanish(refusing):
    client, admin, app = refusing
    too_long = b'{"sku": "A-1", "name": "A", "price": 1' + b"0" * 5000 + b"}"
    too_deep = b'{"sku": "A-1", "name": "A", "brand": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    for raw in (too_long, too_deep):
        r = client.post("/api/inventory", content=raw, headers={**admin, "Content-Type": "application/json"})
        error_of(r, 400, code="json_invalido", mentions="JSON")


def test_nan_and_infinity_literals_are_refused(refusing):
    client, admin, app = refusing
    for literal in (b"NaN", b"Infinity", b"-Infinity"):
        for path, template in (("/api/inventory", b'{"sku": "A-1", "name": "A", "price": %s}'),
                               ("/api/inventory/YERBA-1/movements", b'{"type": "ajuste", "quantity": %s}')):
            r = client.post(path, content=template % literal, headers={**admin, "Content-Type": "application/json"})
            assert r.status_code in (400, 422), r.text
            error_of(r, r.status_code)
    assert movement_rows(app) == 1


def test_a_10_mb_body_is_413(refusing):
    client, admin, app = refusing
    big = json.dumps({"lines": [{"sku": "YERBA-1", "type": "entrada", "quantity": 1, "reason": "x" * 400}] * 24_000})
    assert len(big) > 10_000_000
    r = client.post("/api/movements", content=big, headers={**admin, "Content-Type": "application/json"})
    error_of(r, 413, code="cuerpo_demasiado_grande")

    def chunks():  # no Content-Length: the limit must hold while streaming too
        for _ in range(10):
            yield b" " * 1_048_576

    r = client.post("/api/movements", content=chunks(), headers={**admin, "Content-Type": "application/json"})
    error_of(r, 413, code="cuerpo_demasiado_grande")
    assert client.get("/api/inventory/YERBA-1", headers=admin).json()["stock"] == "10.000"


def test_missing_body_is_422(refusing):
    client, admin, app = refusing
    for path in ("/api/inventory", "/api/inventory/YERBA-1/movements", "/api/movements", "/api/stocktake",
                 "/api/transfers", "/api/sales"):
        error_of(client.post(path, headers=admin), 422, code="datos_invalidos", mentions="obligatorio")
    error_of(client.patch("/api/inventory/YERBA-1", headers=admin), 422, code="datos_invalidos")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_non_json_content_type_is_refused(refusing, content_type):
    client, admin, app = refusing
    raw = json.dumps({"type": "entrada", "quantity": 1}).encode()
    r = client.post("/api/inventory/YERBA-1/movements", content=raw, headers={**admin, "Content-Type": content_type})
    assert 400 <= r.status_code < 500
    error_of(r, r.status_code)
    assert movement_rows(app) == 1


@pytest.mark.parametrize("body", [[], [1, 2], "texto", 42, None, True])
def test_body_that_is_not_an_object_is_422(refusing, body):
    client, admin, app = refusing
    error_of(post(client, admin, "/api/inventory/YERBA-1/movements", body), 422, code="datos_invalidos")


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": "muchos"}, "limit"),
    ({"limit": "1e3"}, "limit"),
    ({"limit": "9" * 5000}, "limit"),
    ({"low_stock": "quizás"}, "low_stock"),
    ({"active": "2"}, "active"),
    ({"q": "x" * 101}, "q"),
    ({"category": "x" * 101}, "category"),
    ({"q": "yerba\u0000"}, "q"),
    ({"cursor": "AA"}, "cursor"),  # decodes to a NUL character
])
def test_bad_inventory_query_is_422(refusing, params, field):
    client, admin, app = refusing
    error_of(client.get("/api/inventory", params=params, headers=admin), 422, mentions=field)


@pytest.mark.parametrize(("params", "field"), [
    ({"from": "ayer"}, "from"),
    ({"to": "2026-02-30"}, "to"),
    ({"from": "2026-01-01T25:00:00"}, "from"),
    ({"to": "9999-12-31"}, "to"),                         # the day after is past the calendar
    ({"from": "0001-01-01T00:00:00+05:00"}, "from"),     # before year 1 in UTC
    ({"type": "transferir"}, "type"),
    ({"cursor": "abc"}, "cursor"),
    ({"cursor": "-5"}, "cursor"),
    ({"cursor": "²"}, "cursor"),                          # a digit to str.isdigit, not to int()
    ({"cursor": "9" * 30}, "cursor"),                     # beyond any id
    ({"limit": 501}, "limit"),
    ({"actor": "x" * 121}, "actor"),
    ({"actor": "caja\u0000"}, "actor"),
    ({"reference": "REM\u0000"}, "reference"),
])
def test_bad_movements_query_is_4xx(refusing, params, field):
    client, admin, app = refusing
    error_of(client.get("/api/movements", params=params, headers=admin), 422, mentions=field)


def test_sale_dated_before_year_one_in_utc_is_refused(refusing):
    client, admin, app = refusing
    r = post(client, admin, "/api/sales", {"ticket_id": "T-1", "sold_at": "0001-01-01T00:00:00+05:00",
                                           "lines": [{"sku": "YERBA-1", "quantity": 1}]})
    error_of(r, 422, mentions="sold_at")
    assert movement_rows(app) == 1


@pytest.mark.parametrize(("path", "field"), [
    ("/api/inventory/" + "X" * 61, "sku"),
    ("/api/inventory/YERBA%00", "NUL"),
    ("/api/inventory/" + "X" * 61 + "/movements", "sku"),
])
def test_bad_path_is_4xx(refusing, path, field):
    client, admin, app = refusing
    r = client.get(path, headers=admin) if not path.endswith("movements") else post(
        client, admin, path, {"type": "entrada", "quantity": 1})
    error_of(r, 422, mentions=field)


def test_bad_idempotency_key_is_422(refusing):
    client, admin, app = refusing
    for key in ("x" * 201, "   "):
        r = post(client, {**admin, "Idempotency-Key": key}, "/api/inventory/YERBA-1/movements",
                 {"type": "entrada", "quantity": 1})
        error_of(r, 422, mentions="Idempotency-Key")
    assert movement_rows(app) == 1


def test_longest_idempotency_key_with_longest_key_name_works(client, make_key, app, yerba):
    headers = {"X-API-Key": make_key("deposito", name="n" * 80), "Idempotency-Key": "k" * 200}
    first = post(client, headers, "/api/inventory/YERBA-1/movements", {"type": "entrada", "quantity": 1})
    assert first.status_code == 201, first.text
    again = post(client, headers, "/api/inventory/YERBA-1/movements", {"type": "entrada", "quantity": 1})
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == first.json()
    assert movement_rows(app) == 2


def test_unicode_text_round_trips(client, admin):
    name = "Alfajor de maicena «Ñandú» 🧉 — café, 100 g"
    product = create_product(client, admin, "ALF-1", name=name, brand="Doña Clotilde", category="Golosinas ñ",
                             supplier="Distribuidora Ñuñoa S.R.L.")
    assert (product["name"], product["brand"], product["category"], product["supplier"]) == (
        name, "Doña Clotilde", "Golosinas ñ", "Distribuidora Ñuñoa S.R.L.")
    r = post(client, admin, "/api/inventory/ALF-1/movements",
             {"type": "entrada", "quantity": 3, "reason": "Llegó el camión 🚚", "reference": "Remito Nº 0001"})
    assert r.status_code == 201 and r.json()["reason"] == "Llegó el camión 🚚"
    assert client.get("/api/inventory", params={"q": "ñandú"}, headers=admin).json()["items"][0]["sku"] == "ALF-1"
    assert client.get("/api/movements", params={"reference": "Remito Nº 0001"}, headers=admin).json()["items"]


def test_unknown_route_and_wrong_method_use_the_error_shape(refusing):
    client, admin, app = refusing
    error_of(client.get("/api/no-existe", headers=admin), 404, code="ruta_inexistente", mentions="/api/no-existe")
    error_of(client.put("/api/inventory", json={}, headers=admin), 405, code="metodo_no_permitido", mentions="PUT")
    error_of(client.delete("/api/movements", headers=admin), 405, code="metodo_no_permitido")


def test_unicode_in_a_lone_surrogate_is_refused_in_spanish(refusing):
    client, admin, app = refusing
    raw = b'{"type": "entrada", "quantity": 1, "reason": "\\ud800"}'
    r = client.post("/api/inventory/YERBA-1/movements", content=raw,
                    headers={**admin, "Content-Type": "application/json"})
    error_of(r, 422, mentions="reason")


# --- fuzz -------------------------------------------------------------------------------------------

MOVEMENT_FIELDS = {"type": st.sampled_from(["entrada", "venta", "salida", "ajuste", "merma", "devolucion",
                                            "transferencia", "ENTRADA"]),
                   "quantity": NUMBERS, "location": st.sampled_from(["DEP", "sal", "GALPON", ""]),
                   "unit_cost": NUMBERS, "reason": st.text(max_size=20), "reference": st.text(max_size=20)}
LINE = shaped({"sku": SKUS, **MOVEMENT_FIELDS})
FUZZ_TARGETS = {
    "POST /api/inventory": ("POST", "/api/inventory", shaped({
        "sku": st.one_of(SKUS, st.from_regex(r"[A-Za-z0-9._-]{1,41}", fullmatch=True)), "name": st.text(max_size=30),
        "barcode": st.one_of(st.from_regex(r"[0-9]{8,13}", fullmatch=True), st.text(max_size=14)),
        "price": NUMBERS, "cost": NUMBERS, "vat_rate": NUMBERS, "min_stock": NUMBERS, "max_stock": NUMBERS,
        "initial_stock": NUMBERS, "unit": st.sampled_from(["u", "kg", "l", "U"]), "category": st.text(max_size=20),
        "supplier": st.one_of(st.text(max_size=20), st.sampled_from(["30-71234567-1", "20123456786"])),
        "location": st.text(max_size=5), "active": st.booleans()})),
    "PATCH /api/inventory/{sku}": ("PATCH", "/api/inventory/YERBA-1", shaped({
        "name": st.text(max_size=30), "price": NUMBERS, "unit": st.sampled_from(["u", "kg", "l"]),
        "min_stock": NUMBERS, "max_stock": NUMBERS, "barcode": st.text(max_size=14), "category": st.text(max_size=5),
        "supplier": st.text(max_size=11), "active": st.booleans(), "vat_rate": NUMBERS})),
    "POST /api/inventory/{sku}/movements": ("POST", "/api/inventory/YERBA-1/movements", shaped(MOVEMENT_FIELDS)),
    "POST /api/movements": ("POST", "/api/movements", shaped({"lines": st.lists(LINE, max_size=4)})),
    "POST /api/stocktake": ("POST", "/api/stocktake", shaped({
        "location": st.sampled_from(["DEP", "SAL", "X"]), "reason": st.text(max_size=10),
        "lines": st.lists(shaped({"sku": SKUS, "counted": NUMBERS}), max_size=3)})),
    "POST /api/transfers": ("POST", "/api/transfers", shaped({
        "from_location": st.sampled_from(["DEP", "SAL", "dep", "X"]), "to_location": st.sampled_from(["DEP", "SAL"]),
        "reason": st.text(max_size=10), "lines": st.lists(shaped({"sku": SKUS, "quantity": NUMBERS}), max_size=3)})),
    "POST /api/sales": ("POST", "/api/sales", shaped({
        "ticket_id": st.text(max_size=12), "location": st.sampled_from(["DEP", "SAL", "X"]),
        "sold_at": st.one_of(st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()), st.text(max_size=25)),
        "lines": st.lists(shaped({"sku": SKUS, "quantity": NUMBERS, "unit_price": NUMBERS}), max_size=3)})),
    "PATCH /api/prices/settings": ("PATCH", "/api/prices/settings", shaped({
        "default_markup": NUMBERS, "rounding": st.sampled_from(["1", "5", "10", "termina_9", "7", ""]),
        "monthly_inflation": NUMBERS, "apply_suggested_price": st.booleans(),
        "category_markups": st.dictionaries(st.text(max_size=8), NUMBERS, max_size=2)})),
    "POST /api/prices/bulk": ("POST", "/api/prices/bulk", shaped({
        "filter": shaped({"category": st.text(max_size=8), "brand": st.text(max_size=8),
                          "skus": st.lists(SKUS, max_size=3), "all_products": st.booleans()}),
        "operation": st.sampled_from(["price_percent", "cost_percent", "recompute", "x"]),
        "percent": NUMBERS, "update_prices": st.booleans(), "note": st.text(max_size=10)})),
}


@pytest.mark.parametrize("target", list(FUZZ_TARGETS))
def test_fuzzed_writes_never_answer_5xx(client, admin, app, target):
    method, path, fields = FUZZ_TARGETS[target]
    create_product(client, admin, "YERBA-1", barcode="7790387000016", price="100", initial_stock=1000)
    never_5xx(client, admin, target, method, path, st.one_of(JSON_VALUES, fields))
    assert_ledger_clean(app)
    assert Decimal(client.get("/api/inventory/YERBA-1", headers=admin).json()["stock"]) >= 0
