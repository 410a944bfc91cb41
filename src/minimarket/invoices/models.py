"""Supplier invoices (facturas) and their lines (facturas_items)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from minimarket.db import Base
from minimarket.suppliers.references import names_a_supplier
from minimarket.types import BigId, Money, Quantity, Timestamp, utcnow

STATES = ("borrador", "confirmada", "anulada")


class Invoice(Base):
    __tablename__ = "facturas"
    __table_args__ = (
        # The natural key: the same paper invoice can be loaded only once.
        UniqueConstraint("cuit_emisor", "tipo", "punto_venta", "numero", name="uq_facturas_comprobante"),
        CheckConstraint("tipo IN ('A','B','C','M')", name="tipo"),
        CheckConstraint("estado IN ('borrador','confirmada','anulada')", name="estado"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    supplier_id: Mapped[int] = mapped_column("proveedor_id", ForeignKey("proveedores.id"), index=True)
    type: Mapped[str] = mapped_column("tipo", String(1))
    point_of_sale: Mapped[int] = mapped_column("punto_venta", Integer)
    number: Mapped[int] = mapped_column("numero", Integer)
    issued_on: Mapped[date] = mapped_column("fecha", Date, index=True)
    issuer_cuit: Mapped[str] = mapped_column("cuit_emisor", String(11))
    net_0: Mapped[Decimal] = mapped_column("neto_no_gravado", Money, default=Decimal("0"))
    net_105: Mapped[Decimal] = mapped_column("neto_10_5", Money, default=Decimal("0"))
    net_21: Mapped[Decimal] = mapped_column("neto_21", Money, default=Decimal("0"))
    net_27: Mapped[Decimal] = mapped_column("neto_27", Money, default=Decimal("0"))
    vat_105: Mapped[Decimal] = mapped_column("iva_10_5", Money, default=Decimal("0"))
    vat_21: Mapped[Decimal] = mapped_column("iva_21", Money, default=Decimal("0"))
    vat_27: Mapped[Decimal] = mapped_column("iva_27", Money, default=Decimal("0"))
    perception_iibb: Mapped[Decimal] = mapped_column("percepcion_iibb", Money, default=Decimal("0"))
    perception_vat: Mapped[Decimal] = mapped_column("percepcion_iva", Money, default=Decimal("0"))
    total: Mapped[Decimal] = mapped_column(Money)
    cae: Mapped[str | None] = mapped_column(String(14))
    cae_due: Mapped[date | None] = mapped_column("cae_vencimiento", Date)
    state: Mapped[str] = mapped_column("estado", String(12), default="borrador", index=True)
    location_id: Mapped[int | None] = mapped_column("ubicacion_id", ForeignKey("ubicaciones.id"))
    notes: Mapped[str | None] = mapped_column("notas", Text)
    created_by: Mapped[str] = mapped_column("creada_por", String(120))
    created_at: Mapped[datetime] = mapped_column("creado_en", Timestamp, default=utcnow)
    confirmed_by: Mapped[str | None] = mapped_column("confirmada_por", String(120))
    confirmed_at: Mapped[datetime | None] = mapped_column("confirmada_en", Timestamp)
    annulled_by: Mapped[str | None] = mapped_column("anulada_por", String(120))
    annulled_at: Mapped[datetime | None] = mapped_column("anulada_en", Timestamp)
    annul_reason: Mapped[str | None] = mapped_column("motivo_anulacion", Text)
    # The ledger operation of the receipt and of its reversal (movimientos_stock.operacion).
    receipt_operation: Mapped[str | None] = mapped_column("operacion_ingreso", String(36))
    reversal_operation: Mapped[str | None] = mapped_column("operacion_anulacion", String(36))
    # What already brought the goods in instead of the invoice (`pedido:12`, set by the order when it is
    # received or linked): confirming then records the costs only (invoices.service.mark_goods_received).
    goods_received_by: Mapped[str | None] = mapped_column("mercaderia_ingresada_por", String(40))

    lines: Mapped[list[InvoiceLine]] = relationship(order_by="InvoiceLine.line_no", cascade="all, delete-orphan",
                                                    lazy="selectin")


class InvoiceLine(Base):
    __tablename__ = "facturas_items"
    __table_args__ = (UniqueConstraint("factura_id", "linea", name="uq_facturas_items_factura_linea"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    invoice_id: Mapped[int] = mapped_column("factura_id", ForeignKey("facturas.id"), index=True)
    line_no: Mapped[int] = mapped_column("linea", Integer)
    barcode: Mapped[str | None] = mapped_column("codigo_barras", String(14))
    sku: Mapped[str | None] = mapped_column(String(40))
    supplier_code: Mapped[str | None] = mapped_column("codigo_proveedor", String(60))
    description: Mapped[str | None] = mapped_column("descripcion", String(200))
    # Empty while nobody has matched the line to a product: the draft cannot be confirmed.
    product_id: Mapped[int | None] = mapped_column("producto_id", ForeignKey("productos.id"), index=True)
    quantity: Mapped[Decimal] = mapped_column("cantidad", Quantity)
    unit_cost: Mapped[Decimal] = mapped_column("costo_unitario", Money)
    vat_rate: Mapped[Decimal] = mapped_column("iva", Numeric(4, 1))
    discount_pct: Mapped[Decimal] = mapped_column("descuento_pct", Numeric(5, 2), default=Decimal("0"))
    net: Mapped[Decimal] = mapped_column("neto", Money)


names_a_supplier("invoices", Invoice.supplier_id)  # a merge moves them to the survivor
