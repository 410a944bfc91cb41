"""Price batches (lotes_precios); the rows each one wrote are catalog.price_history (precios_historial)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from minimarket.db import Base
from minimarket.types import Timestamp, utcnow

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


class LaggingPrice(Base):
    """A product whose shelf price gives less than its target markup, kept by database triggers (migration
    0014) in the transaction of every write to its inputs: the list of pricing.lagging reads a page of it."""

    __tablename__ = "precios_atrasados"
    __table_args__ = (
        Index("ix_precios_atrasados_orden", "proporcion", "sku"),
        Index("ix_precios_atrasados_categoria", "categoria_id", "proporcion", "sku"),
    )

    product_id: Mapped[int] = mapped_column("producto_id", Integer, primary_key=True, autoincrement=False)
    category_id: Mapped[int | None] = mapped_column("categoria_id", Integer)
    sku: Mapped[str] = mapped_column(String(40))
    price: Mapped[Decimal] = mapped_column("precio", Numeric(14, 2))
    vat_rate: Mapped[Decimal] = mapped_column("iva", Numeric(4, 1))
    suggested: Mapped[Decimal] = mapped_column("sugerido", Numeric(20, 2))
    # price ÷ suggested (< 1): the order of those that lose nothing a day. A REAL on SQLite (never read back).
    ratio: Mapped[Decimal] = mapped_column("proporcion", Numeric(44, 30))
