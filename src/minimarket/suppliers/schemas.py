"""API shapes for suppliers, assignment rules and merges."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from minimarket.ar.cuit import cuit_problem, format_cuit, normalise_cuit
from minimarket.plain_input import MoneyIn, NameText, NoteText, PlainIn
from minimarket.suppliers.rules import fold, normalise_order_days

CODE_PATTERN = re.compile(r"^[A-Z0-9._-]{1,20}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
RuleKind = Literal["marca", "palabra", "categoria", "predeterminado"]


def check_cuit(raw: str | None) -> str | None:
    """11 digits without separators, or None; ValueError naming the problem."""
    if raw is None or not raw.strip():
        return None
    problem = cuit_problem(raw)
    if problem:
        raise ValueError(problem)
    return normalise_cuit(raw)


class _In(PlainIn):
    @field_validator("cuit", check_fields=False)
    @classmethod
    def _cuit(cls, v: str | None) -> str | None:
        return check_cuit(v)

    @field_validator("code", check_fields=False)
    @classmethod
    def _code(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        code = v.upper()
        if not CODE_PATTERN.match(code):
            raise ValueError("el código debe tener de 1 a 20 letras, números, punto, guion o guion bajo (ej. PROV-01)")
        return code

    @field_validator("email", check_fields=False)
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        if not EMAIL_PATTERN.match(v):
            raise ValueError("el e-mail no es válido (ej. ventas@proveedor.com.ar)")
        return v.lower()

    @field_validator("order_days", check_fields=False)
    @classmethod
    def _days(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else normalise_order_days(v)


class SupplierFields(_In):
    code: str | None = Field(default=None, max_length=20, description="Código interno del proveedor")
    cuit: str | None = Field(default=None, max_length=13, description="11 dígitos, con o sin guiones")
    phone: NameText | None = Field(default=None, max_length=50)
    email: NameText | None = Field(default=None, max_length=200)
    address: NameText | None = Field(default=None, max_length=300)
    order_days: list[str] | None = Field(default=None, max_length=7, description="Días en que se le pide: lunes…domingo")
    lead_time_days: int | None = Field(default=None, ge=0, le=90, description="Días entre el pedido y la entrega")
    min_order: MoneyIn | None = Field(default=None, description="Pedido mínimo en pesos")
    notes: NoteText | None = Field(default=None, max_length=2000)


class SupplierCreate(SupplierFields):
    name: NameText = Field(min_length=1, max_length=200)
    active: bool = True


class SupplierUpdate(SupplierFields):
    """Only the fields sent change; send null to clear one."""

    name: NameText | None = Field(default=None, min_length=1, max_length=200)
    active: bool | None = None


class SupplierOut(BaseModel):
    id: int
    code: str | None
    name: str
    cuit: str | None = Field(description="Con guiones (30-71234567-1); null si falta cargarlo")
    phone: str | None
    email: str | None
    address: str | None
    order_days: list[str]
    lead_time_days: int | None
    min_order: Decimal | None
    notes: str | None
    active: bool
    incomplete: bool = Field(description="true = 'a completar': el proveedor no tiene CUIT")
    merged_into: int | None
    products: int
    created_at: datetime
    updated_at: datetime | None

    @staticmethod
    def shown_cuit(cuit: str | None) -> str | None:
        return format_cuit(cuit) if cuit else None


class SupplierPage(BaseModel):
    items: list[SupplierOut]
    next_cursor: str | None


class MergeIn(_In):
    into: int = Field(ge=1, le=2_147_483_647, description="Id del proveedor que queda; éste se desactiva y le pasa productos e historia")


class MergeOut(BaseModel):
    survivor: SupplierOut
    merged: SupplierOut
    moved: dict[str, int]


class RuleIn(_In):
    kind: RuleKind = Field(description="marca, palabra (en el nombre), categoria o predeterminado")
    value: NameText = Field(default="", max_length=100, description="La marca, palabra o categoría (vacío en predeterminado)")
    supplier: int = Field(ge=1, le=2_147_483_647, description="Id del proveedor")
    priority: int = Field(default=0, ge=-1000, le=1000, description="Mayor prioridad gana")

    @field_validator("value")
    @classmethod
    def _folded(cls, v: str) -> str:
        return fold(v)

    @model_validator(mode="after")
    def _value_needed(self):  # noqa: ANN202
        if self.kind != "predeterminado" and not self.value:
            raise ValueError(f"value: una regla '{self.kind}' necesita la {self.kind} a buscar (letras o números)")
        if self.kind == "predeterminado" and self.value:
            raise ValueError("value: la regla predeterminado no lleva valor; dejalo vacío")
        return self


class RuleOut(BaseModel):
    id: int
    kind: str
    value: str
    supplier: int
    supplier_name: str
    priority: int


class AssignIn(_In):
    name: NameText = Field(min_length=1, max_length=200, description="Nombre del producto")
    brand: NameText | None = Field(default=None, max_length=100)
    category: NameText | None = Field(default=None, max_length=100)


class AssignOut(BaseModel):
    supplier: SupplierOut | None
    confidence: Decimal = Field(description="0 a 1")
    rule: RuleOut | None
    reason: str
