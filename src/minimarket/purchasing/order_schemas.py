"""API shapes of purchase orders: create (by hand or from suggestions), edit, send, receive, cancel."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field, model_validator

from minimarket.plain_input import MoneyIn, NoteText, PlainIn, PositiveQuantityIn

MAX_LINES = 500
OrderState = Literal["borrador", "enviado", "recibido_parcial", "recibido", "cancelado"]


_In = PlainIn  # the shared base: unknown fields refused, text stripped and storable


class OrderLineIn(_In):
    sku: str = Field(min_length=1, max_length=40, description="SKU o código de barras")
    quantity: PositiveQuantityIn | None = Field(default=None, description="Unidades (múltiplo del bulto)")
    packs: int | None = Field(default=None, ge=1, le=100_000, description="Bultos, en vez de unidades")
    pack_size: int | None = Field(default=None, ge=1, le=100_000,
                                  description="Unidades por bulto; por defecto las del proveedor para ese producto")
    unit_cost: MoneyIn | None = Field(default=None, description="Costo unitario neto esperado; por defecto el actual")


def _id_as_text(value: object) -> object:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


SupplierRef = Annotated[str, BeforeValidator(_id_as_text)]


class OrderIn(_In):
    supplier: SupplierRef = Field(min_length=1, max_length=200, description="Id, CUIT o nombre del proveedor")
    lines: list[OrderLineIn] = Field(default_factory=list, max_length=MAX_LINES)
    from_suggestions: bool = Field(default=False, description="true: las líneas salen de las sugerencias de compra")
    skus: list[str] | None = Field(default=None, max_length=MAX_LINES,
                                   description="Con from_suggestions: sólo estas sugerencias (por defecto, todas)")
    cover_days: int = Field(default=14, ge=1, le=120, description="Con from_suggestions: días de cobertura")
    notes: NoteText | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _one_source(self) -> OrderIn:
        if self.from_suggestions and self.lines:
            raise ValueError("lines: con from_suggestions las líneas salen de las sugerencias; no mandes lines")
        if not self.from_suggestions and self.skus is not None:
            raise ValueError("skus: elige sugerencias; mandalo junto con from_suggestions: true")
        if not self.from_suggestions and not self.lines:
            raise ValueError("lines: el pedido necesita al menos una línea (o from_suggestions: true)")
        return self


class OrderPatch(_In):
    """Lines and notes only while borrador (lines replace all of them); the invoice in any open state."""

    lines: list[OrderLineIn] | None = Field(default=None, min_length=1, max_length=MAX_LINES)
    notes: NoteText | None = Field(default=None, max_length=2000)
    invoice_id: int | None = Field(default=None, ge=1, le=2_147_483_647,
                                   description="La factura del proveedor por esta mercadería (no mueve stock)")


class SendIn(_In):
    notes: NoteText | None = Field(default=None, max_length=2000)


class CancelIn(_In):
    reason: NoteText = Field(min_length=1, max_length=500)


class ReceiveLineIn(_In):
    sku: str = Field(min_length=1, max_length=40, description="SKU o código de barras de una línea del pedido")
    quantity: PositiveQuantityIn
    unit_cost: MoneyIn | None = Field(default=None, description="Costo unitario neto real (encargado o admin)")


class ReceiveIn(_In):
    lines: list[ReceiveLineIn] = Field(default_factory=list, max_length=MAX_LINES,
                                       description="Lo que llegó; vacío = todo lo que falta")
    location: str | None = Field(default=None, max_length=20, description="Ubicación; por defecto la configurada")
    allow_over: bool = Field(default=False, description="true: aceptar más de lo que falta recibir")
    close: bool = Field(default=False, description="true: cerrar el pedido aunque falte mercadería (no llega más)")
    invoice_id: int | None = Field(default=None, ge=1, le=2_147_483_647, description="Vincular la factura")


class OrderLineOut(BaseModel):
    line: int
    sku: str
    name: str
    unit: str
    quantity: Decimal
    pack_size: int | None
    packs: Decimal | None
    unit_cost: Decimal
    line_cost: Decimal
    received: Decimal
    pending: Decimal
    reason: str | None


class OrderOut(BaseModel):
    id: int
    supplier_id: int
    supplier: str
    supplier_phone: str | None
    state: OrderState
    state_label: str
    notes: str | None
    lines: list[OrderLineOut]
    total_cost: Decimal
    pending_units: Decimal
    created_by: str
    created_at: datetime
    sent_by: str | None
    sent_at: datetime | None
    expected_on: date | None
    received_at: datetime | None
    cancelled_by: str | None
    cancelled_at: datetime | None
    cancel_reason: str | None
    invoice_id: int | None
    receipt_operations: list[str]
    pdf_url: str
    whatsapp_url: str


class OrderSummary(BaseModel):
    id: int
    supplier_id: int
    supplier: str
    state: OrderState
    state_label: str
    lines: int
    total_cost: Decimal
    pending_units: Decimal
    created_at: datetime
    sent_at: datetime | None
    expected_on: date | None


class OrderPage(BaseModel):
    items: list[OrderSummary]
    next_cursor: str | None


class ReceiptCost(BaseModel):
    sku: str
    cost_before: Decimal
    cost_after: Decimal
    suggested_price: Decimal


class ReceiveOut(BaseModel):
    order: OrderOut
    operation_id: str
    received: dict[str, Decimal] = Field(description="SKU → unidades que ingresaron en esta entrega")
    cost_changes: list[ReceiptCost]
