"""precios_historial: the one writer of single-product rows, and the reads behind /history.

Bulk changes write their rows set-based in pricing/batches.py; everything else (PATCH
/api/inventory, invoices, a product's markup) comes through `record_change`.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from minimarket.accounts.audit import Context
from minimarket.errors import InvalidInput
from minimarket.pricing.models import REASONS, PriceChange
from minimarket.types import utcnow


def record_change(session: Session, ctx: Context, *, product_id: int, cost_before: Decimal, cost_after: Decimal,
                  price_before: Decimal, price_after: Decimal, reason: str, batch_id: int | None = None,
                  reference: str | None = None) -> PriceChange | None:
    """Append one history row if cost or price changed; None when nothing changed."""
    if reason not in REASONS:
        raise ValueError(f"unknown price change reason {reason!r}")
    if reference is not None and len(reference) > 100:
        raise InvalidInput(f"reference: hasta 100 caracteres; se recibieron {len(reference)}",
                           details={"field": "reference"})
    if Decimal(cost_before) == Decimal(cost_after) and Decimal(price_before) == Decimal(price_after):
        return None
    row = PriceChange(product_id=product_id, cost_before=cost_before, cost_after=cost_after,
                      price_before=price_before, price_after=price_after, reason=reason, batch_id=batch_id,
                      reference=reference, actor=ctx.actor, created_at=utcnow())
    session.add(row)
    return row


def history_of(session: Session, product_id: int, *, limit: int) -> list[PriceChange]:
    """The product's changes, newest first."""
    stmt = (select(PriceChange).where(PriceChange.product_id == product_id)
            .order_by(PriceChange.id.desc()).limit(limit))
    return list(session.scalars(stmt).all())
