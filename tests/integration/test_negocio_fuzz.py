"""Hostile bodies against the suppliers and invoices write routes (SQLite and PostgreSQL): never a 5xx,
always the one error shape, and the ledger stays clean."""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

from tests.integration.fuzzing import JSON_VALUES, NUMBERS, never_5xx, shaped
from tests.integration.helpers import assert_ledger_clean
from tests.integration.invoice_helpers import invoice_body, supplier_store

CUITS = st.sampled_from(["30-71234567-1", "30712345671", "30-71234567-2", "20-12345678-6", "", "1" * 11, "٣" * 11])
RATES = st.dictionaries(st.sampled_from(["0", "10.5", "21", "27", "22", "x"]), NUMBERS, max_size=3)
LINES = st.lists(shaped({"barcode": st.sampled_from(["7790387000016", "", "123"]),
                         "sku": st.sampled_from(["YERBA-1", "azucar-1", "NO", ""]),
                         "supplier_code": st.text(max_size=8), "description": st.text(max_size=10),
                         "quantity": NUMBERS, "unit_cost": NUMBERS, "vat_rate": NUMBERS, "discount_pct": NUMBERS}),
                 max_size=3)
TARGETS = {
    "POST /api/suppliers": ("POST", "/api/suppliers", shaped({
        "name": st.text(max_size=20), "code": st.text(max_size=22), "cuit": CUITS, "email": st.text(max_size=20),
        "order_days": st.lists(st.sampled_from(["lunes", "Sábado", "feriado", ""]), max_size=8),
        "lead_time_days": NUMBERS, "min_order": NUMBERS, "phone": st.text(max_size=5), "active": st.booleans()})),
    "PATCH /api/suppliers/{id}": ("PATCH", "/api/suppliers/1", shaped({
        "name": st.one_of(st.none(), st.text(max_size=20)), "cuit": CUITS, "active": st.one_of(st.none(), st.booleans()),
        "lead_time_days": NUMBERS, "order_days": st.lists(st.text(max_size=8), max_size=3)})),
    "POST /api/suppliers/{id}/merge": ("POST", "/api/suppliers/2/merge", shaped({"into": NUMBERS})),
    "POST /api/suppliers/rules": ("POST", "/api/suppliers/rules", shaped({
        "kind": st.sampled_from(["marca", "palabra", "categoria", "predeterminado", "otro"]),
        "value": st.text(max_size=12), "supplier": NUMBERS, "priority": NUMBERS})),
    "POST /api/suppliers/assign": ("POST", "/api/suppliers/assign", shaped({
        "name": st.text(max_size=30), "brand": st.text(max_size=10), "category": st.text(max_size=10)})),
    "POST /api/invoices": ("POST", "/api/invoices", shaped({
        "supplier": st.sampled_from(["1", "30-71234567-1", "Distribuidora Del Plata S.A.", "nadie", "0", "9" * 12]),
        "type": st.sampled_from(["A", "B", "C", "M", "X", "a"]), "point_of_sale": NUMBERS, "number": NUMBERS,
        "date": st.one_of(st.dates().map(str), st.text(max_size=10)), "issuer_cuit": CUITS, "net": RATES,
        "vat": RATES, "perception_iibb": NUMBERS, "total": NUMBERS, "cae": st.text(max_size=15),
        "cae_due": st.dates().map(str), "lines": LINES})),
    "PATCH /api/invoices/{id}": ("PATCH", "/api/invoices/1", shaped({
        "date": st.one_of(st.none(), st.dates().map(str)), "cae": st.text(max_size=15), "notes": st.text(max_size=10),
        "matches": st.lists(shaped({"line": NUMBERS, "product": st.sampled_from(["YERBA-1", "NO", ""]),
                                    "pack_size": NUMBERS}), max_size=3)})),
    "POST /api/invoices/{id}/confirm": ("POST", "/api/invoices/1/confirm", shaped({
        "location": st.sampled_from(["DEP", "sal", "X", ""])})),
    "POST /api/invoices/from-qr": ("POST", "/api/invoices/from-qr", shaped({
        "url": st.one_of(st.text(max_size=40), st.text(max_size=60).map(lambda t: "https://www.afip.gob.ar/fe/qr/?p=" + t),
                         st.binary(max_size=60).map(lambda b: "https://www.afip.gob.ar/fe/qr/?p=" + b.hex()))})),
}


@pytest.mark.parametrize("target", list(TARGETS))
def test_fuzzed_negocio_writes_never_answer_5xx(client, admin, app, target):
    method, path, fields = TARGETS[target]
    supplier_store(client, admin)
    client.post("/api/suppliers", json={"name": "Otro proveedor"}, headers=admin)
    assert client.post("/api/invoices", json=invoice_body(), headers=admin).status_code == 201

    never_5xx(client, admin, target, method, path, st.one_of(JSON_VALUES, fields))
    assert_ledger_clean(app)


def test_fuzzed_import_files_never_answer_5xx(client, admin, app):
    supplier_store(client, admin)
    header = "proveedor;tipo;numero;fecha;total;sku;cantidad;costo_unitario;iva\n"
    cell = st.one_of(st.text(max_size=8), NUMBERS.map(str))

    files = st.one_of(st.binary(max_size=200), st.lists(st.lists(cell, min_size=9, max_size=9), max_size=3).map(
        lambda rows: (header + "\n".join(";".join(r) for r in rows)).encode()))
    never_5xx(client, admin, "import", "POST", "/api/invoices/import", files, content_type="text/csv")
    assert_ledger_clean(app)
