"""Pure pricing rules: shelf price from cost, rounding, markup resolution, margin, replacement cost.

No database and no framework here: every function takes and returns `Decimal` and is tested
without I/O (tests/unit/test_pricing_rules.py). Markups, IVA and inflation are percentages
(35 means 35 %). Shelf prices are always rounded *up* to the store's step, so rounding never
eats into the markup: with a markup ≥ 0 the price is never below cost × (1 + IVA).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, localcontext
from functools import lru_cache

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
DAYS_PER_MONTH = Decimal("30.44")
MONEY_MAX = Decimal("999999999999.99")  # NUMERIC(14,2)
MARKUP_MAX = Decimal("1000")  # a 1000 % markup is already a typo, not a price
PERCENT_MIN = Decimal("-90")  # a bulk change below −90 % is refused (almost surely a typo)
PERCENT_MAX = Decimal("1000")
INFLATION_MAX = Decimal("100")

# Store rounding rules: to a step of $1/$5/$10/$50/$100, or up to the next whole peso ending in 9 or 0.
STEPS = {"1": Decimal(1), "5": Decimal(5), "10": Decimal(10), "50": Decimal(50), "100": Decimal(100)}
ENDINGS = {"termina_9": 9, "termina_0": 0}
ROUNDING_RULES = (*STEPS, *ENDINGS)


def money(value: Decimal) -> Decimal:
    """Half-up to cents, the one rounding for amounts that are not shelf prices."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def round_price(value: Decimal, rule: str) -> Decimal:
    """Round a shelf price UP by the store's rule; idempotent (a rounded price stays put)."""
    value = Decimal(value)
    if value <= 0:
        return Decimal("0.00")
    if rule in STEPS:
        step = STEPS[rule]
        return ((value / step).to_integral_value(rounding=ROUND_CEILING) * step).quantize(CENT)
    if rule in ENDINGS:
        whole = int(value.to_integral_value(rounding=ROUND_CEILING))
        return Decimal(whole + (ENDINGS[rule] - whole) % 10).quantize(CENT)  # int %: never negative
    raise ValueError(f"regla de redondeo desconocida: {rule!r}; usá una de: {', '.join(ROUNDING_RULES)}")


def raw_price(cost: Decimal, markup: Decimal, vat: Decimal) -> Decimal:
    """cost × (1 + markup) × (1 + IVA), exact (not rounded)."""
    return Decimal(cost) * (1 + Decimal(markup) / HUNDRED) * (1 + Decimal(vat) / HUNDRED)


def shelf_price(cost: Decimal, markup: Decimal, vat: Decimal, rule: str) -> Decimal:
    """The suggested shelf price (IVA included) for a net cost, rounded by the store's rule."""
    return round_price(raw_price(cost, markup, vat), rule)


def resolve_markup(product_markup: Decimal | None, category_target: Decimal | None,
                   store_default: Decimal) -> Decimal:
    """The product's own markup, else its category's target, else the store default."""
    if product_markup is not None:
        return Decimal(product_markup)
    if category_target is not None:
        return Decimal(category_target)
    return Decimal(store_default)


def realized_markup(price: Decimal, cost: Decimal, vat: Decimal) -> Decimal | None:
    """The markup over cost that a shelf price gives (percent, 2 decimals); None without a cost."""
    cost = Decimal(cost)
    if cost <= 0:
        return None
    net = Decimal(price) / (1 + Decimal(vat) / HUNDRED)
    return ((net - cost) / cost * HUNDRED).quantize(CENT, rounding=ROUND_HALF_UP)


def below_target(price: Decimal, cost: Decimal, vat: Decimal, target: Decimal) -> bool:
    """Does the price give less than the target markup? (Exact comparison, no rounding.)"""
    cost = Decimal(cost)
    if cost <= 0:
        return False
    return Decimal(price) < raw_price(cost, target, vat)


def apply_percent(value: Decimal, percent: Decimal) -> Decimal:
    """value × (1 + percent/100), half-up to cents."""
    return money(Decimal(value) * (1 + Decimal(percent) / HUNDRED))


def replacement_cost(cost: Decimal, monthly_inflation: Decimal, days: Decimal | int) -> Decimal:
    """What buying it again costs today: cost × (1 + monthly inflation)^(days / 30.44)."""
    factor = _inflation_factor(Decimal(monthly_inflation), max(Decimal(days), Decimal(0)))
    with localcontext() as ctx:
        ctx.prec = 80  # years at a high rate outgrow the default 28 digits before the cents
        return money(Decimal(cost) * factor)


@lru_cache(maxsize=4096)
def _inflation_factor(monthly_inflation: Decimal, days: Decimal) -> Decimal:
    # A fractional power in 80 digits is ~30 us; a page of 100 lagging prices has a handful of distinct
    # (inflation, days) pairs, so it is computed once per pair.
    with localcontext() as ctx:
        ctx.prec = 80
        return (1 + monthly_inflation / HUNDRED) ** (days / DAYS_PER_MONTH)


def daily_loss(price: Decimal, suggested: Decimal, vat: Decimal, units_per_day: Decimal) -> Decimal:
    """Money left on the table per day (net of IVA) by selling at `price` instead of `suggested`."""
    gap = (Decimal(suggested) - Decimal(price)) / (1 + Decimal(vat) / HUNDRED)
    return money(max(gap, Decimal(0)) * Decimal(units_per_day))
