"""The bulk change computed by PostgreSQL itself: one statement updates the products and writes the history.

The same rules as pricing/rules.py written as SQL over NUMERIC (exact, like Decimal): CEIL to
the rounding step, ROUND(…, 2) half away from zero (= half-up: amounts are never negative).
tests/integration/test_prices_bulk.py checks that every operation and rounding rule gives, to the
cent, what the Python preview promised. SQLite computes in binary floating point, so it keeps the
Python plan (pricing/bulk.py); this module is PostgreSQL's fast path.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import ColumnElement, Numeric, Select, case, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from minimarket.accounts.audit import Context
from minimarket.catalog.models import Product
from minimarket.errors import InvalidInput
from minimarket.pricing import rules
from minimarket.catalog.price_history import PriceChange
from minimarket.pricing.models import PriceBatch
from minimarket.pricing.schemas import BulkChangeIn
from minimarket.pricing.settings import PricingSettings
from minimarket.types import Timestamp, utcnow

_N = Numeric(30, 10)


def sql_number(value: Decimal | int) -> ColumnElement:
    return literal(Decimal(value), _N)


def round_price_sql(value: ColumnElement, rule: str) -> ColumnElement:
    """rules.round_price in SQL: up to the step, or up to the next whole peso ending in 9 / 0."""
    if rule in rules.STEPS:
        step = sql_number(rules.STEPS[rule])
        rounded = func.ceil(value / step) * step
    else:
        whole = func.ceil(value)
        rounded = whole + func.mod(sql_number(rules.ENDINGS[rule] + 10) - func.mod(whole, 10), 10)
    return case((value <= 0, sql_number(0)), else_=rounded)


def new_values(columns, change: BulkChangeIn, settings: PricingSettings) -> tuple[ColumnElement, ColumnElement]:  # noqa: ANN001
    """SQL expressions of the new cost and price of each product (`columns`: productos and categorias)."""
    cost, price, vat = columns["costo"], columns["precio"], columns["iva"]
    markup = func.coalesce(columns["margen"], columns["margen_objetivo"], sql_number(settings.default_markup))
    hundred = sql_number(100)

    def shelf(base: ColumnElement) -> ColumnElement:
        return round_price_sql(base * (1 + markup / hundred) * (1 + vat / hundred), settings.rounding)

    if change.operation == "price_percent":
        return cost, round_price_sql(price * (1 + sql_number(change.percent) / hundred), settings.rounding)
    if change.operation == "cost_percent":
        new_cost = func.round(cost * (1 + sql_number(change.percent) / hundred), 2)
        if change.update_prices:
            return new_cost, case((new_cost > 0, shelf(new_cost)), else_=price)
        return new_cost, price
    return cost, case((cost > 0, shelf(cost)), else_=price)  # recompute


def apply_computed(session: Session, ctx: Context, batch: PriceBatch, base: Select, change: BulkChangeIn,
                   settings: PricingSettings) -> tuple[int, int]:
    """Apply the change to the products `base` selects and write their history rows, in one statement.

    UPDATE productos … FROM the computed changes (only where cost and price are still the ones
    computed from) RETURNING what changed, fed into INSERT INTO precios_historial. Returns
    (rows written, products the change touches): they differ only if another writer got in between.
    """
    columns = {c.name: c for c in base.selected_columns}
    new_cost, new_price = new_values(columns, change, settings)
    planned = base.add_columns(new_cost.label("nc"), new_price.label("np")).subquery()
    too_big = session.execute(select(planned.c.sku).where(or_(planned.c.nc > sql_number(rules.MONEY_MAX),
                                                              planned.c.np > sql_number(rules.MONEY_MAX))).limit(1)).first()
    if too_big is not None:
        raise InvalidInput(f"percent: el costo o el precio de '{too_big.sku}' superaría el máximo {rules.MONEY_MAX}",
                           details={"sku": too_big.sku, "field": "percent"})
    changes = (select(planned.c.id, planned.c.costo, planned.c.nc, planned.c.precio, planned.c.np)
               .where(or_(planned.c.nc != planned.c.costo, planned.c.np != planned.c.precio)).cte("cambios"))
    now = literal(utcnow(), Timestamp)
    products, history = Product.__table__, PriceChange.__table__
    applied = (update(products)
               .where(products.c.id == changes.c.id, products.c.costo == changes.c.costo,
                      products.c.precio == changes.c.precio)
               .values(costo=changes.c.nc, precio=changes.c.np, actualizado_en=now)
               .returning(changes.c.id, changes.c.costo, changes.c.nc, changes.c.precio, changes.c.np)
               .cte("aplicados"))
    rows = select(applied.c.id, applied.c.costo, applied.c.nc, applied.c.precio, applied.c.np, literal(batch.reason),
                  literal(batch.id), literal(ctx.actor), now)
    target = ["producto_id", "costo_antes", "costo_despues", "precio_antes", "precio_despues", "motivo", "lote_id",
              "actor", "creado_en"]
    written = insert(history).from_select(target, rows).returning(history.c.id).cte("historia")
    counts = select(select(func.count()).select_from(written).scalar_subquery(),
                    select(func.count()).select_from(changes).scalar_subquery())
    done, expected = session.execute(counts).one()
    return done, expected
