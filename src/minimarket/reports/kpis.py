"""The store's numbers for Inicio: stock value, stock alerts, sales, margin and today's movements.

Read from aggregates that database triggers keep in the transaction of every write (reports.models,
migration 0013): the stock figures are the sum of a few rows of `kpi_existencias`, the sales and the
movements of the day and the week a few rows of `kpi_dias`. So a page costs two small queries, whatever
the store's size, and shows every committed write at once, in every process, with or without Redis:
nothing is cached. `fold_aggregates` sums the rows the triggers added into one (per day) now and then.

The change marker (largest movement id, largest audited change) is what the event stream and the
lagging-prices count use to tell that something changed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from minimarket.accounts.models import AuditEntry
from minimarket.ar.dates import store_day_start, store_week_start
from minimarket.db import Database
from minimarket.platform.read_cache import note_narrow
from minimarket.reports.models import KpiDay, KpiStock
from minimarket.stock.models import Movement

FOLD_ROWS = 200  # rows the triggers may add before a reader folds them (a few milliseconds to sum)
_E5 = Decimal(100_000)  # kpi_existencias keeps values in units of 10⁻⁵ peso


@dataclass(frozen=True)
class Marker:
    """Changes whenever stock or the catalog changes; cheap (two lookups backwards on primary keys)."""

    movement_id: int
    catalog_changed: str

    @property
    def key(self) -> str:
        return f"{self.movement_id}:{self.catalog_changed}"


@dataclass
class Kpis:
    stock_value_cost: Decimal
    stock_value_price: Decimal
    active_products: int
    below_minimum: int
    out_of_stock: int
    sales_today_units: Decimal
    sales_today_amount: Decimal
    sales_week_units: Decimal
    sales_week_amount: Decimal
    margin_week: Decimal | None  # percent of net sales (without IVA); None without sales
    movements_today: int
    marker: int

    def as_json(self) -> dict[str, str | int | None]:
        return {k: (str(v) if isinstance(v, Decimal) else v) for k, v in asdict(self).items()}


def change_marker(session: Session) -> Marker:
    movement_id = session.scalar(select(func.max(Movement.id))) or 0
    # Catalogue changes are all audited; a login is not one (the newest rows, read backwards by id).
    audited = session.scalar(select(AuditEntry.id).where(AuditEntry.action != "session.login")
                             .order_by(AuditEntry.id.desc()).limit(1)) or 0
    return Marker(movement_id=int(movement_id), catalog_changed=str(audited))


@dataclass(frozen=True)
class DayFigures:
    movements: int
    units_in: Decimal
    units_sold: Decimal
    sales_amount: Decimal
    sales_net: Decimal
    sales_cost: Decimal


def stock_figures(session: Session) -> tuple[int, int, int, Decimal, Decimal, int]:
    """(active, below minimum, without stock, value at cost, value at price, rows summed)."""
    active, low, out, at_cost, at_price, rows = session.execute(
        select(func.coalesce(func.sum(KpiStock.active), 0), func.coalesce(func.sum(KpiStock.below_minimum), 0),
               func.coalesce(func.sum(KpiStock.out_of_stock), 0), func.coalesce(func.sum(KpiStock.value_cost), 0),
               func.coalesce(func.sum(KpiStock.value_price), 0), func.count())
    ).one()
    cents = Decimal("0.01")
    return (int(active), int(low), int(out), (Decimal(at_cost) / _E5).quantize(cents),
            (Decimal(at_price) / _E5).quantize(cents), int(rows))


def day_figures(session: Session, first: date) -> tuple[dict[date, DayFigures], int]:
    """Each store day since `first` that had movements, and the rows summed."""
    rows = session.execute(
        select(KpiDay.day, func.sum(KpiDay.movements), func.sum(KpiDay.units_in), func.sum(KpiDay.units_sold),
               func.sum(KpiDay.sales_amount), func.sum(KpiDay.sales_net), func.sum(KpiDay.sales_cost), func.count())
        .where(KpiDay.day >= first).group_by(KpiDay.day)
    ).all()
    days = {(d if isinstance(d, date) else date.fromisoformat(str(d)[:10])):
            DayFigures(int(n), *(Decimal(str(v or 0)) for v in values))
            for d, n, *values, _ in rows}
    return days, sum(r[-1] for r in rows)


def compute_kpis(session: Session, marker: Marker, now: datetime | None = None) -> tuple[Kpis, int]:
    """The KPIs from the aggregates, and how many aggregate rows were read (see fold_aggregates)."""
    today, week = store_day_start(now).date(), store_week_start(now).date()
    active, low, out, at_cost, at_price, stock_rows = stock_figures(session)
    days, day_rows = day_figures(session, min(today, week))
    none = DayFigures(0, *(Decimal(0),) * 5)
    day = days.get(today, none)
    this_week = [f for d, f in days.items() if d >= week]
    week_units = sum((f.units_sold for f in this_week), Decimal(0))
    week_amount = sum((f.sales_amount for f in this_week), Decimal(0))
    week_net = sum((f.sales_net for f in this_week), Decimal(0))
    week_cost = sum((f.sales_cost for f in this_week), Decimal(0))
    margin = ((week_net - week_cost) * 100 / week_net) if week_net > 0 else None
    kpis = Kpis(
        stock_value_cost=at_cost, stock_value_price=at_price, active_products=active, below_minimum=low,
        out_of_stock=out,
        sales_today_units=day.units_sold.quantize(Decimal("0.001")),
        sales_today_amount=day.sales_amount.quantize(Decimal("0.01")),
        sales_week_units=week_units.quantize(Decimal("0.001")), sales_week_amount=week_amount.quantize(Decimal("0.01")),
        margin_week=None if margin is None else margin.quantize(Decimal("0.1")),
        movements_today=day.movements, marker=marker.movement_id,
    )
    return kpis, max(stock_rows, day_rows)


def current_kpis(db: Database) -> Kpis:
    """The KPIs as of now, every committed write included (two small queries; see the module's docstring)."""
    with db.read() as session:
        kpis, rows = compute_kpis(session, change_marker(session))
    if rows > FOLD_ROWS:
        fold_aggregates(db)
    return kpis


_FOLD_POSTGRES = [
    f"""WITH gone AS (DELETE FROM kpi_existencias RETURNING *)
    INSERT INTO kpi_existencias (activos, bajo_minimo, sin_stock, valor_costo_e5, valor_precio_e5)
    SELECT {", ".join(f"COALESCE(SUM({c}), 0)" for c in
                      ("activos", "bajo_minimo", "sin_stock", "valor_costo_e5", "valor_precio_e5"))} FROM gone""",
    """WITH gone AS (DELETE FROM kpi_dias RETURNING *)
    INSERT INTO kpi_dias (dia, movimientos, entradas, ventas_unidades, ventas_importe, ventas_neto, ventas_costo)
    SELECT dia, SUM(movimientos), SUM(entradas), SUM(ventas_unidades), SUM(ventas_importe), SUM(ventas_neto),
           SUM(ventas_costo) FROM gone GROUP BY dia""",
]
# SQLite: the write transaction is the only writer, so "sum, then delete what was summed" is atomic.
_FOLD_SQLITE = [
    """INSERT INTO kpi_existencias (activos, bajo_minimo, sin_stock, valor_costo_e5, valor_precio_e5)
    SELECT COALESCE(SUM(activos), 0), COALESCE(SUM(bajo_minimo), 0), COALESCE(SUM(sin_stock), 0),
           COALESCE(SUM(valor_costo_e5), 0), COALESCE(SUM(valor_precio_e5), 0) FROM kpi_existencias WHERE id <= :top""",
    "DELETE FROM kpi_existencias WHERE id <= :top",
    """INSERT INTO kpi_dias (dia, movimientos, entradas, ventas_unidades, ventas_importe, ventas_neto, ventas_costo)
    SELECT dia, SUM(movimientos), SUM(entradas), SUM(ventas_unidades), SUM(ventas_importe), SUM(ventas_neto),
           SUM(ventas_costo) FROM kpi_dias WHERE id <= :top_days GROUP BY dia""",
    "DELETE FROM kpi_dias WHERE id <= :top_days",
]


def fold_aggregates(db: Database) -> None:
    """Sum the delta rows into one row (one per day). On PostgreSQL one statement per table: the rows it
    deletes are exactly the rows it sums, so a concurrent insert or another fold is never lost or counted twice."""
    with db.write() as session:
        note_narrow(session.info)  # no figure changes: nothing cached depends on the row count
        if session.get_bind().dialect.name == "postgresql":
            for statement in _FOLD_POSTGRES:
                session.execute(text(statement))
            return
        top = session.scalar(select(func.max(KpiStock.id))) or 0
        top_days = session.scalar(select(func.max(KpiDay.id))) or 0
        for statement in _FOLD_SQLITE:
            session.execute(text(statement), {"top": top, "top_days": top_days})


def db_tag(db: Database) -> str:
    """A short tag of the database: stores sharing one Redis keep their cached numbers apart."""
    import hashlib

    return hashlib.sha256(db.url.encode()).hexdigest()[:12]  # stores sharing one Redis keep apart
