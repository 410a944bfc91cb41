"""Downloadable import templates (CSV and XLSX): the columns and one invoice that adds up."""

from __future__ import annotations

import csv
import io

from minimarket.invoices.importer import COLUMNS

# Factura A 0003-00012345: 12 × 1033.33 at 21 % and 3 × 850.10 less 10 % at 10.5 %;
# the per-rate columns are left empty (computed from the lines), the total is the invoice's.
EXAMPLE = (
    {"proveedor": "30-71234567-1", "tipo": "A", "punto_venta": "3", "numero": "12345", "fecha": "2026-11-20",
     "cae": "76123456789012", "cae_vencimiento": "2026-11-30", "total": "17540.22", "codigo_barras": "7790387000016",
     "descripcion": "Yerba mate 1 kg", "cantidad": "12", "costo_unitario": "1033.33", "iva": "21"},
    {"proveedor": "30-71234567-1", "tipo": "A", "punto_venta": "3", "numero": "12345", "codigo_proveedor": "AZ-500",
     "descripcion": "Azúcar 1 kg", "cantidad": "3", "costo_unitario": "850.10", "iva": "10.5", "descuento": "10"},
)


def template_csv() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in EXAMPLE:
        writer.writerow([row.get(c, "") for c in COLUMNS])
    return out.getvalue().encode("utf-8-sig")  # the BOM makes Excel read the accents right


def template_xlsx() -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "factura"
    sheet.append(list(COLUMNS))
    for row in EXAMPLE:
        sheet.append([row.get(c, "") or None for c in COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
