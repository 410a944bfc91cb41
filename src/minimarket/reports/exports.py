"""Inventory, movements and lagging prices as CSV (es-AR: `;` and decimal comma, for Excel in Argentina), XLSX (openpyxl,
real numbers) and PDF (fpdf2, pure Python). Rows come from the same service reads as the API."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from minimarket.ar.dates import format_date, format_datetime, local
from minimarket.ar.money import format_number
from minimarket.pricing.lagging import lagging_prices
from minimarket.stock import inventory, service

MAX_ROWS = 100_000  # a spreadsheet, not a backup: `minimarket backup` copies everything
MAX_PDF_ROWS = 2_000  # ~50 pages; a longer listing belongs in the spreadsheet
FORMATS = {"csv": "text/csv; charset=utf-8",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
           "pdf": "application/pdf"}


@dataclass
class Table:
    title: str
    columns: Sequence[str]
    rows: list[list[Any]]
    truncated: bool = False


def inventory_table(session: Session, **filters: Any) -> Table:
    """Active products with their stock, by SKU, honouring the inventory filters."""
    rows, cursor, truncated = [], None, False
    while True:
        items, cursor = inventory.list_inventory(session, limit=500, cursor=cursor, **filters)
        for p in items:
            rows.append([p.sku, p.barcode or "", p.name, p.brand or "", p.category or "", p.supplier or "", p.unit,
                         p.stock, p.min_stock, p.cost, p.price, p.stock * p.cost])
        if cursor is None:
            break
        if len(rows) >= MAX_ROWS:
            truncated = True
            break
    return Table("Inventario", ["SKU", "Código de barras", "Producto", "Marca", "Categoría", "Proveedor", "Unidad",
                                "Stock", "Mínimo", "Costo", "Precio", "Valor al costo"], rows, truncated)


def movements_table(session: Session, **filters: Any) -> Table:
    """The ledger, newest first, honouring the movements filters."""
    rows, cursor, truncated = [], None, False
    while True:
        page = service.list_movements(session, limit=500, cursor=cursor, **filters)
        for m in page.items:
            rows.append([m.created_at, m.sku, m.type, m.location, m.quantity, m.balance_after, m.unit_cost,
                         m.unit_price, m.reason or "", m.reference or "", m.actor])
        cursor = page.next_cursor
        if cursor is None:
            break
        if len(rows) >= MAX_ROWS:
            truncated = True
            break
    return Table("Movimientos", ["Fecha", "SKU", "Tipo", "Ubicación", "Cantidad", "Saldo", "Costo unitario",
                                 "Precio unitario", "Motivo", "Referencia", "Quién"], rows, truncated)


def lagging_table(session: Session, *, category: str | None = None) -> Table:
    """Products below their target markup, most money lost per day first (pricing.lagging), by category if given."""
    found = lagging_prices(session, limit=MAX_ROWS, category=category)
    rows = [[i["sku"], i["name"], i["cost"], i["replacement_cost"], i["price"], i["suggested_price"], i["markup"],
             i["target_markup"], i["units_per_day"], i["lost_per_day"], i["cost_changed_at"]] for i in found["items"]]
    return Table("Precios atrasados", ["SKU", "Producto", "Costo", "Costo de reposición", "Precio", "Precio sugerido",
                                       "Margen %", "Margen objetivo %", "Unidades por día", "Se pierde por día",
                                       "Último cambio de costo"], rows, found["count"] > MAX_ROWS)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return format_date(value)
    if isinstance(value, Decimal):
        return format_number(value, 3 if value.as_tuple().exponent == -3 else 2)
    return str(value)


def to_csv(table: Table) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow([_text(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")  # the BOM makes Excel read UTF-8


def to_xlsx(table: Table) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    sheet = book.create_sheet(table.title)
    bold = Font(bold=True)
    header = []
    for name in table.columns:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for row in table.rows:
        # Excel has no time zones: moments go on the store's clock, without offset.
        sheet.append([local(v).replace(tzinfo=None) if isinstance(v, datetime) else v for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _latin1(text: str) -> str:
    # The PDF's core font is Latin-1 (every Spanish letter is in it); anything else becomes "?".
    return text.replace("—", "-").replace("→", "->").encode("latin-1", "replace").decode("latin-1")


def to_pdf(table: Table, *, generated: datetime) -> bytes:
    """A landscape A4 listing; columns share the width by the length of what they hold."""
    from fpdf import FPDF

    pdf = FPDF(orientation="L", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 8, _latin1(f"{table.title} - Mini Market"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    shown = [[_latin1(_text(v)) for v in row] for row in table.rows[:MAX_PDF_ROWS]]
    note = f"Generado el {format_datetime(generated)} - {len(shown)} filas"
    if len(shown) < len(table.rows) or table.truncated:
        note += " (listado recortado: el archivo Excel o CSV tiene todas las filas)"
    pdf.cell(0, 6, _latin1(note), new_x="LMARGIN", new_y="NEXT")
    headers = [_latin1(c) for c in table.columns]
    longest = [max([len(h)] + [len(r[i]) for r in shown[:200]]) for i, h in enumerate(headers)]
    total = sum(min(n, 40) for n in longest) or 1
    widths = [pdf.epw * min(n, 40) / total for n in longest]
    pdf.set_font("Helvetica", "B", 7)
    for header, width in zip(headers, widths):
        pdf.cell(width, 5, header, border="B")
    pdf.ln()
    pdf.set_font("Helvetica", "", 7)
    chars = [max(int(width / 1.3), 3) for width in widths]  # ~1.3 mm per character of 7 pt Helvetica
    for row in shown:
        if pdf.will_page_break(4.5):
            pdf.add_page()
        x, y = pdf.l_margin, pdf.get_y() + 3.5
        for value, width, limit in zip(row, widths, chars):
            pdf.text(x + 0.5, y, value[:limit])  # one line per row, cut to its column
            x += width
        pdf.set_y(pdf.get_y() + 4.5)
    return bytes(pdf.output())


def render(table: Table, fmt: str, *, generated: datetime) -> bytes:
    if fmt == "csv":
        return to_csv(table)
    if fmt == "xlsx":
        return to_xlsx(table)
    return to_pdf(table, generated=generated)


def file_name(table: Table, fmt: str, generated: datetime) -> str:
    return f"{table.title.lower()}-{format_date(generated).replace('/', '-')}.{fmt}"
