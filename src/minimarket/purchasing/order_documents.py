"""What is sent to the supplier: a PDF (fpdf2, pure Python) and a plain text to paste in WhatsApp,
both in es-AR ($ 1.234,56, dd/mm/aaaa) from the same order shape the API returns."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from minimarket.ar.dates import format_date, format_datetime
from minimarket.ar.money import format_ars, format_qty
from minimarket.catalog.models import Product
from minimarket.purchasing.order_schemas import OrderLineOut, OrderOut
from minimarket.suppliers.models import WEEKDAYS, Supplier, SupplierCode

UNIT_NAMES = {"u": "u", "kg": "kg", "l": "l"}


def supplier_codes(session: Session, order: OrderOut) -> dict[str, str]:
    """SKU → the supplier's own code for it, when a clerk matched one (it helps the supplier pick)."""
    rows = session.execute(
        select(Product.sku, SupplierCode.code).join(SupplierCode, SupplierCode.product_id == Product.id)
        .where(SupplierCode.supplier_id == order.supplier_id, Product.sku.in_([line.sku for line in order.lines]))
        .order_by(SupplierCode.id))
    return {sku: code for sku, code in rows}


def _amount(line: OrderLineOut) -> str:
    units = f"{format_qty(line.quantity)} {UNIT_NAMES.get(line.unit, line.unit)}"
    if line.packs is not None and line.packs == line.packs.to_integral_value():
        return f"{format_qty(line.packs)} bultos x {line.pack_size} ({units})"
    return units


def _delivery(order: OrderOut) -> str | None:
    if order.expected_on is None:
        return None
    return f"{WEEKDAYS[order.expected_on.weekday()]} {format_date(order.expected_on)}"


def whatsapp_text(order: OrderOut, codes: dict[str, str]) -> str:
    """The order as a WhatsApp message: one line per product, the supplier's code first when known."""
    lines = [f"Hola {order.supplier}, les paso el pedido N° {order.id}:", ""]
    for line in order.lines:
        code = f"[{codes[line.sku]}] " if line.sku in codes else ""
        lines.append(f"- {_amount(line)} {code}{line.name}")
    lines += ["", f"Total estimado: {format_ars(order.total_cost)} (costo neto, sin IVA)"]
    if delivery := _delivery(order):
        lines.append(f"Entrega: {delivery}")
    if order.notes:
        lines.append(f"Notas: {order.notes}")
    lines += ["", "¡Gracias! Confirmen por favor si falta algo."]
    return "\n".join(lines) + "\n"


def _latin1(text: str) -> str:
    # The PDF's core font is Latin-1 (every Spanish letter is in it); anything else becomes "?".
    return text.replace("—", "-").replace("→", "->").encode("latin-1", "replace").decode("latin-1")


def _product_cell(name: str, sku: str, width: int = 48) -> str:
    """Name and SKU in one table cell: a long name is shortened, the SKU always shows."""
    room = width - len(sku) - 3
    shown = name if len(name) <= room else name[:max(room - 3, 8)].rstrip() + "..."
    return f"{shown} ({sku})"


def order_pdf(order: OrderOut, codes: dict[str, str], supplier: Supplier, *, generated: datetime) -> bytes:
    """A one-page (or more) A4 order: header, supplier, lines, total, notes."""
    from fpdf import FPDF

    pdf = FPDF(orientation="P", format="A4")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 9, _latin1(f"Pedido N° {order.id}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    facts = [f"Proveedor: {order.supplier}"]
    if supplier.cuit:
        facts.append(f"CUIT: {supplier.cuit[:2]}-{supplier.cuit[2:10]}-{supplier.cuit[10:]}")
    if supplier.phone:
        facts.append(f"Teléfono: {supplier.phone}")
    facts.append(f"Fecha: {format_date(order.sent_at or order.created_at)}  -  Estado: {order.state_label}")
    if delivery := _delivery(order):
        facts.append(f"Entrega esperada: {delivery}")
    for fact in facts:
        pdf.cell(0, 6, _latin1(fact), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    headers = ["Cód. prov.", "Producto", "Bultos", "Cantidad", "Costo unit.", "Subtotal"]
    widths = [24, 70, 22, 22, 26, 26]
    pdf.set_font("Helvetica", "B", 9)
    for header, width in zip(headers, widths):
        pdf.cell(width, 7, _latin1(header), border="B", align="L" if width > 60 or header.startswith("Cód") else "R")
    pdf.ln()
    pdf.set_font("Helvetica", "", 9)
    for line in order.lines:
        packs = f"{format_qty(line.packs)} x {line.pack_size}" if line.packs is not None else ""
        cells = [codes.get(line.sku, ""), _product_cell(line.name, line.sku), packs,
                 f"{format_qty(line.quantity)} {line.unit}", format_ars(line.unit_cost), format_ars(line.line_cost)]
        for value, width, header in zip(cells, widths, headers):
            pdf.cell(width, 6, _latin1(value), align="L" if width > 60 or header.startswith("Cód") else "R")
        pdf.ln()
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(sum(widths[:-1]), 8, _latin1("Total estimado (neto, sin IVA)"), border="T", align="R")
    pdf.cell(widths[-1], 8, _latin1(format_ars(order.total_cost)), border="T", align="R", new_x="LMARGIN",
             new_y="NEXT")
    if order.notes:
        pdf.set_font("Helvetica", "", 10)
        pdf.multi_cell(0, 6, _latin1(f"Notas: {order.notes}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 8)
    pdf.cell(0, 8, _latin1(f"Generado el {format_datetime(generated)}"), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
