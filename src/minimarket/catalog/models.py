"""Products and categories (productos, categorias)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from minimarket.db import Base
from minimarket.suppliers.models import Supplier
from minimarket.suppliers.references import names_a_supplier
from minimarket.types import Money, Quantity, Timestamp, utcnow

UNITS = ("u", "kg", "l")


class Category(Base):
    __tablename__ = "categorias"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column("nombre", String(100), unique=True)
    # Target markup over cost (percent) for the category's products; pricing/ resolves it.
    target_markup: Mapped[Decimal | None] = mapped_column("margen_objetivo", Numeric(6, 2))


class Product(Base):
    __tablename__ = "productos"
    __table_args__ = (
        CheckConstraint("unidad IN ('u','kg','l')", name="unidad"),
        CheckConstraint("costo >= 0 AND precio >= 0", name="importes_no_negativos"),
        CheckConstraint("iva IN (0, 10.5, 21, 27)", name="iva"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Stored upper-case: SKUs are case-insensitive for the people typing them.
    sku: Mapped[str] = mapped_column(String(40), unique=True)
    barcode: Mapped[str | None] = mapped_column("codigo_barras", String(14), unique=True)
    name: Mapped[str] = mapped_column("nombre", String(200), index=True)
    brand: Mapped[str | None] = mapped_column("marca", String(100))
    category_id: Mapped[int | None] = mapped_column(
        "categoria_id", ForeignKey("categorias.id"), index=True
    )
    unit: Mapped[str] = mapped_column("unidad", String(3), default="u")
    cost: Mapped[Decimal] = mapped_column("costo", Money, default=Decimal("0"))
    price: Mapped[Decimal] = mapped_column("precio", Money, default=Decimal("0"))
    vat_rate: Mapped[Decimal] = mapped_column("iva", Numeric(4, 1), default=Decimal("21"))
    # The product's own markup over cost (percent); None = its category's target or the store default.
    markup: Mapped[Decimal | None] = mapped_column("margen", Numeric(6, 2))
    min_stock: Mapped[Decimal] = mapped_column("stock_minimo", Quantity, default=Decimal("0"))
    max_stock: Mapped[Decimal | None] = mapped_column("stock_maximo", Quantity)
    supplier_id: Mapped[int | None] = mapped_column(
        "proveedor_id", ForeignKey("proveedores.id"), index=True
    )
    active: Mapped[bool] = mapped_column("activo", Boolean, default=True, index=True)
    created_at: Mapped[datetime] = mapped_column("creado_en", Timestamp, default=utcnow)
    # Not indexed (migration 0010): a price change to every product stays a HOT update on PostgreSQL.
    updated_at: Mapped[datetime] = mapped_column("actualizado_en", Timestamp, default=utcnow, onupdate=utcnow)

    category: Mapped[Category | None] = relationship(lazy="joined")
    supplier: Mapped[Supplier | None] = relationship(lazy="joined")


names_a_supplier("products", Product.supplier_id)  # a merge moves them; the supplier file counts them
