"""API shapes for supplier invoices: drafts with lines, matches, confirmation, annulment, QR prefill, imports."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from minimarket.ar.invoices import MAX_NUMBER, MAX_POINT_OF_SALE
from minimarket.catalog.schemas import check_vat
from minimarket.plain_input import MoneyIn as Money, PlainIn
from minimarket.plain_input import NameText, NoteText, PlainDecimal, ascii_code, percent_in
from minimarket.plain_input import PositiveQuantityIn as Qty
from minimarket.suppliers.schemas import check_cuit

MAX_LINES = 500
Percent = percent_in(ge=0, lt=100)
InvoiceType = Literal["A", "B", "C", "M"]
State = Literal["borrador", "confirmada", "anulada"]
RATE_KEYS = ("0", "10.5", "21", "27")


_In = PlainIn  # the shared base: unknown fields refused, text stripped and storable


def _rates(value: dict[str, Decimal], *, allow_zero: bool) -> dict[str, Decimal]:
    for key in value:
        if key not in RATE_KEYS or (key == "0" and not allow_zero):
            allowed = RATE_KEYS if allow_zero else RATE_KEYS[1:]
            raise ValueError(f"la alícuota '{key}' no existe; usá {', '.join(allowed)}")
    return value


def check_cae(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit() and len(value) == 14):
        raise ValueError("el CAE tiene 14 dígitos (ej. 76123456789012)")
    return value


class LineIn(_In):
    barcode: str | None = Field(default=None, max_length=14, description="Código de barras (se busca primero)")
    sku: str | None = Field(default=None, max_length=40, description="SKU (se busca si no hay código de barras)")
    supplier_code: NameText | None = Field(default=None, max_length=60, description="Código del proveedor (recordado)")
    description: NameText | None = Field(default=None, max_length=200)
    quantity: Qty
    unit_cost: Money = Field(description="Costo unitario neto de IVA (en B y C, el importe de la factura)")
    vat_rate: PlainDecimal = Field(default=Decimal("21"), description="0, 10.5, 21 o 27")
    discount_pct: Percent = Decimal("0")

    @field_validator("vat_rate")
    @classmethod
    def _vat(cls, v: Decimal) -> Decimal:
        return check_vat(v)

    @field_validator("sku", "barcode")
    @classmethod
    def _ascii(cls, v: str | None, info: ValidationInfo) -> str | None:
        # SKUs and barcodes are ASCII: checked before matching folds case ('ß'.upper() is 'SS').
        return None if v is None or v == "" else ascii_code(v, what=info.field_name)


class InvoiceIn(_In):
    supplier: NameText | None = Field(default=None, max_length=200,
                                 description="Id, CUIT o nombre del proveedor; si falta, se busca por issuer_cuit")
    type: InvoiceType
    point_of_sale: int = Field(ge=1, le=MAX_POINT_OF_SALE)
    number: int = Field(ge=1, le=MAX_NUMBER)
    date: dt.date
    issuer_cuit: str | None = Field(default=None, max_length=13, description="Por defecto, el CUIT del proveedor")
    net: dict[str, Money] = Field(default_factory=dict, description='Neto por alícuota: {"21": "1000.00", "0": …}')
    vat: dict[str, Money] = Field(default_factory=dict, description='IVA por alícuota (sólo A y M): {"21": "210.00"}')
    perception_iibb: Money = Decimal("0")
    perception_vat: Money = Decimal("0")
    total: Money
    cae: str | None = Field(default=None, description="14 dígitos")
    cae_due: dt.date | None = None
    notes: NoteText | None = Field(default=None, max_length=2000)
    lines: list[LineIn] = Field(default_factory=list, max_length=MAX_LINES)

    @field_validator("issuer_cuit")
    @classmethod
    def _cuit(cls, v: str | None) -> str | None:
        return check_cuit(v)

    @field_validator("cae")
    @classmethod
    def _cae(cls, v: str | None) -> str | None:
        return check_cae(v)

    @field_validator("net")
    @classmethod
    def _net(cls, v: dict[str, Decimal]) -> dict[str, Decimal]:
        return _rates(v, allow_zero=True)

    @field_validator("vat")
    @classmethod
    def _vat(cls, v: dict[str, Decimal]) -> dict[str, Decimal]:
        return _rates(v, allow_zero=False)


class MatchIn(_In):
    line: int = Field(ge=1, le=MAX_LINES, description="Número de línea de la factura")
    product: str = Field(min_length=1, max_length=60, description="SKU o código de barras")
    pack_size: int | None = Field(default=None, ge=1, le=100000, description="Unidades por bulto del proveedor")


class InvoicePatch(_In):
    """Only in borrador. Amounts are not editable: annul the draft and load it again."""

    date: dt.date | None = None
    cae: str | None = None
    cae_due: dt.date | None = None
    notes: NoteText | None = Field(default=None, max_length=2000)
    matches: list[MatchIn] = Field(default_factory=list, max_length=MAX_LINES,
                                   description="Asociar líneas a productos; el código del proveedor queda recordado")

    @field_validator("cae")
    @classmethod
    def _cae(cls, v: str | None) -> str | None:
        return check_cae(v)


class ConfirmIn(_In):
    location: str | None = Field(default=None, max_length=20, description="Ubicación de la entrada (por defecto DEP)")


class AnnulIn(_In):
    reason: NoteText = Field(min_length=3, max_length=500, description="Por qué se anula")


class QrIn(_In):
    url: str = Field(min_length=1, max_length=2000, description="Lo que lee el celular: https://www.afip.gob.ar/fe/qr/?p=…")


class SupplierRef(BaseModel):
    id: int
    name: str


class LineOut(BaseModel):
    line: int
    barcode: str | None
    sku: str | None
    supplier_code: str | None
    description: str | None
    product: str | None = Field(description="SKU del producto asociado; null = sin asociar")
    quantity: Decimal
    unit_cost: Decimal
    vat_rate: Decimal
    discount_pct: Decimal
    net: Decimal


class InvoiceOut(BaseModel):
    id: int
    supplier: SupplierRef
    type: str
    point_of_sale: int
    number: int
    number_display: str = Field(description="0003-00012345")
    date: dt.date
    issuer_cuit: str
    net: dict[str, Decimal]
    vat: dict[str, Decimal]
    perception_iibb: Decimal
    perception_vat: Decimal
    total: Decimal
    cae: str | None
    cae_due: dt.date | None
    state: State
    location: str | None
    goods_received_by: str | None = Field(
        description="Lo que ya ingresó la mercadería en lugar de la factura (`pedido:12`): confirmarla registra "
                    "sólo los costos")
    notes: str | None
    unmatched_lines: int
    lines: list[LineOut]
    created_by: str
    created_at: dt.datetime
    confirmed_by: str | None
    confirmed_at: dt.datetime | None
    annulled_by: str | None
    annulled_at: dt.datetime | None
    annul_reason: str | None


class InvoicePage(BaseModel):
    items: list[InvoiceOut]
    next_cursor: str | None


class CostChange(BaseModel):
    sku: str
    cost_before: Decimal
    cost_after: Decimal
    price: Decimal = Field(description="Precio de góndola después de confirmar")
    suggested_price: Decimal
    applied: bool = Field(description="true si el ajuste de la tienda aplica el precio sugerido")


class ConfirmOut(BaseModel):
    invoice: InvoiceOut
    operation_id: str | None = Field(description="La operación del libro; null si la mercadería ya había "
                                                 "ingresado con un pedido (sólo costos)")
    cost_changes: list[CostChange]


class QrOut(BaseModel):
    type: str
    point_of_sale: int
    number: int
    number_display: str
    date: dt.date
    issuer_cuit: str
    total: Decimal
    currency: str
    exchange_rate: Decimal
    cae: str
    supplier: SupplierRef | None = Field(description="El proveedor con ese CUIT, si está cargado")
    existing_id: int | None = Field(description="Id de la factura si ya se cargó")


class ImportOut(BaseModel):
    created: list[InvoiceOut]


TaxCondition = Literal["responsable_inscripto", "monotributo", "exento"]
TAX_CONDITION_HELP = ("Condición de la tienda frente al IVA. responsable_inscripto: el IVA de una factura A o M "
                      "es crédito fiscal y el costo es el neto; monotributo o exento: ese IVA es parte del costo. "
                      "En B y C el costo es siempre el importe de la factura (su IVA no se discrimina)")


class InvoiceSettings(BaseModel):
    deposito_can_confirm: bool = Field(description="true: el rol deposito puede confirmar la recepción de una factura")
    tax_condition: TaxCondition = Field(description=TAX_CONDITION_HELP)


class InvoiceSettingsPatch(_In):
    """Only the fields sent change."""

    deposito_can_confirm: bool | None = Field(default=None, description="true: el rol deposito puede confirmar")
    tax_condition: TaxCondition | None = Field(default=None, description=TAX_CONDITION_HELP)
