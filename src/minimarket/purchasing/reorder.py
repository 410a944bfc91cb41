"""Reorder arithmetic, pure (no database): next order day, safety stock, pack rounding and one
product's suggestion with the reasons a store owner reads."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_CEILING, Decimal
from statistics import NormalDist

from minimarket.suppliers.models import WEEKDAYS

DEFAULT_SERVICE_LEVEL = 0.95
DEFAULT_COVER_DAYS = 14
MAE_TO_SIGMA = 1.25  # for normal errors σ ≈ 1.25 × mean absolute error


def review_days(today: date, order_days: list[str] | None) -> int:
    """Days from `today` to the supplier's next order day after today (you order today, the
    next chance is then); every day when the supplier has no order days."""
    chosen = {WEEKDAYS.index(d) for d in (order_days or []) if d in WEEKDAYS}
    if not chosen:
        return 1
    for ahead in range(1, 8):
        if (today + timedelta(days=ahead)).weekday() in chosen:
            return ahead
    return 7


def next_order_day(today: date, order_days: list[str] | None) -> date:
    """Today if the supplier takes orders today (or has no order days), else the next one."""
    chosen = {WEEKDAYS.index(d) for d in (order_days or []) if d in WEEKDAYS}
    if not chosen:
        return today
    return next(today + timedelta(days=a) for a in range(7) if (today + timedelta(days=a)).weekday() in chosen)


def service_z(level: float) -> float:
    if not 0.5 <= level < 1:
        raise ValueError("service_level: usá un valor entre 0,5 y 0,999 (por ejemplo 0,95)")
    return NormalDist().inv_cdf(level)


def safety_stock(mae_per_day: float | None, days: int, service_level: float = DEFAULT_SERVICE_LEVEL) -> float:
    """z(service level) × σ_daily × √days, σ from the backtest's mean absolute error per day
    (errors of different days taken as independent); 0 when the error is unknown."""
    if mae_per_day is None or not math.isfinite(mae_per_day) or days <= 0:
        return 0.0
    return service_z(service_level) * MAE_TO_SIGMA * mae_per_day * math.sqrt(days)


def round_to_pack(quantity: Decimal, pack_size: int | None) -> Decimal:
    """Up to whole units, then up to whole packs when the pack size is known."""
    units = quantity.to_integral_value(rounding=ROUND_CEILING)
    if units <= 0:
        return Decimal(0)
    if not pack_size or pack_size <= 1:
        return units
    packs = (units / pack_size).to_integral_value(rounding=ROUND_CEILING)
    return packs * pack_size


def demand_over(rate: float, profile: list[float], first: date, days: int) -> float:
    """Forecast units from `first` over `days` days: Σ rate × profile[weekday]."""
    return sum(rate * profile[(first + timedelta(days=i)).weekday()] for i in range(days))


@dataclass
class Suggestion:
    quantity: Decimal
    reorder_point: Decimal
    target: Decimal
    days_of_cover: float | None  # None: no demand forecast
    reasons: list[str] = field(default_factory=list)


def _shown(value: Decimal | float) -> str:
    """A quantity as a store owner reads it (es-AR): 12, 5,3 — never 12.000."""
    d = Decimal(str(round(float(value), 1)))
    text = format(d.normalize(), "f") if d == d.to_integral_value() else format(d, "f")
    return text.replace(".", ",")


def _tenths(value: float) -> Decimal:
    """Rounded to one decimal, as reorder points and targets are shown."""
    return Decimal(str(round(value, 1)))


def suggest(*, stock: Decimal, on_order: Decimal, rate: float | None, profile: list[float] | None,
            mae: float | None, today: date, lead_days: int, review: int, cover_days: int = DEFAULT_COVER_DAYS,
            service_level: float = DEFAULT_SERVICE_LEVEL, min_stock: Decimal = Decimal(0),
            max_stock: Decimal | None = None, pack_size: int | None = None) -> Suggestion:
    """How much to order now: with a forecast, when stock + on order ≤ demand over (lead + review)
    + safety stock, up to demand over (lead + cover) + safety stock (capped by max_stock); without
    one (no sales history), min/max."""
    position = stock + on_order
    if not rate or rate <= 0 or profile is None:
        return _min_max(position, stock, on_order, min_stock, max_stock, pack_size)
    horizon = lead_days + review
    ss = safety_stock(mae, horizon, service_level)
    point = _tenths(demand_over(rate, profile, today, horizon) + ss)
    target = _tenths(demand_over(rate, profile, today, lead_days + cover_days) + ss)
    reasons = [f"vende {_shown(rate)} u/día; stock {_shown(stock)} + pedido {_shown(on_order)} = {_shown(position)} alcanzan para "
               f"{_shown(float(position) / rate)} días",
               f"punto de pedido {_shown(point)}: demanda de {horizon} días (entrega {lead_days} + hasta el próximo "
               f"pedido {review}) + stock de seguridad {_shown(ss)}"]
    if max_stock is not None and target > max_stock:
        target = max_stock
        reasons.append(f"tope de stock máximo {_shown(max_stock)}")
    if min_stock and target < min_stock:
        target = min_stock
    qty = Decimal(0)
    if position <= point and target > position:
        qty = round_to_pack(target - position, pack_size)
        reasons.append(f"pedir hasta {_shown(target)} ({cover_days} días de cobertura después de la entrega)")
        if pack_size and pack_size > 1:
            reasons.append(f"redondeado a bultos de {pack_size}: {qty // pack_size} bultos")
    else:
        reasons.append("no hace falta pedir todavía")
    return Suggestion(qty, point, target, round(float(position) / rate, 1), reasons)


def _min_max(position, stock, on_order, min_stock, max_stock, pack_size) -> Suggestion:  # noqa: ANN001
    target = max_stock if max_stock is not None else min_stock * 2
    reasons = [f"sin historia de ventas: mínimo {_shown(min_stock)} / máximo "
               f"{_shown(max_stock) if max_stock is not None else '—'}",
               f"stock {_shown(stock)} + pedido {_shown(on_order)} = {_shown(position)}"]
    qty = Decimal(0)
    if min_stock > 0 and position <= min_stock and target > position:
        qty = round_to_pack(target - position, pack_size)
        reasons.append(f"por debajo del mínimo: pedir hasta {_shown(target)}")
        if pack_size and pack_size > 1:
            reasons.append(f"redondeado a bultos de {pack_size}: {qty // pack_size} bultos")
    else:
        reasons.append("no hace falta pedir todavía")
    return Suggestion(qty, min_stock, target, None, reasons)
