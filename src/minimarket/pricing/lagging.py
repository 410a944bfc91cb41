"""Precios atrasados: products whose shelf price gives less than their target markup, by money lost per day.

Which products lag, and their suggested price, are kept by database triggers in `precios_atrasados`
(pricing.models.LaggingPrice, migration 0014) in the transaction of every write to any input: cost,
price, IVA, markups, category, active flag, the store's default markup and rounding rule. So the
count is a count of that table, and a page does not compute every product:

* Money lost per day needs the last 30 days' sales, which move with the clock: one grouped pass over
  the window's sales *of the lagging products only* gives the few that lose something. They come
  first, most money lost first (then price over suggested, then SKU). PostgreSQL ranks them in exact
  NUMERIC, SQLite with the Decimal rules (`rules.daily_loss`), as before.
* The rest lose nothing a day: they follow in the kept order (price over suggested, then SKU), read
  from an index, only as far as the page needs.

The page's rows then get their summaries from `pricing.service.summary_of`.
tests/integration/test_prices_lagging.py checks, on a random store and on both backends, that the
result is item for item the walk over every product this report used to be, and that the list
follows every change of an input.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import (Integer, Numeric, Select, Subquery, bindparam, cast, func, literal, literal_column, select,
                        union_all)
from sqlalchemy.orm import Session

from minimarket.catalog.models import Category, Product
from minimarket.catalog.price_history import PriceChange
from minimarket.errors import InvalidInput
from minimarket.pricing import rules
from minimarket.pricing.bulk_sql import sql_number
from minimarket.pricing.models import LaggingPrice
from minimarket.pricing.service import summary_of
from minimarket.pricing.settings import load_pricing_settings
from minimarket.stock.models import Movement
from minimarket.types import utcnow

SALES_DAYS = 30
# Written out, not bound: SQLite uses the partial index of sales (ix_movimientos_stock_ventas) only then.
SALE = literal_column("'venta'")
_kept, _products, _categories, _movements = (LaggingPrice.__table__, Product.__table__, Category.__table__,
                                             Movement.__table__)


def units_per_day(sold: Decimal | float | int) -> Decimal:
    """Units sold per day over the last 30 days, half-up to thousandths."""
    return (Decimal(sold) / SALES_DAYS).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)


def _in_category(stmt: Select, category_id: int | None) -> Select:
    return stmt if category_id is None else stmt.where(_kept.c.categoria_id == category_id)


def _sold(category_id: int | None, since: datetime) -> Subquery:
    """Units sold since `since` by each lagging product that sold (one pass over the window's sales)."""
    stmt = (select(_movements.c.producto_id, (-func.sum(_movements.c.cantidad)).label("sold"))
            .join(_kept, _kept.c.producto_id == _movements.c.producto_id)
            .where(_movements.c.tipo == SALE, _movements.c.creado_en >= since)
            .group_by(_movements.c.producto_id))
    return _in_category(stmt, category_id).subquery("ventas")


def count_lagging(session: Session, category_id: int | None = None) -> int:
    """How many products sell below their target markup (Inicio's number)."""
    return session.scalar(_in_category(select(func.count()).select_from(_kept), category_id))


def _page_postgresql(session: Session, category_id: int | None, since: datetime, *, limit: int,
                     offset: int) -> list[int]:
    """The page's product ids, ranked by PostgreSQL in exact NUMERIC (the loss as rules.daily_loss computes it)."""
    sold = _sold(category_id, since)
    per_day = func.round(sold.c.sold / sql_number(SALES_DAYS), 3)
    lost = func.round(func.greatest(_kept.c.sugerido - _kept.c.precio, 0)
                      / (1 + _kept.c.iva / sql_number(100)) * per_day, 2)
    losing = (select(_kept.c.producto_id.label("id"), lost.label("lost"), _kept.c.proporcion.label("ratio"),
                     _kept.c.sku.label("sku"))
              .select_from(sold.join(_kept, _kept.c.producto_id == sold.c.producto_id))
              .where(lost != 0).cte("pierden"))
    end = offset + limit

    def group(rank: int, where: Any) -> Select:
        return (select(losing.c.id, losing.c.lost, losing.c.ratio, losing.c.sku, literal(rank, Integer).label("g"))
                .where(where).order_by(losing.c.lost.desc(), losing.c.ratio, losing.c.sku).limit(end))

    nothing_lost = _in_category(
        select(_kept.c.producto_id, cast(literal(0), Numeric), _kept.c.proporcion, _kept.c.sku,
               literal(1, Integer)).where(_kept.c.producto_id.not_in(select(losing.c.id)))
        .order_by(_kept.c.proporcion, _kept.c.sku).limit(end), category_id)
    ranked = union_all(group(0, losing.c.lost > 0), nothing_lost, group(2, losing.c.lost < 0)).subquery("orden")
    return list(session.scalars(select(ranked.c.id).order_by(ranked.c.g, ranked.c.lost.desc(), ranked.c.ratio,
                                                             ranked.c.sku).offset(offset).limit(limit)))


def _page_python(session: Session, category_id: int | None, since: datetime, count: int, *, limit: int,
                 offset: int) -> list[int]:
    """SQLite: the loss and its order in Decimal (rules.daily_loss) for the few that sold; the rest from the index."""
    sold = _sold(category_id, since)
    rows = session.execute(select(_kept.c.producto_id, _kept.c.sku, _kept.c.sugerido, _kept.c.precio, _kept.c.iva,
                                  sold.c.sold)
                           .select_from(sold.join(_kept, _kept.c.producto_id == sold.c.producto_id))).all()
    losing, negative = [], []
    for r in rows:
        lost = rules.daily_loss(r.precio, r.sugerido, r.iva, units_per_day(r.sold))
        if lost:
            (losing if lost > 0 else negative).append(((-lost, r.precio / r.sugerido, r.sku), r.producto_id))
    losing.sort()
    negative.sort()
    ids = [pid for _, pid in losing[offset:offset + limit]]
    rest = count - len(losing) - len(negative)  # those that lose nothing a day, in the kept order
    start = max(0, offset - len(losing))
    if len(ids) < limit and start < rest:
        # Written into the statement: they may be more than SQLite takes as parameters.
        skip = bindparam("skip", [pid for _, pid in losing + negative], expanding=True, literal_execute=True)
        stmt = (select(_kept.c.producto_id).where(_kept.c.producto_id.not_in(skip))
                .order_by(_kept.c.proporcion, _kept.c.sku).offset(start).limit(limit - len(ids)))
        ids += session.scalars(_in_category(stmt, category_id)).all()
    start = max(0, offset - len(losing) - rest)
    ids += [pid for _, pid in negative[start:start + limit - len(ids)]]
    return ids


def _details(session: Session, ids: list[int], since: datetime) -> dict[int, Any]:
    """Each page product's columns, sales since `since`, last purchase (latest `entrada`) and last cost change."""
    product_id = _products.c.id
    sold = (select(-func.sum(_movements.c.cantidad)).where(_movements.c.producto_id == product_id,
                                                           _movements.c.tipo == SALE,
                                                           _movements.c.creado_en >= since)
            .scalar_subquery())
    bought = (select(func.max(_movements.c.creado_en))
              .where(_movements.c.producto_id == product_id, _movements.c.tipo == "entrada").scalar_subquery())
    history = PriceChange.__table__
    cost_changed = (select(func.max(history.c.creado_en))
                    .where(history.c.producto_id == product_id, history.c.costo_antes != history.c.costo_despues)
                    .scalar_subquery())
    stmt = (select(product_id, _products.c.sku, _products.c.nombre, _products.c.costo, _products.c.precio,
                   _products.c.iva, _products.c.margen, _categories.c.margen_objetivo,
                   func.coalesce(sold, 0).label("sold"), bought.label("bought"), cost_changed.label("cost_changed"))
            .select_from(_products.outerjoin(_categories, _categories.c.id == _products.c.categoria_id))
            .where(product_id.in_(ids)))
    return {r.id: r for r in session.execute(stmt)}


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
    count = count_lagging(session, category_id)
    if offset >= count:
        return {"count": count, "items": []}
    since = utcnow() - timedelta(days=SALES_DAYS)
    if session.get_bind().dialect.name == "postgresql":
        ids = _page_postgresql(session, category_id, since, limit=limit, offset=offset)
    else:
        ids = _page_python(session, category_id, since, count, limit=limit, offset=offset)
    rows = _details(session, ids, since) if ids else {}
    items = []
    for r in (rows[i] for i in ids):
        item = summary_of(sku=r.sku, name=r.nombre, cost=r.costo, price=r.precio, vat=r.iva, own_markup=r.margen,
                          category_target=r.margen_objetivo, settings=settings, last_purchase=r.bought)
        per_day = units_per_day(r.sold)
        item.update(units_per_day=per_day, cost_changed_at=r.cost_changed,
                    lost_per_day=rules.daily_loss(r.precio, item["suggested_price"], r.iva, per_day))
        items.append(item)
    return {"count": count, "items": items}
