"""Look-alike input over HTTP on SQLite and PostgreSQL: what a person cannot see or did not mean is refused.

Before: `ßABC` was stored as SKU `SSABC` and `ıABC` as `IABC`; quantities `"1_000"` and
Arabic-Indic digits were accepted; categories with a right-to-left override, a zero-width
space, a BOM or a newline were created next to the visible one; `q=%` matched everything
and `q=SEC_1` matched `SEC-1`.
"""

from __future__ import annotations

import json

import pytest

from tests.integration.helpers import assert_ledger_clean, create_product, error_of, movement_rows


@pytest.fixture(autouse=True)
def _ledger_stays_consistent(app):  # noqa: ANN001, ANN202
    yield
    assert_ledger_clean(app)


def raw_post(client, path: str, body: str, headers: dict[str, str]):  # noqa: ANN001, ANN201
    """POST a JSON text as written (json= would re-encode numbers)."""
    return client.post(path, content=body.encode(), headers={**headers, "content-type": "application/json"})


@pytest.mark.parametrize("sku", ["ßABC", "ıABC", "ſKU", "ＡBC", "Ａ"])
def test_skus_are_checked_for_ascii_before_folding_case(client, admin, sku):
    error = error_of(client.post("/api/inventory", json={"sku": sku, "name": "Parecido"}, headers=admin), 422,
                     code="datos_invalidos", mentions="sku")
    assert error["details"][0]["field"] == "sku"
    assert client.get("/api/inventory", params={"active": "true"}, headers=admin).json()["items"] == []


def test_a_lookalike_never_finds_the_product_it_imitates(client, admin):
    create_product(client, admin, "SSABC")
    create_product(client, admin, "IABC")
    for ref in ("ßabc", "ıabc"):
        error_of(client.get(f"/api/inventory/{ref}", headers=admin), 404, code="no_encontrado")
        r = client.post(f"/api/inventory/{ref}/movements", json={"type": "entrada", "quantity": "1"}, headers=admin)
        assert r.status_code in (404, 422), r.text
    assert client.get("/api/inventory/ssabc", headers=admin).status_code == 200


@pytest.mark.parametrize("body", [
    '{"type": "entrada", "quantity": "1_000"}',
    '{"type": "entrada", "quantity": "١٢٣"}',
    '{"type": "entrada", "quantity": "۱۲"}',
    '{"type": "entrada", "quantity": "１２"}',
    '{"type": "entrada", "quantity": "1e3"}',
    '{"type": "entrada", "quantity": "1E2"}',
    '{"type": "entrada", "quantity": 1e3}',
    '{"type": "entrada", "quantity": 1.5E1}',
    '{"type": "entrada", "quantity": " 12"}',
    '{"type": "entrada", "quantity": "+5"}',
    '{"type": "entrada", "quantity": ".5"}',
    '{"type": "entrada", "quantity": "NaN"}',
    '{"type": "entrada", "quantity": "Infinity"}',
    '{"type": "entrada", "quantity": true}',
    '{"type": "entrada", "quantity": "12", "unit_cost": "1_000.50"}',
    '{"type": "entrada", "quantity": "12", "unit_cost": 1.5e2}',
])
def test_quantities_and_money_accept_only_plain_decimal_text(client, admin, app, body):
    create_product(client, admin, "KG-TEXTO", unit="kg")
    rows = movement_rows(app)
    field = "unit_cost" if "unit_cost" in body else "quantity"
    error = error_of(raw_post(client, "/api/inventory/KG-TEXTO/movements", body, admin), 422,
                     code="datos_invalidos", mentions=field)
    assert error["details"][0]["field"] == field
    assert movement_rows(app) == rows


@pytest.mark.parametrize(("body", "stored"), [
    ('{"type": "entrada", "quantity": "12.5"}', "12.500"),
    ('{"type": "entrada", "quantity": 12.5}', "12.500"),
    ('{"type": "entrada", "quantity": 7}', "7.000"),
    ('{"type": "entrada", "quantity": "0.001", "unit_cost": 1234.50}', "0.001"),
    ('{"type": "ajuste", "quantity": -0.25}', "-0.250"),
])
def test_plain_numbers_as_text_or_json_numbers_are_accepted(client, admin, body, stored):
    create_product(client, admin, "KG-PLANO", unit="kg", initial_stock="1")
    r = raw_post(client, "/api/inventory/KG-PLANO/movements", body, admin)
    assert r.status_code == 201, r.text
    assert r.json()["quantity"] == stored
    if "unit_cost" in body:
        assert r.json()["unit_cost"] == "1234.50"


def test_product_money_and_stock_fields_accept_only_plain_decimal_text(client, admin):
    for field, value in (("price", "1_000"), ("cost", "٣٠٠"), ("min_stock", "1e1"), ("initial_stock", "2_0"),
                         ("vat_rate", "2_1")):
        body = {"sku": "NUM-1", "name": "Número", field: value}
        error_of(client.post("/api/inventory", json=body, headers=admin), 422, mentions=field)
    r = raw_post(client, "/api/inventory", '{"sku": "NUM-1", "name": "Número", "price": 1.2e3}', admin)
    error_of(r, 422, mentions="price")


INVISIBLE = [
    ("\u202e", "dirección de texto"), ("\u2066", "dirección de texto"), ("\u200f", "dirección de texto"),
    ("\u200b", "ancho cero"), ("\u200d", "ancho cero"), ("\u2060", "ancho cero"),
    ("\ufeff", "BOM"), ("\n", "salto de línea"), ("\r", "retorno"), ("\t", "tabulación"), ("\x07", "control"),
    ("\u2028", "invisible"), ("\u00ad", "guion invisible"),
]


@pytest.mark.parametrize("field", ["category", "name", "brand", "supplier"])
def test_names_refuse_invisible_and_control_characters(client, admin, field):
    create_product(client, admin, "INVIS-2", category="Bebidas")
    for invisible, named in INVISIBLE:
        body = {"sku": "INVIS-1", "name": "Visible", field: f"Bebi{invisible}das"}
        error = error_of(client.post("/api/inventory", json=body, headers=admin), 422, code="datos_invalidos",
                         mentions=(field, named, f"U+{ord(invisible):04X}"))
        assert error["details"][0]["field"] == field
        r = client.patch("/api/inventory/INVIS-2", json={field: f"Bebi{invisible}das"}, headers=admin)
        error_of(r, 422, mentions=(field, f"U+{ord(invisible):04X}"))
    assert [c["name"] for c in client.get("/api/categories", headers=admin).json()] == ["Bebidas"]


def test_names_that_look_the_same_are_the_same_category(client, admin):
    spellings = ["Lácteos Frescos", "La\u0301cteos Frescos", "Lácteos  Frescos", "Lácteos\u00a0Frescos",
                 "lácteos frescos", " Lácteos\u2003Frescos "]
    for i, spelling in enumerate(spellings):
        create_product(client, admin, f"LAC-{i}", category=spelling)
    names = [c["name"] for c in client.get("/api/categories", headers=admin).json()]
    assert names.count("Lácteos Frescos") == 1 and len(names) == 1, names


def test_movement_text_fields_refuse_invisible_characters(client, admin, app):
    create_product(client, admin, "NOTA-1", initial_stock=5)
    rows = movement_rows(app)
    for field, value in (("reference", "REM\n-1"), ("reference", "REM\u202e1-"), ("reason", "roto\u200b"),
                         ("reason", "\ufeffmerma")):
        r = client.post("/api/inventory/NOTA-1/movements", json={"type": "merma", "quantity": 1, field: value},
                        headers=admin)
        error_of(r, 422, mentions=field)
    assert movement_rows(app) == rows
    ok = client.post("/api/inventory/NOTA-1/movements",
                     json={"type": "merma", "quantity": 1, "reason": "Se cayó del estante.\nDos envases rotos."},
                     headers=admin)
    assert ok.status_code == 201, ok.text


@pytest.mark.parametrize(("q", "expected"), [
    ("%", ["DESC-100"]), ("_", ["SEC_1"]), ("SEC_1", ["SEC_1"]), ("SEC-1", ["SEC-1"]), ("sec", ["SEC-1", "SEC_1"]),
    ("a%", []), ("0%", ["DESC-100"]), ("\\", []), ("S_C", []),
])
def test_search_treats_percent_and_underscore_as_text(client, admin, q, expected):
    create_product(client, admin, "SEC-1", name="Secador")
    create_product(client, admin, "SEC_1", name="Secante")
    create_product(client, admin, "DESC-100", name="Descuento 100% algodón")
    r = client.get("/api/inventory", params={"q": q}, headers=admin)
    assert r.status_code == 200, r.text
    assert sorted(item["sku"] for item in r.json()["items"]) == expected


def test_a_json_body_still_parses_every_other_number(client, admin):
    # Plain JSON numbers in non-decimal fields (limits, booleans) behave as before.
    r = raw_post(client, "/api/movements", json.dumps({"lines": [{"sku": "NADA", "type": "entrada",
                                                                   "quantity": 1.25}]}), admin)
    error_of(r, 404, mentions="NADA")


def test_a_lookalike_location_code_is_not_a_location(client, admin, app):
    create_product(client, admin, "LOC-1", initial_stock=5)
    rows = movement_rows(app)
    r = client.post("/api/inventory/LOC-1/movements", json={"type": "entrada", "quantity": 1, "location": "ſal"},
                    headers=admin)
    error_of(r, 422, mentions=("location", "ſal"))
    assert movement_rows(app) == rows
