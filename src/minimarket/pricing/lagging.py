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

import functools
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import (Integer, Numeric, Select, and_, bindparam, cast, func, literal, literal_column, null,
                        select, text, union_all)
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
JIT_FREE_LIMIT = 1000  # a page up to this size is estimated well below PostgreSQL's jit_above_cost
# Written out, not bound: SQLite uses the partial index of sales (ix_movimientos_stock_ventas) only then.
SALE = literal_column("'venta'")
_kept, _products, _categories, _movements = (LaggingPrice.__table__, Product.__table__, Category.__table__,
                                             Movement.__table__)


def units_per_day(sold: Decimal | float | int) -> Decimal:
    """Units sold per day over the last 30 days, half-up to thousandths."""
    return (Decimal(sold) / SALES_DAYS).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)


def _in_category(stmt: Select, category_id: Any) -> Select:
    return stmt if category_id is None else stmt.where(_kept.c.categoria_id == category_id)


def _sold(category_id: Any, since: Any) -> Select:
    """Units sold since `since` by each lagging product that sold (one pass over the window's sales)."""
    stmt = (select(_movements.c.producto_id, (-func.sum(_movements.c.cantidad)).label("sold"))
            .join(_kept, _kept.c.producto_id == _movements.c.producto_id)
            .where(_movements.c.tipo == SALE, _movements.c.creado_en >= since)
            .group_by(_movements.c.producto_id))
    return _in_category(stmt, category_id)


def count_lagging(session: Session, category_id: int | None = None) -> int:
    """How many products sell below their target markup (Inicio's number)."""
    return session.scalar(_in_category(select(func.count()).select_from(_kept), category_id))


def _page_postgresql(session: Session, category_id: int | None, since: datetime, *, limit: int,
                     offset: int) -> tuple[int, list[Any]]:
    """The count and the page's rows with their details, in one statement (one snapshot, one round trip)."""
    if limit > JIT_FREE_LIMIT and session.in_transaction():
        # A whole list (an export) is estimated past jit_above_cost: compiling it took ~0.9 s of the 1.3 s.
        session.execute(text("SET LOCAL jit = off"))
    rows = session.execute(_page_statement(category_id is not None),
                           {"category_id": category_id, "since": since, "offset": offset, "limit": limit}).all()
    # An empty page (past the end) says nothing about the count: ask for it alone.
    return (rows[0].total if rows else count_lagging(session, category_id)), rows


@functools.cache
def _page_statement(in_category: bool) -> Select:
    """Built once (with and without a category; ~5 ms of SQLAlchemy a page otherwise). PostgreSQL ranks the
    lagging products in exact NUMERIC (the loss as rules.daily_loss computes it) and keeps the page; only the
    page's products are then joined to their columns, sales, last purchase and last cost change."""
    category_id = bindparam("category_id", type_=Integer) if in_category else None
    since = bindparam("since", type_=_movements.c.creado_en.type)
    # One join of the window's sales with the lagging rows, grouped by product (its other columns depend on
    # the key), and the loss computed once per product (the OFFSET 0 fence keeps it out of the filter).
    sold = _in_category(
        select(_kept.c.producto_id.label("id"), _kept.c.proporcion.label("ratio"), _kept.c.sku.label("sku"),
               _kept.c.sugerido, _kept.c.precio, _kept.c.iva, (-func.sum(_movements.c.cantidad)).label("sold"))
        .select_from(_movements.join(_kept, _kept.c.producto_id == _movements.c.producto_id))
        .where(_movements.c.tipo == SALE, _movements.c.creado_en >= since)
        .group_by(_kept.c.producto_id), category_id).subquery("ventas")
    per_day = func.round(sold.c.sold / sql_number(SALES_DAYS), 3)
    lost = func.round(func.greatest(sold.c.sugerido - sold.c.precio, 0)
                      / (1 + sold.c.iva / sql_number(100)) * per_day, 2)
    priced = select(sold.c.id, lost.label("lost"), sold.c.ratio, sold.c.sku, sold.c.sold).offset(0).subquery("perdida")
    losing = select(*priced.c).where(priced.c.lost != 0).cte("pierden")
    # The list is three groups one after the other: those that lose money a day (most first), those that lose
    # nothing (kept order), those whose sales were net returns. Each group is cut at its own offset (how many
    # of the page's rows fall before it), so a deep page neither sorts the first group nor walks the second
    # from its start; the first is not even read when the page starts past it.
    offset, limit = bindparam("offset", type_=Integer), bindparam("limit", type_=Integer)
    counts = select(_in_category(select(func.count()).select_from(_kept), category_id).scalar_subquery().label("total"),
                    func.count().filter(losing.c.lost > 0).label("gaining"),
                    func.count().filter(losing.c.lost < 0).label("returned")).cte("cuenta")
    before_nothing = select(counts.c.gaining).scalar_subquery()
    before_returned = select(counts.c.total - counts.c.returned).scalar_subquery()

    def losers(rank: int, where: Any, before: Any) -> Select:
        return (select(losing.c.id, losing.c.lost, losing.c.ratio, losing.c.sku, literal(rank, Integer).label("g"),
                       losing.c.sold)
                .where(where).order_by(losing.c.lost.desc(), losing.c.ratio, losing.c.sku)
                .offset(func.greatest(offset - before, 0)).limit(limit))

    nothing_lost = _in_category(
        select(_kept.c.producto_id, cast(literal(0), Numeric), _kept.c.proporcion, _kept.c.sku,
               literal(1, Integer), cast(null(), Numeric)).where(_kept.c.producto_id.not_in(select(losing.c.id)))
        .order_by(_kept.c.proporcion, _kept.c.sku).offset(func.greatest(offset - before_nothing, 0)).limit(limit),
        category_id)
    ranked = union_all(losers(0, and_(losing.c.lost > 0, offset < before_nothing), literal(0, Integer)),
                       nothing_lost, losers(2, losing.c.lost < 0, before_returned)).subquery("orden")
    page = (select(*ranked.c).order_by(ranked.c.g, ranked.c.lost.desc(), ranked.c.ratio, ranked.c.sku)
            .limit(limit).subquery("pagina"))
    total = select(counts.c.total).scalar_subquery()
    # The losing ones' sales come with their rank; the others' (which may have sold a little) are asked for.
    return (select(*_detail_columns(since, sold=page.c.sold), total.label("total"))
            .select_from(page.join(_products, _products.c.id == page.c.id)
                         .outerjoin(_categories, _categories.c.id == _products.c.categoria_id))
            .order_by(page.c.g, page.c.lost.desc(), page.c.ratio, page.c.sku))


def _page_python(session: Session, category_id: int | None, since: datetime, count: int, *, limit: int,
                 offset: int) -> list[int]:
    """SQLite: the loss and its order in Decimal (rules.daily_loss) for the few that sold; the rest from the index."""
    sold = _sold(category_id, since).subquery("ventas")
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


def _detail_columns(since: Any, *, sold: Any = None) -> tuple[Any, ...]:
    """A page product's columns, its sales since `since`, last purchase (latest `entrada`) and last cost change:
    per product, through its indexes (only the page's products are asked)."""
    product_id = _products.c.id
    sales = (select(-func.sum(_movements.c.cantidad)).where(_movements.c.producto_id == product_id,
                                                            _movements.c.tipo == SALE,
                                                            _movements.c.creado_en >= since)
             .scalar_subquery())
    bought = (select(func.max(_movements.c.creado_en))
              .where(_movements.c.producto_id == product_id, _movements.c.tipo == "entrada").scalar_subquery())
    history = PriceChange.__table__
    cost_changed = (select(func.max(history.c.creado_en))
                    .where(history.c.producto_id == product_id, history.c.costo_antes != history.c.costo_despues)
                    .scalar_subquery())
    return (product_id, _products.c.sku, _products.c.nombre, _products.c.costo, _products.c.precio, _products.c.iva,
            _products.c.margen, _categories.c.margen_objetivo,
            # COALESCE evaluates an argument only when those before it are null: `sold` known, no index probe
            (func.coalesce(sales, 0) if sold is None else func.coalesce(sold, sales, 0)).label("sold"),
            bought.label("bought"), cost_changed.label("cost_changed"))


def _details(session: Session, ids: list[int], since: datetime) -> dict[int, Any]:
    """SQLite: each page product's columns and details (`_detail_columns`), by id."""
    stmt = (select(*_detail_columns(since))
            .select_from(_products.outerjoin(_categories, _categories.c.id == _products.c.categoria_id))
            .where(_products.c.id.in_(ids)))
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
    since = utcnow() - timedelta(days=SALES_DAYS)
    if session.get_bind().dialect.name == "postgresql":
        count, rows = _page_postgresql(session, category_id, since, limit=limit, offset=offset)
    else:
        count = count_lagging(session, category_id)
        if offset >= count:
            return {"count": count, "items": []}
        ids = _page_python(session, category_id, since, count, limit=limit, offset=offset)
        found = _details(session, ids, since) if ids else {}
        rows = [found[i] for i in ids]
    items = []
    for r in rows:
        item = summary_of(sku=r.sku, name=r.nombre, cost=r.costo, price=r.precio, vat=r.iva, own_markup=r.margen,
                          category_target=r.margen_objetivo, settings=settings, last_purchase=r.bought)
        per_day = units_per_day(r.sold)
        item.update(units_per_day=per_day, cost_changed_at=r.cost_changed,
                    lost_per_day=rules.daily_loss(r.precio, item["suggested_price"], r.iva, per_day))
        items.append(item)
    return {"count": count, "items": items}
