"""Money and quantities: Decimal only, es-AR formatting."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
MILLI = Decimal("0.001")
VAT_RATES = (Decimal("0"), Decimal("10.5"), Decimal("21"), Decimal("27"))


def to_money(value: Decimal | int | str) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def to_qty(value: Decimal | int | str) -> Decimal:
    return Decimal(value).quantize(MILLI, rounding=ROUND_HALF_UP)


def format_ars(value: Decimal) -> str:
    """`$ 1.234,56` as a store in Argentina writes it."""
    q = to_money(value)
    sign = "-" if q < 0 else ""
    whole, _, cents = f"{abs(q):.2f}".partition(".")
    groups = []
    while whole:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    return f"{sign}$ {'.'.join(groups)},{cents}"
