"""Precios atrasados: products whose shelf price gives less than their target markup, by money lost per day.

One query finds them: the markup condition is written in SQL over products and categories,
joined with one grouped pass over the last 30 days' sales. PostgreSQL computes in exact
NUMERIC, so the same query also ranks them (money lost per day, then price over suggested
price, then SKU), counts them, returns one page and only for that page looks up the last
purchase and last cost change. SQLite computes in binary floating point: its query keeps a
hair more than needed, the exact rules (Decimal) decide and rank in Python, and one small
query brings the page's dates. Either way the page's summaries come from
`pricing.service.summary_of`; tests/integration/test_prices_lagging.py checks, on a random
store and on both backends, that the result is item for item the walk over every product
this report used to be.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Numeric, Select, cast, func, select
from sqlalchemy.orm import Session

from minimarket.catalog.models import Category, Product
from minimarket.errors import InvalidInput
from minimarket.pricing import rules
from minimarket.pricing.bulk import TARGET_COLUMNS
from minimarket.pricing.bulk_sql import sql_number, round_price_sql
from minimarket.catalog.price_history import PriceChange
from minimarket.pricing.service import summary_of
from minimarket.pricing.settings import PricingSettings, load_pricing_settings
from minimarket.stock.models import Movement
from minimarket.types import utcnow

SALES_DAYS = 30
# SQLite's REAL arithmetic may put a product exactly at its target a hair below it: the query keeps
# products up to this relative margin above, and the exact Decimal rule drops them.
FLOAT_SLACK = Decimal("1e-9")
NOTHING_LOST = Decimal("0.00")  # what rules.daily_loss gives without sales


def _markup_sql(settings: PricingSettings) -> Any:
    products, categories = Product.__table__, Category.__table__
    return func.coalesce(products.c.margen, categories.c.margen_objetivo, sql_number(settings.default_markup))


def _candidates(settings: PricingSettings, category_id: int | None, *, slack: Decimal) -> Select:
    """Active products with a cost whose price is below target (within `slack`), with their 30 days of sales."""
    products, categories, movements = Product.__table__, Category.__table__, Movement.__table__
    # One pass over the last 30 days' sales (the creado_en index), joined: not a lookup per product.
    sales = (select(movements.c.producto_id, (-func.sum(movements.c.cantidad)).label("sold"))
             .where(movements.c.tipo == "venta", movements.c.creado_en >= utcnow() - timedelta(days=SALES_DAYS))
             .group_by(movements.c.producto_id).subquery("ventas"))
    target_price = (products.c.costo * (1 + _markup_sql(settings) / sql_number(100))
                    * (1 + products.c.iva / sql_number(100)))
    stmt = (select(*TARGET_COLUMNS, func.coalesce(sales.c.sold, 0).label("sold"))
            .select_from(products.outerjoin(categories, categories.c.id == products.c.categoria_id)
                         .outerjoin(sales, sales.c.producto_id == products.c.id))
            .where(products.c.activo.is_(True), products.c.costo > 0,
                   products.c.precio < (target_price * sql_number(1 + slack) if slack else target_price)))
    if category_id is not None:
        stmt = stmt.where(products.c.categoria_id == category_id)
    return stmt


def _dates(product_id: Any) -> tuple[Any, Any]:
    """Last purchase (latest `entrada`) and last cost change of a product, as correlated subqueries."""
    movements, history = Movement.__table__, PriceChange.__table__
    bought = (select(func.max(movements.c.creado_en))
              .where(movements.c.producto_id == product_id, movements.c.tipo == "entrada")
              .scalar_subquery().label("bought"))
    cost_changed = (select(func.max(history.c.creado_en))
                    .where(history.c.producto_id == product_id, history.c.costo_antes != history.c.costo_despues)
                    .scalar_subquery().label("cost_changed"))
    return bought, cost_changed


def _ranked_page_postgresql(session: Session, settings: PricingSettings, candidates: Select, *, limit: int,
                            offset: int) -> tuple[int, list[Any]]:
    """PostgreSQL ranks in exact NUMERIC: money lost per day, then price over suggested, then SKU; one page back."""
    lag = candidates.subquery()
    suggested = round_price_sql(lag.c.costo * (1 + func.coalesce(lag.c.margen, lag.c.margen_objetivo,
                                                                sql_number(settings.default_markup)) / sql_number(100))
                                * (1 + lag.c.iva / sql_number(100)), settings.rounding)
    per_day = func.round(lag.c.sold / sql_number(SALES_DAYS), 3)
    lost = func.round(func.greatest(suggested - lag.c.precio, 0) / (1 + lag.c.iva / sql_number(100)) * per_day, 2)
    ratio = cast(lag.c.precio, Numeric(44, 30)) / suggested  # 30 decimals: as fine as Decimal's
    ranked = (select(lag, lost.label("lost"), ratio.label("ratio"), func.count().over().label("total"))
              .order_by(lost.desc(), ratio, lag.c.sku).limit(limit).offset(offset).subquery())
    # The dates only for the page's rows: the outer SELECT runs its subqueries after the LIMIT.
    rows = session.execute(select(ranked, *_dates(ranked.c.id))
                           .order_by(ranked.c.lost.desc(), ranked.c.ratio, ranked.c.sku)).all()
    if rows:
        return rows[0].total, rows
    return session.execute(select(func.count()).select_from(lag)).scalar_one(), []


def _ranked_page_python(settings: PricingSettings, rows: list[Any], *, limit: int,
                        offset: int) -> tuple[int, list[Any]]:
    """SQLite: the exact rule decides (the float query kept a hair more) and Decimal ranks."""
    ranked = []
    for r in rows:
        target = rules.resolve_markup(r.margen, r.margen_objetivo, settings.default_markup)
        if not rules.below_target(r.precio, r.costo, r.iva, target):
            continue
        suggested = rules.shelf_price(r.costo, target, r.iva, settings.rounding)
        lost = rules.daily_loss(r.precio, suggested, r.iva, units_per_day(r.sold)) if r.sold else NOTHING_LOST
        ranked.append(((-lost, r.precio / suggested, r.sku), r))
    ranked.sort(key=lambda entry: entry[0])
    return len(ranked), [r for _, r in ranked[offset:offset + limit]]


def units_per_day(sold: Decimal | float | int) -> Decimal:
    """Units sold per day over the last 30 days, half-up to thousandths."""
    return (Decimal(sold) / SALES_DAYS).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)


def _category_id(session: Session, category: str | None) -> int | None:
    if not category:
        return None
    category_id = session.scalar(select(Category.id).where(func.lower(Category.name) == category.lower()))
    if category_id is None:
        raise InvalidInput(f"category: la categoría '{category}' no existe", details={"field": "category"})
    return category_id


def lagging_prices(session: Session, *, limit: int, offset: int = 0, category: str | None = None) -> dict[str, Any]:
    """Products below their target markup, most money lost per day first (sales of the last 30 days).

    `count` is how many there are; `items` the page from `offset`, at most `limit`.
    """
    settings = load_pricing_settings(session)
    category_id = _category_id(session, category)
    if session.get_bind().dialect.name == "postgresql":
        count, page = _ranked_page_postgresql(session, settings, _candidates(settings, category_id, slack=Decimal(0)),
                                              limit=limit, offset=offset)
        dates = {r.id: (r.bought, r.cost_changed) for r in page}
    else:
        rows = session.execute(_candidates(settings, category_id, slack=FLOAT_SLACK)).all()
        count, page = _ranked_page_python(settings, rows, limit=limit, offset=offset)
        product_id = Product.__table__.c.id
        dates = {pid: (b, c) for pid, b, c in session.execute(
            select(product_id, *_dates(product_id)).where(product_id.in_([r.id for r in page])))} if page else {}
    items = []
    for r in page:
        bought, cost_changed = dates[r.id]
        item = summary_of(sku=r.sku, name=r.nombre, cost=r.costo, price=r.precio, vat=r.iva, own_markup=r.margen,
                          category_target=r.margen_objetivo, settings=settings, last_purchase=bought)
        per_day = units_per_day(r.sold)
        item.update(units_per_day=per_day, cost_changed_at=cost_changed,
                    lost_per_day=rules.daily_loss(r.precio, item["suggested_price"], r.iva, per_day))
        items.append(item)
    return {"count": count, "items": items}
