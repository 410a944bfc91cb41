"""Branches, locations, balances and the append-only movements ledger."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Index, Integer, Numeric, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from minimarket.db import Base
from minimarket.types import BigId, Money, Quantity, Timestamp, utcnow

class Branch(Base):
    __tablename__ = "sucursales"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column("codigo", String(20), unique=True)
    name: Mapped[str] = mapped_column("nombre", String(100))


class Location(Base):
    __tablename__ = "ubicaciones"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column("codigo", String(20), unique=True)
    name: Mapped[str] = mapped_column("nombre", String(100))
    branch_id: Mapped[int] = mapped_column("sucursal_id", ForeignKey("sucursales.id"))
    active: Mapped[bool] = mapped_column("activa", Boolean, default=True)

    branch: Mapped[Branch] = relationship(lazy="joined")


class Balance(Base):
    """Cached stock of one product at one location; always equal to its ledger sum."""

    __tablename__ = "existencias"

    product_id: Mapped[int] = mapped_column(
        "producto_id", ForeignKey("productos.id"), primary_key=True
    )
    location_id: Mapped[int] = mapped_column(
        "ubicacion_id", ForeignKey("ubicaciones.id"), primary_key=True
    )
    quantity: Mapped[Decimal] = mapped_column("cantidad", Quantity, default=Decimal("0"))
    updated_at: Mapped[datetime] = mapped_column("actualizado_en", Timestamp, default=utcnow)


class Movement(Base):
    """One row of the ledger. Rows are only ever inserted."""

    __tablename__ = "movimientos_stock"
    __table_args__ = (
        Index("ix_movimientos_stock_producto_fecha", "producto_id", "creado_en"),
        Index("ix_movimientos_stock_creado_en", "creado_en"),
        # The last 30 days' sales of every product without reading the table (pricing.lagging, migration 0014).
        Index("ix_movimientos_stock_ventas", "creado_en", "producto_id", "cantidad",
              postgresql_where=text("tipo = 'venta'"), sqlite_where=text("tipo = 'venta'")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    product_id: Mapped[int] = mapped_column("producto_id", ForeignKey("productos.id"))
    location_id: Mapped[int] = mapped_column("ubicacion_id", ForeignKey("ubicaciones.id"))
    type: Mapped[str] = mapped_column("tipo", String(20), index=True)
    quantity: Mapped[Decimal] = mapped_column("cantidad", Quantity)
    balance_after: Mapped[Decimal] = mapped_column("saldo_posterior", Quantity)
    unit_cost: Mapped[Decimal | None] = mapped_column("costo_unitario", Money)
    # Shelf price charged, for sales (and customer returns); feeds revenue and margin reports.
    unit_price: Mapped[Decimal | None] = mapped_column("precio_unitario", Money)
    reason: Mapped[str | None] = mapped_column("motivo", Text)
    reference: Mapped[str | None] = mapped_column("referencia", String(100), index=True)
    actor: Mapped[str] = mapped_column(String(120), index=True)
    idempotency_key: Mapped[str | None] = mapped_column("clave_idempotencia", String(200))
    # Rows written by one operation (a transfer's two legs, a sale's lines) share it.
    operation_id: Mapped[str] = mapped_column("operacion", String(36), index=True)
    created_at: Mapped[datetime] = mapped_column("creado_en", Timestamp, default=utcnow)



class ProductStock(Base):
    """A product's stock over all locations, kept by the ledger in the same transaction as its balances.

    `low` (stock ≤ the product's minimum) is kept with it, so the dashboard's and the API's
    "bajo mínimo" lists read a partial index of the few low products instead of summing every
    product's balances (stock.totals).
    """

    __tablename__ = "existencias_totales"
    # By SKU, the lists' order: a page of "bajo mínimo" or "sin stock" walks its partial index and stops.
    __table_args__ = (
        Index("ix_existencias_totales_bajo_sku", "sku", sqlite_where=text("bajo_minimo"),
              postgresql_where=text("bajo_minimo")),
        Index("ix_existencias_totales_sin_stock_sku", "sku", sqlite_where=text("cantidad <= 0"),
              postgresql_where=text("cantidad <= 0")),
    )

    product_id: Mapped[int] = mapped_column("producto_id", ForeignKey("productos.id"), primary_key=True)
    # Wider than a balance: the sum of several locations each at the column's limit must still fit.
    quantity: Mapped[Decimal] = mapped_column("cantidad", Numeric(18, 3), default=Decimal("0"))
    low: Mapped[bool] = mapped_column("bajo_minimo", Boolean, default=True)
    # The product's SKU (it never changes), written by the database when the row is inserted (migration 0017's
    # trigger: before it on PostgreSQL, right after it on SQLite); `minimarket verify` checks it.
    sku: Mapped[str | None] = mapped_column(String(40), nullable=True)
