"""API shapes for products, categories and inventory lists."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from minimarket.ar.barcode import barcode_problem
from minimarket.plain_input import MoneyIn, NameText, NonNegativeQuantityIn, PlainDecimal
from minimarket.types import storable_text

SKU_PATTERN = re.compile(r"^[A-Z0-9._-]{1,40}$")
VAT_RATES = {Decimal("0"), Decimal("10.5"), Decimal("21"), Decimal("27")}

QtyIn = NonNegativeQuantityIn


def normalise_sku(raw: str) -> str:
    sku = raw.strip()
    # ASCII first: "ß".upper() is "SS" and "ı".upper() is "I", look-alikes of other SKUs.
    if not sku.isascii() or not SKU_PATTERN.match(sku.upper()):
        raise ValueError(
            "el SKU debe tener de 1 a 40 caracteres: letras sin acentos, números, punto, guion o guion bajo "
            "(ej. ALM-0001)"
        )
    return sku.upper()


def normalise_barcode(raw: str | None) -> str | None:
    if raw is None:
        return None
    code = raw.strip()
    if code == "":
        return None
    problem = barcode_problem(code)
    if problem:
        raise ValueError(problem)
    return code


def check_vat(rate: Decimal) -> Decimal:
    if rate not in VAT_RATES:
        raise ValueError("la alícuota de IVA debe ser 0, 10.5, 21 o 27")
    return rate


class _ProductRules(BaseModel):
    """Field rules shared by the create and update shapes."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("barcode", check_fields=False)
    @classmethod
    def _barcode(cls, v: str | None) -> str | None:
        return normalise_barcode(v)

    @field_validator("*")
    @classmethod
    def _storable(cls, v: object) -> object:
        return storable_text(v)

    @field_validator("vat_rate", check_fields=False)
    @classmethod
    def _vat(cls, v: Decimal | None) -> Decimal | None:
        return None if v is None else check_vat(v)


class ProductFields(_ProductRules):
    barcode: str | None = Field(default=None, description="EAN-13, EAN-8 o UPC-A con dígito verificador")
    name: NameText = Field(min_length=1, max_length=200)
    brand: NameText | None = Field(default=None, max_length=100)
    category: NameText | None = Field(default=None, max_length=100,
                                      description="Nombre de la categoría; se crea si no existe")
    unit: Literal["u", "kg", "l"] = "u"
    cost: MoneyIn = Field(default=Decimal("0"), description="Costo neto de IVA")
    price: MoneyIn = Field(default=Decimal("0"), description="Precio de góndola con IVA")
    vat_rate: PlainDecimal = Field(default=Decimal("21"), description="0, 10.5, 21 o 27")
    min_stock: QtyIn = Decimal("0")
    max_stock: QtyIn | None = None
    supplier: NameText | None = Field(default=None, max_length=200, description="Nombre o CUIT del proveedor")
    active: bool = True

    @model_validator(mode="after")
    def _stock_bounds(self):  # noqa: ANN202
        if self.max_stock is not None and self.max_stock < self.min_stock:
            raise ValueError("max_stock no puede ser menor que min_stock")
        return self


class ProductCreate(ProductFields):
    sku: str = Field(description="Código interno: letras, números, . _ - (hasta 40)")
    initial_stock: QtyIn | None = Field(default=None, description="Se registra como una entrada")
    location: str | None = Field(default=None, max_length=20, description="Ubicación del stock inicial (código)")

    @field_validator("sku")
    @classmethod
    def _sku(cls, v: str) -> str:
        return normalise_sku(v)

    @model_validator(mode="after")
    def _location_needs_stock(self):  # noqa: ANN202
        if self.location is not None and not self.initial_stock:
            raise ValueError("location: sólo se usa junto con initial_stock (la ubicación del stock inicial)")
        return self


class ProductUpdate(_ProductRules):
    """Only the fields sent change."""

    barcode: str | None = None
    name: NameText | None = Field(default=None, min_length=1, max_length=200)
    brand: NameText | None = Field(default=None, max_length=100)
    category: NameText | None = Field(default=None, max_length=100)
    unit: Literal["u", "kg", "l"] | None = None
    cost: MoneyIn | None = None
    price: MoneyIn | None = None
    vat_rate: PlainDecimal | None = None
    min_stock: QtyIn | None = None
    max_stock: QtyIn | None = None
    supplier: NameText | None = Field(default=None, max_length=200)
    active: bool | None = None

    @model_validator(mode="after")
    def _not_null(self):  # noqa: ANN202
        for name in ("name", "unit", "cost", "price", "vat_rate", "min_stock", "active"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} no puede ser null")
        return self


class CategoryOut(BaseModel):
    id: int
    name: str
    products: int
