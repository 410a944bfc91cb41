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


def _group(whole: str) -> str:
    groups = []
    while whole:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    return ".".join(groups) or "0"


def format_number(value: Decimal | int, decimals: int = 0) -> str:
    """`1.234` / `1.234,5`: es-AR thousands and decimal separators, trailing decimal zeros dropped."""
    q = Decimal(value).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP) if decimals else \
        Decimal(value).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    sign = "-" if q < 0 else ""
    whole, _, frac = f"{abs(q):.{decimals}f}".partition(".")
    frac = frac.rstrip("0")
    return f"{sign}{_group(whole)}{',' + frac if frac else ''}"


def format_qty(value: Decimal | int) -> str:
    """A stock quantity: up to 3 decimals (kg, l), none for whole units: `1.250,5`, `12`."""
    return format_number(value, 3)


def format_percent(value: Decimal | None, decimals: int = 1) -> str:
    """`34,5 %`; a missing ratio (no sales) is `—`."""
    if value is None:
        return "—"
    q = Decimal(value).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    sign = "-" if q < 0 else ""
    whole, _, frac = f"{abs(q):.{decimals}f}".partition(".")
    return f"{sign}{_group(whole)},{frac} %" if decimals else f"{sign}{_group(whole)} %"
