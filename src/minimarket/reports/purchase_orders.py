"""Purchase orders as a Reportes table (CSV / XLSX / PDF through reports.exports): one row per order line,
newest order first, with what was ordered, received and is missing. Here, above `purchasing` (reports read
the areas; nothing in them imports reports)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from minimarket.ar.dates import STORE_TZ
from minimarket.ar.money import to_money, to_qty
from minimarket.catalog.models import Product
from minimarket.errors import InvalidInput
from minimarket.purchasing.models import PurchaseOrder, PurchaseOrderLine
from minimarket.purchasing.order_rules import STATE_LABELS
from minimarket.reports.exports import MAX_ROWS, Table
from minimarket.suppliers.models import Supplier
from minimarket.suppliers.service import resolve_supplier

COLUMNS = ["Pedido", "Armado", "Proveedor", "Estado", "Enviado", "Entrega esperada", "SKU", "Producto", "Pedido (u)",
           "Recibido (u)", "Falta (u)", "Costo unitario", "Subtotal"]


def _day(raw: str | None, field: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{field}: '{raw}' no es una fecha; usá AAAA-MM-DD", details={"field": field}) from None


def purchase_orders_table(session: Session, *, supplier: str | None = None, state: str | None = None,
                          date_from: str | None = None, date_to: str | None = None) -> Table:
    """Order lines by order (newest first) and line, filtered by supplier, state and the day it was drafted."""
    if state and state not in STATE_LABELS:
        raise InvalidInput(f"estado: '{state}' no es un estado de pedido; usá uno de: {', '.join(STATE_LABELS)}",
                           details={"field": "estado"})
    stmt = (select(PurchaseOrder, PurchaseOrderLine, Product.sku, Product.name, Supplier.name)
            .join(PurchaseOrderLine, PurchaseOrderLine.order_id == PurchaseOrder.id)
            .join(Product, Product.id == PurchaseOrderLine.product_id)
            .join(Supplier, Supplier.id == PurchaseOrder.supplier_id))
    if supplier:
        stmt = stmt.where(PurchaseOrder.supplier_id == resolve_supplier(session, supplier, active_only=False).id)
    if state:
        stmt = stmt.where(PurchaseOrder.state == state)
    if first := _day(date_from, "desde"):
        stmt = stmt.where(PurchaseOrder.created_at >= datetime.combine(first, time(0), STORE_TZ))
    if last := _day(date_to, "hasta"):
        stmt = stmt.where(PurchaseOrder.created_at < datetime.combine(last + timedelta(days=1), time(0), STORE_TZ))
    found = session.execute(stmt.order_by(PurchaseOrder.id.desc(), PurchaseOrderLine.line_no)
                            .limit(MAX_ROWS + 1)).all()
    rows = [[order.id, order.created_at, supplier_name, STATE_LABELS[order.state], order.sent_at, order.expected_on,
             sku, name, to_qty(line.quantity), to_qty(line.received), to_qty(max(line.quantity - line.received, 0)),
             to_money(line.unit_cost), to_money(line.quantity * line.unit_cost)]
            for order, line, sku, name, supplier_name in found[:MAX_ROWS]]
    return Table("Pedidos", COLUMNS, rows, len(found) > MAX_ROWS)
