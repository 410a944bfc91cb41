"""Series behind Inicio's charts: goods in vs sales per day (from the per-day aggregates), top products,
stock value by category, and the store's own cost inflation month by month (from the unit costs of its
`entrada` movements)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Date, bindparam, cast, func, literal_column, select, text
from sqlalchemy.orm import Session

from minimarket.ar.dates import STORE_TZ, store_day_start
from minimarket.catalog.models import Category, Product
from minimarket.stock.models import Balance, Movement
from minimarket.types import Timestamp


def store_day(session: Session):  # noqa: ANN202
    """The movement's calendar day on the store's clock, computed by the database."""
    if session.get_bind().dialect.name == "sqlite":
        # Stored in UTC; Argentina is UTC−3 all year (no daylight saving).
        return func.date(Movement.created_at, "-3 hours")
    return cast(func.timezone(literal_column("'America/Argentina/Buenos_Aires'"), Movement.created_at), Date)


def _as_date(value) -> date:  # noqa: ANN001
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def daily_in_vs_sales(session: Session, days: int = 30, now: datetime | None = None) -> list[tuple[date, Decimal, Decimal]]:
    """(day, units in, units sold) for each of the last `days` store days, today included, zeros filled.

    From the per-day aggregates the triggers keep (reports.models.KpiDay): a few rows, not the ledger."""
    from minimarket.reports.kpis import day_figures

    first = (store_day_start(now) - timedelta(days=days - 1)).date()
    found, _ = day_figures(session, first)
    zero = Decimal(0)
    return [(d, abs(found[d].units_in) if d in found else zero, abs(found[d].units_sold) if d in found else zero)
            for d in (first + timedelta(days=i) for i in range(days))]


def top_products(session: Session, days: int = 30, limit: int = 8, now: datetime | None = None) -> list[tuple[str, str, Decimal]]:
    """(SKU, name, amount sold with IVA) of the best sellers of the last `days` days."""
    start = store_day_start(now) - timedelta(days=days - 1)
    amount = func.sum(-Movement.quantity * Movement.unit_price)
    rows = session.execute(
        select(Product.sku, Product.name, amount.label("amount"))
        .join(Product, Product.id == Movement.product_id)
        .where(Movement.type == "venta", Movement.created_at >= start)
        .group_by(Product.sku, Product.name)
        .order_by(amount.desc())
        .limit(limit)
    ).all()
    return [(sku, name, Decimal(a or 0)) for sku, name, a in rows]


def stock_value_by_category(session: Session, limit: int = 10) -> list[tuple[str, Decimal]]:
    """(category, stock value at cost) of active products, largest first; the rest summed as "Otras"."""
    value = func.sum(Balance.quantity * Product.cost)
    rows = session.execute(
        select(Category.name, value.label("value"))
        .select_from(Balance)
        .join(Product, Product.id == Balance.product_id)
        .outerjoin(Category, Category.id == Product.category_id)
        .where(Product.active.is_(True))
        .group_by(Category.name)
        .order_by(value.desc())
    ).all()
    items = [(name or "Sin categoría", Decimal(v or 0)) for name, v in rows]
    if len(items) > limit:
        rest = sum((v for _, v in items[limit - 1:]), Decimal(0))
        items = [*items[:limit - 1], ("Otras", rest)]
    return items


def cost_inflation(session: Session, months: int = 12, now: datetime | None = None) -> list[tuple[date, Decimal | None]]:
    """(the month's first day, % change of unit cost vs the month before) for the last `months` months.

    For every product bought in two consecutive months, the ratio of its average unit cost;
    the month's figure is the average of those ratios weighted by the quantity bought, so a
    change in what the store buys is not read as a change in price. None: nothing to compare.
    """
    local = (now or datetime.now(STORE_TZ)).astimezone(STORE_TZ)
    first = (local.replace(day=1) - timedelta(days=31 * months)).replace(day=1)
    start = datetime.combine(first, datetime.min.time(), STORE_TZ)
    tz = "'America/Argentina/Buenos_Aires'"
    if session.get_bind().dialect.name == "sqlite":  # stored in UTC; Argentina is UTC−3 all year
        month, previous = "strftime('%Y-%m', creado_en, '-3 hours')", "strftime('%Y-%m', cur.m || '-01', '-1 month')"
    else:
        month = f"to_char(timezone({tz}, creado_en), 'YYYY-MM')"
        previous = "to_char(to_date(cur.m, 'YYYY-MM') - interval '1 month', 'YYYY-MM')"
    # All in the database: per product and month its average unit cost, then per month the ratios to the
    # month before weighted by quantity; a dozen rows come back, not one per entrada (seconds of Python
    # on a big store, holding the interpreter while the pages wait).
    rows = session.execute(text(f"""
        WITH pm AS (
            SELECT producto_id, {month} AS m, SUM(cantidad * costo_unitario) AS total, SUM(cantidad) AS qty
            FROM movimientos_stock
            WHERE tipo = 'entrada' AND creado_en >= :start AND costo_unitario IS NOT NULL AND cantidad > 0
            GROUP BY producto_id, {month})
        SELECT cur.m, SUM((cur.total / cur.qty) / (prev.total / prev.qty) * cur.qty), SUM(cur.qty)
        FROM pm cur JOIN pm prev ON prev.producto_id = cur.producto_id AND prev.m = {previous}
        WHERE prev.qty > 0 AND prev.total > 0
        GROUP BY cur.m""").bindparams(bindparam("start", type_=Timestamp)), {"start": start}).all()
    found = {str(m): (Decimal(str(weighted)), Decimal(str(weight))) for m, weighted, weight in rows}
    labels = _month_labels(local.date(), months)
    result = []
    for month_label in labels[1:]:
        weighted, weight = found.get(month_label, (Decimal(0), Decimal(0)))
        change = ((weighted / weight - 1) * 100).quantize(Decimal("0.1")) if weight > 0 else None
        result.append((date(int(month_label[:4]), int(month_label[5:]), 1), change))
    return result


def _month_labels(today: date, months: int) -> list[str]:
    """`months`+1 consecutive `aaaa-mm` labels ending with this month (the first only as a base)."""
    year, month = today.year, today.month
    labels = []
    for _ in range(months + 1):
        labels.append(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return labels[::-1]
