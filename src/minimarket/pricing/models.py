"""Price history (precios_historial) and price batches (lotes_precios)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from minimarket.db import Base
from minimarket.types import BigId, Money, Timestamp, utcnow

REASONS = ("manual", "factura", "aumento_masivo", "lista_proveedor", "deshacer", "pedido")
OPERATIONS = ("price_percent", "cost_percent", "recompute", "lista_proveedor", "deshacer")


class PriceBatch(Base):
    """One bulk change: every history row it wrote carries its id, so it can be undone exactly."""

    __tablename__ = "lotes_precios"
    __table_args__ = (
        CheckConstraint("operacion IN ('price_percent','cost_percent','recompute','lista_proveedor','deshacer')",
                        name="operacion"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    operation: Mapped[str] = mapped_column("operacion", String(20))
    reason: Mapped[str] = mapped_column("motivo", String(20))
    percent: Mapped[Decimal | None] = mapped_column("porcentaje", Numeric(7, 2))
    description: Mapped[str | None] = mapped_column("descripcion", String(300))
    filters: Mapped[dict | None] = mapped_column("filtro", JSON)
    products: Mapped[int] = mapped_column("productos", Integer, default=0)
    actor: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column("creado_en", Timestamp, default=utcnow, index=True)
    undone_at: Mapped[datetime | None] = mapped_column("deshecho_en", Timestamp)
    undone_by: Mapped[int | None] = mapped_column("deshecho_por_lote", ForeignKey("lotes_precios.id"))
    undoes: Mapped[int | None] = mapped_column("deshace_lote", ForeignKey("lotes_precios.id"))


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
    batch_id: Mapped[int | None] = mapped_column("lote_id", ForeignKey("lotes_precios.id"), index=True)
    reference: Mapped[str | None] = mapped_column("referencia", String(100))
    actor: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column("creado_en", Timestamp, default=utcnow, index=True)
