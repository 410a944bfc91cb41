"""What fits in a NUMERIC column, derived from the column types, and the checks that keep writes inside it.

A value that does not fit NUMERIC(p, s) makes PostgreSQL abort the whole transaction
("numeric field overflow"), while SQLite stores it as an inexact REAL and the ledger stops
adding up. Both are refused here, the same on every backend, before anything is written:

- `check_value(value, QUANTITY, field="quantity")` → 422 for a value the client sent;
- `check_result(value, QUANTITY, field=..., subject=...)` → 409 for a value a write would
  produce (a balance, a total) from what is already stored;
- `QUANTITY.fits(value)` and `QUANTITY.maximum` for conditions inside SQL (the ledger's
  conditional UPDATE) and for messages.

Every area that stores quantities or money (stock, invoices, pricing, purchasing) uses these
instead of repeating the column sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import Numeric

from minimarket import types
from minimarket.errors import Conflict, InvalidInput


class OutOfRange(Conflict):
    """A write would leave a stored number outside what its column can hold."""

    code = "fuera_de_rango"


@dataclass(frozen=True)
class NumericLimit:
    """NUMERIC(precision, scale): at most `maximum` in absolute value, in steps of `step`."""

    label: str  # what the column holds, in Spanish: "cantidad", "importe"
    precision: int
    scale: int

    @classmethod
    def of(cls, column_type: Numeric, label: str) -> NumericLimit:
        return cls(label=label, precision=column_type.precision, scale=column_type.scale)

    @property
    def step(self) -> Decimal:
        return Decimal(1).scaleb(-self.scale)

    @property
    def maximum(self) -> Decimal:
        return (Decimal(10) ** (self.precision - self.scale) - self.step).quantize(self.step)

    def problem(self, value: Decimal) -> str | None:
        """Why `value` cannot be stored in this column (Spanish), or None when it fits."""
        if not value.is_finite():
            return "debe ser un número finito"
        try:
            exact = value == value.quantize(self.step)
        except InvalidOperation:  # more digits than the context holds: far beyond the maximum
            exact = True
        if abs(value) > self.maximum:
            return f"supera el máximo que se puede guardar ({self.format(self.maximum)})"
        if not exact:
            return f"tiene demasiados decimales (máximo {self.scale})"
        return None

    def fits(self, value: Decimal) -> bool:
        return self.problem(value) is None

    def format(self, value: Decimal) -> str:
        return format(value.quantize(self.step), "f")


# The column types in minimarket.types are the single source of these numbers.
QUANTITY = NumericLimit.of(types.Quantity, "cantidad")
MONEY = NumericLimit.of(types.Money, "importe")


def check_value(value: Decimal, limit: NumericLimit, *, field: str) -> Decimal:
    """A value sent by the client: InvalidInput (422) naming the field and the limit when it does not fit."""
    problem = limit.problem(value)
    if problem is not None:
        raise InvalidInput(f"{field}: {problem}",
                           details=[{"field": field, "problem": problem, "maximum": limit.format(limit.maximum)}])
    return value


def check_result(value: Decimal, limit: NumericLimit, *, field: str, subject: str,
                 details: dict | None = None) -> Decimal:
    """A value a write would produce (`subject`, e.g. "el saldo de 'X' en DEP"): OutOfRange (409) if it does not fit."""
    if limit.fits(value):
        return value
    maximum = limit.format(limit.maximum)
    raise OutOfRange(
        f"{field}: {subject} quedaría en {format(value, 'f')}, fuera de lo que se puede guardar "
        f"(entre -{maximum} y {maximum}); revisá la cantidad",
        details={"field": field, "value": format(value, "f"), "maximum": maximum, **(details or {})},
    )
