"""The store's pricing settings (table `ajustes`) and category target markups (`categorias`).

Services load them inside their own unit of work (`load_pricing_settings(session)`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from minimarket.accounts.audit import Context, record_audit
from minimarket.catalog.models import Category, Product
from minimarket.errors import InvalidInput
from minimarket.pricing.rules import INFLATION_MAX, MARKUP_MAX, ROUNDING_RULES
from minimarket.store_settings import (
    APPLY_SUGGESTED,
    DEFAULT_MARKUP,
    MONTHLY_INFLATION,
    ROUNDING,
    parse_flag,
    read_values,
    write_value,
)


@dataclass(frozen=True)
class PricingSettings:
    default_markup: Decimal = Decimal("35")
    rounding: str = "10"
    monthly_inflation: Decimal = Decimal("0")
    apply_suggested_price: bool = False


def _decimal(raw: str | None, default: Decimal) -> Decimal:
    try:
        return Decimal(raw) if raw is not None else default
    except InvalidOperation:
        return default  # an unreadable stored value falls back to the default rather than breaking pricing


def load_pricing_settings(session: Session) -> PricingSettings:
    """The store's pricing settings (one statement); unset keys take the defaults."""
    base = PricingSettings()
    stored = read_values(session, ROUNDING, APPLY_SUGGESTED, DEFAULT_MARKUP, MONTHLY_INFLATION)
    rounding = stored[ROUNDING]
    return PricingSettings(
        default_markup=_decimal(stored[DEFAULT_MARKUP], base.default_markup),
        rounding=rounding if rounding in ROUNDING_RULES else base.rounding,
        monthly_inflation=_decimal(stored[MONTHLY_INFLATION], base.monthly_inflation),
        apply_suggested_price=parse_flag(stored[APPLY_SUGGESTED], default=False),
    )


def category_markups(session: Session) -> list[tuple[str, Decimal | None, int]]:
    """(category, target markup, active products) for every category, by name."""
    counts = (select(Product.category_id, func.count().label("n")).where(Product.active.is_(True))
              .group_by(Product.category_id).subquery())
    rows = session.execute(
        select(Category.name, Category.target_markup, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.category_id == Category.id).order_by(Category.name)
    ).all()
    return [(name, target, int(n)) for name, target, n in rows]


def _check_markup(field: str, value: Decimal) -> Decimal:
    if value < 0 or value > MARKUP_MAX:
        raise InvalidInput(f"{field}: el margen debe estar entre 0 y {MARKUP_MAX} (%); se recibió {value}",
                           details={"field": field})
    return value.quantize(Decimal("0.01"))


def update_pricing_settings(session: Session, ctx: Context, *, changes: dict) -> PricingSettings:
    """Change the settings sent (and category targets); audited with before and after."""
    before = load_pricing_settings(session)
    if "default_markup" in changes:
        write_value(session, DEFAULT_MARKUP, str(_check_markup("default_markup", changes["default_markup"])))
    if "rounding" in changes:
        if changes["rounding"] not in ROUNDING_RULES:
            raise InvalidInput(f"rounding: usá una de: {', '.join(ROUNDING_RULES)}", details={"field": "rounding"})
        write_value(session, ROUNDING, changes["rounding"])
    if "monthly_inflation" in changes:
        rate = changes["monthly_inflation"]
        if rate < 0 or rate > INFLATION_MAX:
            raise InvalidInput(f"monthly_inflation: debe estar entre 0 y {INFLATION_MAX} (% mensual)",
                               details={"field": "monthly_inflation"})
        write_value(session, MONTHLY_INFLATION, str(rate.quantize(Decimal("0.01"))))
    if "apply_suggested_price" in changes:
        write_value(session, APPLY_SUGGESTED, "true" if changes["apply_suggested_price"] else "false")
    targets = _set_category_targets(session, changes.get("category_markups") or {})
    after = load_pricing_settings(session)
    if after != before or targets:
        record_audit(session, ctx, action="settings.pricing", entity="ajustes", entity_id="precios",
                     before=asdict(before), after={**asdict(after), "category_markups": targets})
    return after


def _set_category_targets(session: Session, targets: dict[str, Decimal | None]) -> dict[str, str | None]:
    changed: dict[str, str | None] = {}
    for name, value in targets.items():
        category = session.scalars(select(Category).where(func.lower(Category.name) == name.strip().lower())).first()
        if category is None:
            known = session.scalars(select(Category.name).order_by(Category.name).limit(20)).all()
            raise InvalidInput(f"category_markups: la categoría '{name}' no existe; categorías: {', '.join(known)}",
                               details={"field": "category_markups", "category": name})
        category.target_markup = None if value is None else _check_markup(f"category_markups.{name}", value)
        changed[category.name] = None if value is None else str(category.target_markup)
    return changed
