"""Stored forecasts (pronosticos) and purchase orders (pedidos, pedidos_items)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, CheckConstraint, Date, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from minimarket.db import Base
from minimarket.suppliers.references import names_a_supplier
from minimarket.types import BigId, Money, Quantity, Timestamp, utcnow


class Forecast(Base):
    """The chosen method's daily rate and weekday profile (Monday first, mean 1) for a product,
    with its rolling-origin backtest error; the forecast for a day is rate × profile[weekday]."""

    __tablename__ = "pronosticos"
    __table_args__ = (UniqueConstraint("producto_id", "fecha_calculo", name="uq_pronosticos_producto_fecha"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column("producto_id", ForeignKey("productos.id", ondelete="CASCADE"))
    computed_on: Mapped[date] = mapped_column("fecha_calculo", Date, index=True)
    daily_rate: Mapped[float] = mapped_column("tasa_diaria", Float)
    weekday_profile: Mapped[list] = mapped_column("perfil_semanal", JSON)
    method: Mapped[str] = mapped_column("metodo", String(30))
    backtest_mae: Mapped[float | None] = mapped_column("error_backtest", Float)  # units/day, None = not measurable
    backtest_wape: Mapped[float | None] = mapped_column("wape_backtest", Float)
    history_days: Mapped[int] = mapped_column("dias_historia", Integer)
    observed_days: Mapped[int] = mapped_column("dias_observados", Integer)  # not censored by stock-outs
    created_at: Mapped[datetime] = mapped_column("creado_en", Timestamp, default=utcnow)


ORDER_STATES = ("borrador", "enviado", "recibido_parcial", "recibido", "cancelado")


class PurchaseOrder(Base):
    """A purchase order to one supplier (pedido): drafted, sent, received in one or more deliveries."""

    __tablename__ = "pedidos"
    __table_args__ = (
        CheckConstraint("estado IN ('borrador','enviado','recibido_parcial','recibido','cancelado')", name="estado"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    supplier_id: Mapped[int] = mapped_column("proveedor_id", ForeignKey("proveedores.id"), index=True)
    state: Mapped[str] = mapped_column("estado", String(20), default="borrador", index=True)
    notes: Mapped[str | None] = mapped_column("notas", Text)
    created_by: Mapped[str] = mapped_column("creado_por", String(120))
    created_at: Mapped[datetime] = mapped_column("creado_en", Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column("actualizado_en", Timestamp, default=utcnow, onupdate=utcnow)
    sent_by: Mapped[str | None] = mapped_column("enviado_por", String(120))
    sent_at: Mapped[datetime | None] = mapped_column("enviado_en", Timestamp)
    expected_on: Mapped[date | None] = mapped_column("entrega_estimada", Date)  # sent + the supplier's lead time
    received_at: Mapped[datetime | None] = mapped_column("recibido_en", Timestamp)  # the last delivery
    cancelled_by: Mapped[str | None] = mapped_column("cancelado_por", String(120))
    cancelled_at: Mapped[datetime | None] = mapped_column("cancelado_en", Timestamp)
    cancel_reason: Mapped[str | None] = mapped_column("motivo_cancelacion", Text)
    # The supplier's invoice for these goods, when someone links it (a reference: it moves no stock).
    invoice_id: Mapped[int | None] = mapped_column("factura_id", ForeignKey("facturas.id"), index=True)
    # The ledger operation of each delivery (movimientos_stock.operacion), oldest first.
    receipt_operations: Mapped[list] = mapped_column("operaciones_recepcion", JSON, default=list)

    lines: Mapped[list[PurchaseOrderLine]] = relationship(order_by="PurchaseOrderLine.line_no",
                                                          cascade="all, delete-orphan", lazy="selectin")


class PurchaseOrderLine(Base):
    __tablename__ = "pedidos_items"
    __table_args__ = (
        UniqueConstraint("pedido_id", "linea", name="uq_pedidos_items_pedido_linea"),
        UniqueConstraint("pedido_id", "producto_id", name="uq_pedidos_items_pedido_producto"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column("pedido_id", ForeignKey("pedidos.id"), index=True)
    line_no: Mapped[int] = mapped_column("linea", Integer)
    product_id: Mapped[int] = mapped_column("producto_id", ForeignKey("productos.id"), index=True)
    quantity: Mapped[Decimal] = mapped_column("cantidad", Quantity)  # units ordered (packs × pack size)
    pack_size: Mapped[int | None] = mapped_column("unidades_por_bulto", Integer)
    unit_cost: Mapped[Decimal] = mapped_column("costo_unitario", Money)  # expected net cost per unit
    received: Mapped[Decimal] = mapped_column("cantidad_recibida", Quantity, default=Decimal("0"))
    reason: Mapped[str | None] = mapped_column("motivo", Text)  # why it was suggested, as the owner read it


names_a_supplier("purchase_orders", PurchaseOrder.supplier_id)  # a merge moves them to the survivor
