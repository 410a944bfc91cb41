"""precios_historial: every cost or price change of a product, and its one single-row writer.

A product's cost and price are catalog columns, so their history lives beside them: a catalog
edit (PATCH /api/inventory) writes its row here without reaching up into pricing/. Bulk changes
write their rows set-based in pricing/batches.py (with the `lote_id` of their `lotes_precios`
row); everything else (invoices, purchase orders, price lists, a product's markup) comes through `record_change`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from minimarket.accounts.audit import Context
from minimarket.db import Base
from minimarket.errors import InvalidInput
from minimarket.types import BigId, Money, Timestamp, utcnow

REASONS = ("manual", "factura", "aumento_masivo", "lista_proveedor", "deshacer", "pedido")


class PriceChange(Base):
    """One cost and/or price change of one product. Rows are only ever inserted."""

    __tablename__ = "precios_historial"
    __table_args__ = (
        CheckConstraint("motivo IN ('manual','factura','aumento_masivo','lista_proveedor','deshacer','pedido')",
                        name="motivo"),
        Index("ix_precios_historial_producto_id_id", "producto_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    product_id: Mapped[int] = mapped_column("producto_id", ForeignKey("productos.id"))
    cost_before: Mapped[Decimal] = mapped_column("costo_antes", Money)
    cost_after: Mapped[Decimal] = mapped_column("costo_despues", Money)
    price_before: Mapped[Decimal] = mapped_column("precio_antes", Money)
    price_after: Mapped[Decimal] = mapped_column("precio_despues", Money)
    reason: Mapped[str] = mapped_column("motivo", String(20))
    # The bulk change (pricing's lotes_precios) that wrote the row, if any: named by table, not imported.
    batch_id: Mapped[int | None] = mapped_column("lote_id", ForeignKey("lotes_precios.id"), index=True)
    reference: Mapped[str | None] = mapped_column("referencia", String(100))
    actor: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column("creado_en", Timestamp, default=utcnow)  # read by product, not by date


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
