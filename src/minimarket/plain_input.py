"""Input that means one thing only: plain decimal numbers, names without invisible characters, ASCII codes.

Python is generous where a store must not be: `Decimal("1_000")`, `Decimal("١٢٣")` (Arabic-
Indic digits) and `Decimal("1e3")` are all numbers, `"ßabc".upper()` is `"SSABC"`, and a name
with a right-to-left override or a zero-width space looks exactly like another name. These
validators refuse what a person could not see or did not mean; every area's schemas use them.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from minimarket.limits import MONEY, QUANTITY, NumericLimit
from minimarket.platform.json_numbers import JsonNumber
from minimarket.types import storable_text

_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
PLAIN_DECIMAL_HELP = ("debe ser un número escrito con dígitos 0-9 y punto decimal, sin separador de miles, "
                      "exponente ni espacios (ej. 1234.50)")


def plain_decimal(value: Any) -> Any:
    """Before-validator: text and JSON numbers become a Decimal only when written as plain decimals."""
    if isinstance(value, bool):
        raise ValueError(PLAIN_DECIMAL_HELP)
    if isinstance(value, JsonNumber):
        text = value.literal
    elif isinstance(value, str):
        text = value
    elif isinstance(value, float):  # a JSON number parsed by a router without PlainNumbersRoute
        text = repr(value)
    else:  # int (JSON integers are plain) and Decimal from Python callers; other types: pydantic refuses them
        return value
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise ValueError(PLAIN_DECIMAL_HELP)
    return Decimal(text)


def _fits(limit: NumericLimit) -> AfterValidator:
    def check(value: Decimal | None) -> Decimal | None:
        if value is not None:
            problem = limit.problem(value)
            if problem is not None:
                raise ValueError(problem)
        return value

    return AfterValidator(check)


def decimal_in(limit: NumericLimit, **constraints: Any) -> Any:
    """A request field for a NUMERIC column: plain decimal text that fits `limit` (plus ge/gt/description)."""
    return Annotated[Decimal, BeforeValidator(plain_decimal), Field(allow_inf_nan=False, **constraints),
                     _fits(limit)]


PlainDecimal = Annotated[Decimal, BeforeValidator(plain_decimal), Field(allow_inf_nan=False)]
QuantityIn = decimal_in(QUANTITY)
PositiveQuantityIn = decimal_in(QUANTITY, gt=0)
NonNegativeQuantityIn = decimal_in(QUANTITY, ge=0)
MoneyIn = decimal_in(MONEY, ge=0)
PERCENT = NumericLimit(label="porcentaje", precision=7, scale=2)  # NUMERIC(7,2): bulk percentages, markups


def percent_in(**constraints: Any) -> Any:
    """A percentage (2 decimals) as plain decimal text, within `constraints` (ge/le/lt)."""
    return decimal_in(PERCENT, **constraints)


# ----------------------------------------------------------------------------------------------- text

_LABELS = {"\n": "un salto de línea", "\r": "un retorno de carro", "\t": "una tabulación",
           "\ufeff": "una marca de orden de bytes (BOM)", "\u00ad": "un guion invisible"}
_BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_ZERO_WIDTH = set("\u200b\u200c\u200d\u2060")


def _describe(ch: str) -> str:
    if ch in _LABELS:
        label = _LABELS[ch]
    elif ch in _BIDI:
        label = "un control de dirección de texto"
    elif ch in _ZERO_WIDTH:
        label = "un carácter de ancho cero"
    else:
        label = "un carácter invisible o de control"
    return f"{label} (U+{ord(ch):04X})"


def _invisible(text: str, *, allow: str = "") -> str | None:
    for position, ch in enumerate(text, start=1):
        if ch not in allow and not ch.isprintable():
            return f"tiene {_describe(ch)} en la posición {position}; escribilo sin él"
    return None


def name_text(value: str | None) -> str | None:
    """A name (product, brand, category, supplier, reference): one line of visible characters.

    Composed accents (NFC), every kind of space as a plain space, runs of spaces collapsed;
    control, format (bidi overrides, zero-width, BOM) and line-break characters refused.
    """
    if value is None:
        return None
    text = unicodedata.normalize("NFC", value)
    text = "".join(" " if unicodedata.category(ch) == "Zs" else ch for ch in text)
    problem = _invisible(text)
    if problem:
        raise ValueError(problem)
    return re.sub(" {2,}", " ", text).strip()


def note_text(value: str | None) -> str | None:
    """Free text (a reason, a note): line breaks and tabs allowed, other invisible characters refused."""
    if value is None:
        return None
    text = unicodedata.normalize("NFC", value).replace("\r\n", "\n")
    text = "".join(" " if unicodedata.category(ch) == "Zs" else ch for ch in text)
    problem = _invisible(text, allow="\n\t")
    if problem:
        raise ValueError(problem)
    return text


def ascii_code(value: str, *, what: str) -> str:
    """Codes (SKU, location) are ASCII: checked before folding case, so `ß` never becomes `SS`."""
    if not value.isascii():
        raise ValueError(f"{what} sólo admite letras sin acentos, números y . _ - (se recibió '{value}')")
    return value.upper()


NameText = Annotated[str, AfterValidator(name_text)]
NoteText = Annotated[str, AfterValidator(note_text)]


class PlainIn(BaseModel):
    """Base of every request body: unknown fields refused, text stripped and checked storable."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _storable(cls, v: object) -> object:
        return storable_text(v)
