"""Importing invoices from CSV and XLSX (SQLite and PostgreSQL): templates round-trip, all or nothing."""

from __future__ import annotations

import io

from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from minimarket.invoices.models import Invoice
from tests.integration.helpers import error_of
from tests.integration.invoice_helpers import supplier_store

CSV_MEDIA = {"Content-Type": "text/csv"}
XLSX_MEDIA = {"Content-Type": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
HEADER = "proveedor;tipo;numero;fecha;total;codigo_barras;sku;codigo_proveedor;cantidad;costo_unitario;iva;descuento"
GOOD = [
    # two invoices: 0003-00000101 (two lines, es-AR numbers) and 0003-00000102 (one line, dd/mm/aaaa)
    "30-71234567-1;A;0003-00000101;2026-11-20;17540,22;7790387000016;;;12;1.033,33;21;",
    "30-71234567-1;A;0003-00000101;;;;AZUCAR-1;;3;850,10;10.5;10",
    "30-71234567-1;A;3-102;20/11/2026;1210,00;;;FID-500;2;500;21;",
]


def invoices_in(app) -> int:  # noqa: ANN001
    with app.state.db.read() as session:
        return session.scalar(select(func.count()).select_from(Invoice))


def upload(client, headers, content: bytes, media=CSV_MEDIA):  # noqa: ANN001, ANN201
    return client.post("/api/invoices/import", content=content, headers={**headers, **media})


def test_csv_import_creates_drafts_grouped_by_invoice(client, admin):
    supplier_store(client, admin)
    response = upload(client, admin, "\n".join([HEADER, *GOOD]).encode())
    assert response.status_code == 201, response.text
    created = response.json()["created"]
    assert [(c["number_display"], c["state"], len(c["lines"]), c["total"]) for c in created] == [
        ("0003-00000101", "borrador", 2, "17540.22"), ("0003-00000102", "borrador", 1, "1210.00")]
    assert created[0]["net"] == {"10.5": "2295.27", "21": "12399.96"}  # computed from the lines
    assert [line["product"] for line in created[0]["lines"]] == ["YERBA-1", "AZUCAR-1"]
    assert created[1]["unmatched_lines"] == 1 and created[1]["date"] == "2026-11-20"


def test_one_bad_row_changes_nothing_and_is_named(client, admin, app):
    supplier_store(client, admin)
    bad_rows = [
        (GOOD[:2] + ["30-71234567-1;A;3-102;20/11/2026;1210,00;;;FID-500;dos;500;21;"], "fila 4, columna cantidad"),
        (GOOD[:2] + ["30-71234567-1;A;3-102;20/11/2026;1210,00;;;FID-500;2;5_00;21;"], "fila 4, columna costo_unitario"),
        (GOOD[:2] + ["30-71234567-1;A;3-102;20/11/2026;1210,00;;;FID-500;٢;500;21;"], "fila 4, columna cantidad"),
        (GOOD[:2] + ["30-71234567-1;A;3-102;20/11/2026;1.21e3;;;FID-500;2;500;21;"], "fila 4, columna total"),
        (GOOD[:2] + ["30-71234567-1;A;3-102;31/02/2026;1210,00;;;FID-500;2;500;21;"], "fila 4, columna fecha"),
        (GOOD[:2] + ["30-71234567-1;A;3-102;20/11/2026;1210,00;;;FID-500;2;500;22;"], "fila 4, columna iva"),
        (GOOD[:2] + ["30-71234567-1;A;3-102;20/11/2026;1210,00;;;;2;500;21;"], "fila 4, columna codigo_barras"),
        (GOOD[:2] + ["30-71234567-1;A;3-102;20/11/2026;1210,01;;;FID-500;2;500;21;"], "fila 4 (factura A 0003-00000102)"),
        (GOOD[:2] + ["Nadie S.A.;A;3-102;20/11/2026;1210,00;;;FID-500;2;500;21;"], "fila 4 (factura A 0003-00000102)"),
        ([GOOD[0], GOOD[1].replace(";;;;AZUCAR", ";2026-11-21;;;AZUCAR"), GOOD[2]], "fila 3, columna fecha"),
    ]
    for rows, named in bad_rows:
        error_of(upload(client, admin, "\n".join([HEADER, *rows]).encode()), 422, mentions=named)
        assert invoices_in(app) == 0, named
    error_of(upload(client, admin, (HEADER + ";color\n" + GOOD[0] + ";rojo").encode()), 422, code="archivo_invalido",
             mentions=("fila 1, columna color", "desconocida"))
    error_of(upload(client, admin, HEADER.replace("cantidad;", "").encode()), 422, mentions="columna cantidad")
    error_of(upload(client, admin, b""), 422, mentions="vacío")
    error_of(upload(client, admin, b"PK\x03\x04 no es un zip", XLSX_MEDIA), 422, mentions="XLSX")
    # A file already loaded is refused as a whole too.
    assert upload(client, admin, "\n".join([HEADER, *GOOD]).encode()).status_code == 201
    error_of(upload(client, admin, "\n".join([HEADER, *GOOD]).encode()), 409, code="factura_duplicada",
             mentions="fila 2")
    assert invoices_in(app) == 2


def test_a_50_mb_file_is_refused_before_it_is_read(client, admin, app):
    supplier_store(client, admin)
    huge = b"x" * (50 * 1024 * 1024)
    error_of(upload(client, admin, huge), 413, code="cuerpo_demasiado_grande")
    assert invoices_in(app) == 0


def test_the_templates_download_and_import_back(client, admin):
    supplier_store(client, admin)
    csv_template = client.get("/api/invoices/template.csv", headers=admin)
    assert csv_template.status_code == 200 and csv_template.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv_template.headers["content-disposition"]
    assert csv_template.content.startswith(b"\xef\xbb\xbfproveedor;cuit_emisor;tipo")
    imported = upload(client, admin, csv_template.content)
    assert imported.status_code == 201, imported.text
    assert imported.json()["created"][0]["number_display"] == "0003-00012345"
    xlsx_template = client.get("/api/invoices/template.xlsx", headers=admin)
    assert xlsx_template.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx_template.content)).active
    assert [c.value for c in sheet[1]][:3] == ["proveedor", "cuit_emisor", "tipo"]
    sheet["E2"] = sheet["E3"] = 12346  # numero: another invoice with the same content
    out = io.BytesIO()
    sheet.parent.save(out)
    imported = upload(client, admin, out.getvalue(), XLSX_MEDIA)
    assert imported.status_code == 201, imported.text
    assert imported.json()["created"][0]["number_display"] == "0003-00012346"


def test_xlsx_with_numbers_and_dates_as_cells(client, admin):
    from datetime import date

    supplier_store(client, admin)
    book = Workbook()
    sheet = book.active
    sheet.append(["cuit_emisor", "tipo", "punto_venta", "numero", "fecha", "total", "sku", "cantidad",
                  "costo_unitario", "iva"])
    sheet.append(["30712345671", "C", 7, 55, date(2026, 11, 2), 1500.5, "FIDEOS-1", 3, 500.1666, 21])
    out = io.BytesIO()
    book.save(out)
    response = upload(client, admin, out.getvalue(), XLSX_MEDIA)
    error_of(response, 422, mentions=("fila 2", "costo_unitario"))  # 4 decimals: the field names it
    sheet["I2"] = 500.17
    sheet["F2"] = 1500.51
    out = io.BytesIO()
    book.save(out)
    response = upload(client, admin, out.getvalue(), XLSX_MEDIA)
    assert response.status_code == 201, response.text
    created = response.json()["created"][0]
    assert (created["type"], created["number_display"], created["date"], created["net"]) == \
        ("C", "0007-00000055", "2026-11-02", {"0": "1500.51"})
