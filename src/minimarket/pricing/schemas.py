"""API shapes for prices: settings, history, bulk changes, price lists, lagging prices."""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from minimarket.catalog.schemas import normalise_sku
from minimarket.plain_input import NameText, NoteText, PlainIn, percent_in
from minimarket.pricing.rules import INFLATION_MAX, MARKUP_MAX, PERCENT_MAX, PERCENT_MIN
from minimarket.types import storable_text

Markup = percent_in(ge=0, le=MARKUP_MAX)
Inflation = percent_in(ge=0, le=INFLATION_MAX)
Percent = percent_in()
Rounding = Literal["1", "5", "10", "50", "100", "termina_9", "termina_0"]


_In = PlainIn  # the shared base: unknown fields refused, text stripped and storable


class CategoryMarkup(BaseModel):
    category: str
    target_markup: Decimal | None
    products: int


class PricingSettingsOut(BaseModel):
    default_markup: Decimal = Field(description="Margen sobre costo (%) cuando ni el producto ni su categoría fijan uno")
    rounding: Rounding = Field(description="Redondeo hacia arriba: a $1, $5, $10, $50, $100, o terminado en 9 / 0")
    monthly_inflation: Decimal = Field(description="Inflación mensual (%) para el costo de reposición")
    apply_suggested_price: bool = Field(description="Al entrar un costo nuevo (factura), aplicar el precio sugerido")
    category_markups: list[CategoryMarkup]


class PricingSettingsPatch(_In):
    """Only the fields sent change."""

    default_markup: Markup | None = None
    rounding: Rounding | None = None
    monthly_inflation: Inflation | None = None
    apply_suggested_price: bool | None = None
    category_markups: dict[Annotated[NameText, Field(min_length=1, max_length=100)], Markup | None] | None = Field(
        default=None, max_length=500, description="Categoría → margen objetivo (%); null lo quita")

    @model_validator(mode="after")
    def _not_null(self):  # noqa: ANN202
        for name in ("default_markup", "rounding", "monthly_inflation", "apply_suggested_price"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} no puede ser null")
        return self


class MarkupIn(_In):
    markup: Markup | None = Field(description="Margen propio del producto (%); null vuelve al de su categoría o tienda")


class PriceChangeOut(BaseModel):
    id: int
    at: datetime
    reason: str
    batch_id: int | None
    reference: str | None
    actor: str
    cost_before: Decimal
    cost_after: Decimal
    price_before: Decimal
    price_after: Decimal


class PriceSummary(BaseModel):
    sku: str
    name: str
    cost: Decimal = Field(description="Costo neto de IVA")
    replacement_cost: Decimal = Field(description="Costo de reposición: costo × (1 + inflación mensual)^(días/30,44)")
    last_purchase_at: datetime | None
    days_since_purchase: Decimal
    price: Decimal
    vat_rate: Decimal
    markup: Decimal | None = Field(description="Margen sobre costo que da el precio actual (%)")
    target_markup: Decimal
    markup_source: Literal["producto", "categoria", "tienda"]
    suggested_price: Decimal
    below_target: bool


class PriceHistoryOut(PriceSummary):
    changes: list[PriceChangeOut]


class ProductFilter(_In):
    """Which products a bulk change touches (active ones; all conditions together)."""

    category: NameText | None = Field(default=None, max_length=100)
    supplier: NameText | None = Field(default=None, max_length=200, description="Nombre o CUIT")
    brand: NameText | None = Field(default=None, max_length=100)
    skus: list[str] | None = Field(default=None, max_length=20000)
    all_products: bool = Field(default=False, description="true: todos los productos activos (sin otro filtro)")

    @field_validator("skus")
    @classmethod
    def _skus(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else sorted({normalise_sku(s) for s in v})

    @model_validator(mode="after")
    def _something(self):  # noqa: ANN202
        given = [n for n in ("category", "supplier", "brand", "skus") if getattr(self, n)]
        if not given and not self.all_products:
            raise ValueError("indicá category, supplier, brand o skus (o all_products: true para todos)")
        if given and self.all_products:
            raise ValueError("all_products no se combina con otros filtros")
        return self


class BulkChangeIn(_In):
    filter: ProductFilter
    operation: Literal["price_percent", "cost_percent", "recompute"] = Field(
        description="price_percent: precio ± %; cost_percent: costo ± %; recompute: precio desde costo y margen")
    percent: Percent | None = Field(
        default=None, description="Para price_percent y cost_percent; no menor que −90")
    update_prices: bool = Field(default=False, description="Con cost_percent: recalcular también el precio")
    note: NoteText | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _percent(self):  # noqa: ANN202
        if self.operation == "recompute":
            if self.percent is not None:
                raise ValueError("percent: no se usa con recompute")
            return self
        if self.percent is None:
            raise ValueError(f"percent: es obligatorio con {self.operation}")
        if self.percent < PERCENT_MIN or self.percent > PERCENT_MAX:
            raise ValueError(f"percent: debe estar entre {PERCENT_MIN} y {PERCENT_MAX}; se recibió {self.percent}")
        return self


class PlannedChangeOut(BaseModel):
    sku: str
    name: str
    cost_before: Decimal
    cost_after: Decimal
    price_before: Decimal
    price_after: Decimal
    markup_after: Decimal | None = Field(description="Margen sobre costo con el precio nuevo (%)")
    target_markup: Decimal
    below_target: bool


class BulkPreviewOut(BaseModel):
    count: int = Field(description="Productos que cambian")
    unchanged: int = Field(description="Productos del filtro que quedan igual")
    below_target: int = Field(description="Cuántos quedan por debajo de su margen objetivo")
    items: list[PlannedChangeOut] = Field(description="Por SKU, desde `offset` (0), hasta `limit` (500; máximo 1000)")


class BatchOut(BaseModel):
    batch_id: int
    operation: str
    reason: str
    percent: Decimal | None
    description: str | None
    products: int
    actor: str
    created_at: datetime
    undone_at: datetime | None
    undone_by: int | None
    undoes: int | None


class BatchPage(BaseModel):
    items: list[BatchOut]


class LaggingItem(PriceSummary):
    units_per_day: Decimal = Field(description="Unidades vendidas por día (últimos 30 días)")
    lost_per_day: Decimal = Field(description="Pesos por día (netos de IVA) que se dejan de ganar")
    cost_changed_at: datetime | None = Field(description="Último cambio de costo registrado")


class LaggingOut(BaseModel):
    count: int
    items: list[LaggingItem]


class PriceListRow(BaseModel):
    line: int
    code: str
    sku: str
    name: str
    cost_before: Decimal
    cost_after: Decimal
    price_before: Decimal
    price_after: Decimal
    markup_after: Decimal | None
    below_target: bool


class PriceListOut(BaseModel):
    batch_id: int | None = Field(description="null en la vista previa")
    matched: int
    unchanged: int
    unknown: list[dict] = Field(description="Líneas cuyo código no es de ningún producto: {line, code}")
    items: list[PriceListRow]


class PriceListRequest(BaseModel):
    """What identifies an uploaded list (for Idempotency-Key): its name, content hash and options."""

    filename: str
    sha256: str
    supplier: str | None
    update_prices: bool

    @classmethod
    def of(cls, *, filename: str, content: bytes, supplier: str | None, update_prices: bool) -> PriceListRequest:
        return cls(filename=str(storable_text(filename.replace("\x00", "")))[-200:],
                   sha256=hashlib.sha256(content).hexdigest(), supplier=supplier or None, update_prices=update_prices)
