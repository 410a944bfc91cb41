"""Stock on order: units ordered in sent orders and not received yet, per product."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from minimarket.purchasing.models import PurchaseOrder, PurchaseOrderLine
from minimarket.purchasing.order_rules import OPEN_STATES


def on_order_by_product(session: Session, product_ids: list[int] | None = None) -> dict[int, Decimal]:
    """Product id → units still to come from enviado / recibido_parcial orders (over-receipts count 0)."""
    pending = PurchaseOrderLine.quantity - PurchaseOrderLine.received
    stmt = (select(PurchaseOrderLine.product_id, func.sum(pending))
            .join(PurchaseOrder, PurchaseOrder.id == PurchaseOrderLine.order_id)
            .where(PurchaseOrder.state.in_(OPEN_STATES), pending > 0)
            .group_by(PurchaseOrderLine.product_id))
    if product_ids is not None:
        stmt = stmt.where(PurchaseOrderLine.product_id.in_(product_ids))
    # SQLite sums NUMERIC as REAL: back to three decimals, exact for values that fit the column.
    return {pid: Decimal(str(total)).quantize(Decimal("0.001")) for pid, total in session.execute(stmt) if total}
