"""API shapes for movements, stocktakes, transfers, POS sales and locations."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field, field_validator, model_validator

from minimarket.plain_input import MoneyIn as Money, PlainIn
from minimarket.plain_input import NameText, NonNegativeQuantityIn, NoteText
from minimarket.plain_input import PositiveQuantityIn as PositiveQty
from minimarket.plain_input import QuantityIn as Qty
from minimarket.stock.rules import CLIENT_TYPES, MovementType

MAX_LINES = 500
# Both from rules.MovementType: what a client may send, and what the ledger holds (plus the transfer legs).
ClientMovementType = Literal[CLIENT_TYPES]  # type: ignore[valid-type]
LedgerType = Literal[tuple(t.value for t in MovementType)]  # type: ignore[valid-type]


_In = PlainIn  # the shared base: unknown fields refused, text stripped and storable


class MovementIn(_In):
    type: ClientMovementType = Field(description="entrada/devolucion suman; venta/salida/merma restan; ajuste lleva su signo")
    quantity: Qty = Field(description="Positiva (salvo ajuste, que puede ser negativa); hasta 3 decimales")
    location: str | None = Field(default=None, max_length=20, description="Código de ubicación; por defecto la configurada")
    unit_cost: Money | None = Field(default=None, description="Costo unitario neto; por defecto el costo del producto")
    reason: NoteText | None = Field(default=None, max_length=500)
    reference: NameText | None = Field(default=None, max_length=100, description="Remito, factura, nota…")


class BatchLine(MovementIn):
    sku: str = Field(min_length=1, max_length=40, description="SKU o código de barras")


class BatchIn(_In):
    lines: list[BatchLine] = Field(min_length=1, max_length=MAX_LINES)


class MovementOut(BaseModel):
    id: int
    sku: str
    location: str
    type: str
    quantity: Decimal
    balance_after: Decimal
    unit_cost: Decimal | None
    unit_price: Decimal | None
    reason: str | None
    reference: str | None
    actor: str
    operation_id: str
    created_at: datetime


class MovementPage(BaseModel):
    items: list[MovementOut]
    next_cursor: str | None


class BatchOut(BaseModel):
    operation_id: str
    movements: list[MovementOut]


class CountLine(_In):
    sku: str = Field(min_length=1, max_length=40)
    counted: NonNegativeQuantityIn


class StocktakeIn(_In):
    location: str | None = Field(default=None, max_length=20)
    reason: NoteText | None = Field(default=None, max_length=500)
    lines: list[CountLine] = Field(min_length=1, max_length=MAX_LINES)

    @model_validator(mode="after")
    def _one_count_per_product(self):  # noqa: ANN202
        seen: set[str] = set()
        for i, line in enumerate(self.lines):
            key = line.sku.upper()
            if key in seen:
                raise ValueError(f"lines[{i}].sku: '{line.sku}' aparece dos veces en el recuento; sumá los conteos")
            seen.add(key)
        return self


class CountResult(BaseModel):
    sku: str
    previous: Decimal
    counted: Decimal
    difference: Decimal
    movement_id: int | None


class StocktakeOut(BaseModel):
    operation_id: str
    location: str
    lines: list[CountResult]


class TransferLine(_In):
    sku: str = Field(min_length=1, max_length=40)
    quantity: PositiveQty


class TransferIn(_In):
    from_location: str = Field(max_length=20)
    to_location: str = Field(max_length=20)
    reason: NoteText | None = Field(default=None, max_length=500)
    lines: list[TransferLine] = Field(min_length=1, max_length=MAX_LINES)

    @model_validator(mode="after")
    def _different_places(self):  # noqa: ANN202
        if self.from_location.upper() == self.to_location.upper():
            raise ValueError("to_location: debe ser distinta de from_location")
        return self


class SaleLine(_In):
    sku: str = Field(min_length=1, max_length=40, description="SKU o código de barras escaneado")
    quantity: PositiveQty
    unit_price: Money | None = Field(default=None, description="Precio cobrado con IVA; por defecto el de góndola")


class SaleIn(_In):
    ticket_id: str = Field(min_length=1, max_length=80, description="Id del ticket en la caja; una venta por ticket")
    location: str | None = Field(default=None, max_length=20)
    sold_at: AwareDatetime | None = Field(default=None, description="Hora de la venta (cajas que envían diferido)")
    lines: list[SaleLine] = Field(min_length=1, max_length=MAX_LINES)

    @field_validator("ticket_id")
    @classmethod
    def _printable(cls, v: str) -> str:
        if not v.isprintable():
            raise ValueError("ticket_id: sólo caracteres imprimibles")
        return v

    @field_validator("sold_at")
    @classmethod
    def _storable_time(cls, v: datetime | None) -> datetime | None:
        if v is not None:
            try:
                v.astimezone(UTC)  # stored in UTC, where year 1 at +05:00 falls off the calendar
            except OverflowError as exc:
                raise ValueError("fecha fuera de rango") from exc
        return v


class SaleOut(BaseModel):
    ticket_id: str
    operation_id: str
    total: Decimal
    movements: list[MovementOut]


class LocationOut(BaseModel):
    code: str
    name: str
    branch: str
    active: bool


# --------------------------------------------------------------------------- products with their stock
# (catalog + stock: the shapes of /api/inventory live here, because catalog does not know stock)


class LocationStock(BaseModel):
    location: str
    name: str
    quantity: Decimal


class ProductOut(BaseModel):
    sku: str
    barcode: str | None
    name: str
    brand: str | None
    category: str | None
    unit: str
    cost: Decimal
    price: Decimal
    vat_rate: Decimal
    min_stock: Decimal
    max_stock: Decimal | None
    supplier: str | None
    active: bool
    stock: Decimal
    low_stock: bool
    created_at: datetime
    updated_at: datetime


class ProductDetail(ProductOut):
    locations: list[LocationStock]


class ProductPage(BaseModel):
    items: list[ProductOut]
    next_cursor: str | None = Field(description="Pasalo como `cursor` para la página siguiente; null si no hay más")
