"""The store's sales history as the (days, products) matrices the forecast math takes.

Demand is `venta` + `salida` units per store day (not `ajuste`, `merma` or transfers); a day is
censored when the product's store-wide stock (all locations) opened or closed it at zero or
below, reconstructed backwards from today's balances through every movement of the ledger.
The history is the `days` whole store days before today (today is still selling).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
from sqlalchemy import Date, cast, func, literal_column, select
from sqlalchemy.orm import Session

from minimarket.ar.dates import store_day_start
from minimarket.catalog.models import Category, Product
from minimarket.purchasing import forecast as F
from minimarket.stock.models import Balance, Movement
from minimarket.stock.rules import MovementType

DEMAND_TYPES = (MovementType.VENTA.value, MovementType.SALIDA.value)
DEFAULT_HISTORY_DAYS = 180


@dataclass
class History:
    first_day: date
    product_ids: np.ndarray
    skus: list[str]
    categories: list[str]
    demand: np.ndarray  # (days, products) units
    observed: np.ndarray  # (days, products) False on stock-out days

    @property
    def weekday0(self) -> int:
        return self.first_day.weekday()

    @property
    def days(self) -> int:
        return self.demand.shape[0]


def store_day(session: Session):  # noqa: ANN201
    """A movement's calendar day on the store's clock, computed by the database."""
    if session.get_bind().dialect.name == "sqlite":
        return func.date(Movement.created_at, "-3 hours")  # stored in UTC; Argentina is UTC−3 all year
    return cast(func.timezone(literal_column("'America/Argentina/Buenos_Aires'"), Movement.created_at), Date)


def _as_date(value) -> date:  # noqa: ANN001
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _daily(session: Session, start: datetime, types: tuple[str, ...] | None):
    day = store_day(session)
    query = select(Movement.product_id, day.label("d"), func.sum(Movement.quantity)).where(Movement.created_at >= start)
    if types is not None:
        query = query.where(Movement.type.in_(types))
    return session.execute(query.group_by(Movement.product_id, day)).all()


def _scatter(rows, index: dict[int, int], first: date, n_days: int, sign: float):
    """(days + 1, products): the last row gathers every day after the history (today)."""
    out = np.zeros((n_days + 1, len(index)), dtype=np.float64)
    if not rows:
        return out
    pid, day, qty = zip(*rows)
    cols = np.array([index.get(p, -1) for p in pid])
    offs = np.array([(_as_date(d) - first).days for d in day])
    ok = (cols >= 0) & (offs >= 0)
    rows_idx = np.minimum(offs[ok], n_days)
    np.add.at(out, (rows_idx, cols[ok]), sign * np.array([float(q) for q in qty])[ok])
    return out


def load_history(session: Session, days: int = DEFAULT_HISTORY_DAYS, now: datetime | None = None) -> History:
    """Active products' demand and observed-day matrices over the last `days` store days."""
    today = store_day_start(now)
    start = today - timedelta(days=days)
    products = session.execute(
        select(Product.id, Product.sku, Category.name).outerjoin(Category, Category.id == Product.category_id)
        .where(Product.active.is_(True)).order_by(Product.id)
    ).all()
    ids = np.array([p[0] for p in products], dtype=np.int64)
    index = {int(p): i for i, p in enumerate(ids)}
    first = start.date()
    sold = _scatter(_daily(session, start, DEMAND_TYPES), index, first, days, -1.0)
    net = _scatter(_daily(session, start, None), index, first, days, 1.0)
    stock_now = np.zeros(len(index))
    for pid, qty in session.execute(select(Balance.product_id, func.sum(Balance.quantity)).group_by(Balance.product_id)):
        if pid in index:
            stock_now[index[pid]] = float(qty or 0)
    closing_last = stock_now - net[days]  # stock when the history's last day closed
    observed = F.stockout_mask(net[:days], closing_last) if days else np.zeros((0, len(index)), bool)
    return History(first, ids, [p[1] for p in products], [p[2] or "Sin categoría" for p in products],
                   sold[:days].astype(np.float32), observed)
