"""Suppliers (proveedores), their assignment rules and the codes they print for our products."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from minimarket.db import Base
from minimarket.types import Money, Timestamp, utcnow

WEEKDAYS = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")
RULE_KINDS = ("marca", "palabra", "categoria", "predeterminado")


class Supplier(Base):
    __tablename__ = "proveedores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str | None] = mapped_column("codigo", String(20), unique=True)
    name: Mapped[str] = mapped_column("nombre", String(200), unique=True)
    # 11 digits without dashes; empty while the supplier is "a completar" (named by a product only).
    cuit: Mapped[str | None] = mapped_column(String(11), unique=True)
    phone: Mapped[str | None] = mapped_column("telefono", String(50))
    email: Mapped[str | None] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column("direccion", String(300))
    order_days: Mapped[list | None] = mapped_column("dias_pedido", JSON)
    lead_time_days: Mapped[int | None] = mapped_column("plazo_entrega_dias", Integer)
    min_order: Mapped[Decimal | None] = mapped_column("pedido_minimo", Money)
    notes: Mapped[str | None] = mapped_column("notas", Text)
    active: Mapped[bool] = mapped_column("activo", Boolean, default=True)
    # Set when merged: the survivor that took its products and history.
    merged_into_id: Mapped[int | None] = mapped_column("fusionado_en_id", ForeignKey("proveedores.id"))
    created_at: Mapped[datetime] = mapped_column("creado_en", Timestamp, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column("actualizado_en", Timestamp, default=utcnow, onupdate=utcnow)


class AssignmentRule(Base):
    """Brand, keyword or category → supplier; the highest priority match wins."""

    __tablename__ = "proveedores_reglas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column("tipo", String(20))
    # Folded (no accents, lower case, no punctuation) so matching ignores how it was typed.
    value: Mapped[str] = mapped_column("valor", String(100))
    supplier_id: Mapped[int] = mapped_column("proveedor_id", ForeignKey("proveedores.id"), index=True)
    priority: Mapped[int] = mapped_column("prioridad", Integer, default=0)
    created_at: Mapped[datetime] = mapped_column("creado_en", Timestamp, default=utcnow)


class SupplierCode(Base):
    """The supplier's own code for one of our products, remembered once a clerk matches it."""

    __tablename__ = "proveedores_codigos"
    __table_args__ = (UniqueConstraint("proveedor_id", "codigo", name="uq_proveedores_codigos_proveedor_codigo"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    supplier_id: Mapped[int] = mapped_column("proveedor_id", ForeignKey("proveedores.id"))
    code: Mapped[str] = mapped_column("codigo", String(60))
    product_id: Mapped[int] = mapped_column("producto_id", ForeignKey("productos.id"), index=True)
    # Units per case as the supplier sells it (for purchase orders); None = unknown.
    pack_size: Mapped[int | None] = mapped_column("unidades_por_bulto", Integer)
    created_at: Mapped[datetime] = mapped_column("creado_en", Timestamp, default=utcnow)
