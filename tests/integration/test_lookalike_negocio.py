"""Look-alike input on the negocio routes (suppliers, invoices, prices), on SQLite and PostgreSQL.

Before: these schemas had their own Decimal types, so `"1_000"`, Arabic-Indic digits and
`1e3` were amounts, and a supplier named with a right-to-left override or a zero-width
space was created beside the visible one. Same rules as the stock routes
(tests/integration/test_lookalike_text.py): plain decimal text, visible one-line names.
"""

from __future__ import annotations

import json
from decimal import Decimal

from tests.integration.helpers import create_product, error_of
from tests.integration.invoice_helpers import CUIT, invoice_body, supplier_store
from tests.integration.test_lookalike_text import INVISIBLE, raw_post

NOT_PLAIN = ['"1_000"', '"١٢٣"', '"۱۲"', '"１２"', '"1e3"', "1e3", "1.5E1", '" 12"', '"+5"', '".5"', '"NaN"', "true"]


def _supplier_names(client, admin) -> list[str]:  # noqa: ANN001
    return sorted(s["name"] for s in client.get("/api/suppliers", headers=admin).json()["items"])


def test_supplier_minimum_order_accepts_only_plain_decimal_text(client, admin):
    for number in NOT_PLAIN:  # one store for every case: each is refused before anything is written
        body = f'{{"name": "Distribuidora Norte", "min_order": {number}}}'
        error = error_of(raw_post(client, "/api/suppliers", body, admin), 422, code="datos_invalidos",
                         mentions="min_order")
        assert error["details"][0]["field"] == "min_order", number
    assert _supplier_names(client, admin) == []
    for i, number in enumerate(('"15000.50"', "15000.50", "15000")):
        r = raw_post(client, "/api/suppliers", f'{{"name": "Prov {i}", "min_order": {number}}}', admin)
        assert r.status_code == 201, r.text
        assert Decimal(r.json()["min_order"]) == Decimal(number.strip('"'))


def test_supplier_text_fields_refuse_invisible_characters(client, admin):
    created = client.post("/api/suppliers", json={"name": "Visible SA"}, headers=admin).json()
    for field, (invisible, named) in ((f, i) for f in ("name", "phone", "address", "email") for i in INVISIBLE[:10]):
        value = f"ventas{invisible}@norte.com.ar" if field == "email" else f"Dis{invisible}tribuidora"
        body = {"name": "Otra SA", field: value} if field != "name" else {"name": value}
        error = error_of(client.post("/api/suppliers", json=body, headers=admin), 422, code="datos_invalidos",
                         mentions=(field, f"U+{ord(invisible):04X}"))
        assert error["details"][0]["field"] == field, (named, error)
        error_of(client.patch(f"/api/suppliers/{created['id']}", json={field: value}, headers=admin), 422,
                 mentions=field)
    assert _supplier_names(client, admin) == ["Visible SA"]


def test_supplier_notes_keep_line_breaks_but_refuse_bidi(client, admin):
    ok = client.post("/api/suppliers", json={"name": "Notas SA", "notes": "Entrega martes.\nPedir antes de las 10."},
                     headers=admin)
    assert ok.status_code == 201, ok.text
    error_of(client.post("/api/suppliers", json={"name": "Notas 2", "notes": "pagar\u202e09"}, headers=admin), 422,
             mentions=("notes", "U+202E"))


def test_assignment_rules_refuse_invisible_values(client, admin):
    supplier = client.post("/api/suppliers", json={"name": "Regla SA"}, headers=admin).json()["id"]
    r = client.post("/api/suppliers/rules", json={"kind": "marca", "value": "Arco\u200br", "supplier": supplier},
                    headers=admin)
    error_of(r, 422, mentions=("value", "U+200B"))
    error_of(client.post("/api/suppliers/assign", json={"name": "Yerba\u2066 1 kg"}, headers=admin), 422,
             mentions="name")


INVOICE_NUMBERS = [
    (("total",), '"23_932.22"'), (("total",), "2.393222e4"), (("lines", 0, "quantity"), '"١٢"'),
    (("lines", 0, "unit_cost"), '"1033.33e0"'), (("lines", 1, "discount_pct"), '"1_0"'),
    (("net", "21"), '"17599.96E0"'), (("perception_iibb",), '"١٠٠"'),
]


def test_invoice_amounts_accept_only_plain_decimal_text(client, admin):
    supplier_store(client, admin)
    for path, number in INVOICE_NUMBERS:
        body = invoice_body()
        target = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = "__N__"
        text = json.dumps(body).replace('"__N__"', number)
        error_of(raw_post(client, "/api/invoices", text, admin), 422, code="datos_invalidos",
                 mentions=str(path[-1]) if path[0] != "net" else "net")
    assert client.get("/api/invoices", headers=admin).json()["items"] == []
    text = json.dumps(invoice_body()).replace('"total": "23932.22"', '"total": 23932.22')
    r = raw_post(client, "/api/invoices", text, admin)
    assert r.status_code == 201, r.text
    assert r.json()["total"] == "23932.22"


def test_invoice_text_fields_refuse_invisible_characters(client, admin):
    supplier_store(client, admin)
    for field, value in (("notes", "pagar\u202e09"), ("supplier", f"{CUIT}\u200b")):
        error_of(client.post("/api/invoices", json=invoice_body(**{field: value}), headers=admin), 422, mentions=field)
    lines = invoice_body()["lines"]
    lines[2]["description"] = "Fide\u2066os"
    error_of(client.post("/api/invoices", json=invoice_body(lines=lines), headers=admin), 422, mentions="description")
    lines[2]["description"], lines[1]["sku"] = "Fideos", "ßzucar-1"
    error_of(client.post("/api/invoices", json=invoice_body(lines=lines), headers=admin), 422, mentions="sku")
    assert client.get("/api/invoices", headers=admin).json()["items"] == []
    created = client.post("/api/invoices", json=invoice_body(), headers=admin).json()
    error_of(client.post(f"/api/invoices/{created['id']}/annul", json={"reason": "dupli\u200bcada"}, headers=admin),
             422, mentions="reason")


def test_bulk_percent_accepts_only_plain_decimal_text(client, admin):
    create_product(client, admin, "PCT-1", cost="100.00", price="150.00", category="Bebidas")
    body = '{"filter": {"category": "Bebidas"}, "operation": "price_percent", "percent": __N__}'
    for number in ('"2_0"', '"٢٠"', '"2e1"', "2e1", "2.0E1", '"NaN"'):
        for path in ("/api/prices/bulk/preview", "/api/prices/bulk"):
            error_of(raw_post(client, path, body.replace("__N__", number), admin), 422, code="datos_invalidos",
                     mentions="percent")
    assert client.get("/api/prices/batches", headers=admin).json()["items"] == []
    ok = raw_post(client, "/api/prices/bulk/preview", body.replace("__N__", "20.5"), admin)
    assert ok.status_code == 200 and ok.json()["count"] == 1, ok.text


def test_pricing_settings_and_markups_accept_only_plain_decimal_text(client, admin):
    create_product(client, admin, "MK-1", cost="100.00", price="150.00", category="Bebidas")
    for body, field in (('{"default_markup": "3_5"}', "default_markup"), ('{"monthly_inflation": 4e0}',
                                                                           "monthly_inflation"),
                        ('{"category_markups": {"Bebidas": "٣٠"}}', "category_markups"),
                        ('{"category_markups": {"Bebi\\u202edas": "30"}}', "category_markups")):
        error_of(client.patch("/api/prices/settings", content=body.encode(),
                              headers={**admin, "content-type": "application/json"}), 422, mentions=field)
    error_of(client.put("/api/prices/MK-1/markup", content=b'{"markup": 4.5e1}',
                        headers={**admin, "content-type": "application/json"}), 422, mentions="markup")
    settings = client.get("/api/prices/settings", headers=admin).json()
    assert settings["default_markup"] == "35" and settings["monthly_inflation"] == "0"
