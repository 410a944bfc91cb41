"""The store's numbers for Inicio: stock value, stock alerts, sales, margin and today's movements.

Computed by aggregate queries (indexed by date where they filter by date) and cached under the
store's change marker: the largest movement id and the largest audit row id (logins aside). Every change to the
catalogue is audited in its own transaction (a product edit, a price batch or its undo, an invoice
or order that moved a cost), so a new movement or a price change gives a new marker and the next
request recomputes; otherwise every page view and every replica reads the cached numbers. (The
marker is not the products' `actualizado_en`: that column has no index, so that a change to every
price stays a HOT update on PostgreSQL.)
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from minimarket.accounts.models import AuditEntry
from minimarket.ar.dates import store_day_start, store_week_start
from minimarket.catalog.models import Product
from minimarket.db import Database
from minimarket.platform.cache import Cache
from minimarket.stock.inventory import stock_summary
from minimarket.stock.models import Balance, Movement

CACHE_TTL = 300  # seconds; the marker already invalidates on every change, this only bounds staleness of "today"
_ZERO = Decimal("0")


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

    @classmethod
    def from_json(cls, data: dict) -> Kpis:
        decimals = {"stock_value_cost", "stock_value_price", "sales_today_units", "sales_today_amount",
                    "sales_week_units", "sales_week_amount", "margin_week"}
        return cls(**{k: (Decimal(v) if k in decimals and v is not None else v) for k, v in data.items()})


def change_marker(session: Session) -> Marker:
    movement_id = session.scalar(select(func.max(Movement.id))) or 0
    # Catalogue changes are all audited; a login is not one (the newest rows, read backwards by id).
    audited = session.scalar(select(AuditEntry.id).where(AuditEntry.action != "session.login")
                             .order_by(AuditEntry.id.desc()).limit(1)) or 0
    return Marker(movement_id=int(movement_id), catalog_changed=str(audited))


def _sales_since(session: Session, start: datetime) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """Units, amount charged (with IVA), net amount (without IVA) and cost of the sales since `start`."""
    sold = -Movement.quantity
    net_price = Movement.unit_price * 100 / (100 + Product.vat_rate)
    units, amount, net, cost = session.execute(
        select(func.coalesce(func.sum(sold), 0), func.coalesce(func.sum(sold * Movement.unit_price), 0),
               func.coalesce(func.sum(sold * net_price), 0), func.coalesce(func.sum(sold * Movement.unit_cost), 0))
        .join(Product, Product.id == Movement.product_id)
        .where(Movement.type == "venta", Movement.created_at >= start)
    ).one()
    return Decimal(units), Decimal(amount), Decimal(net), Decimal(cost)


def compute_kpis(db: Database, marker: Marker, now: datetime | None = None) -> Kpis:
    today, week = store_day_start(now), store_week_start(now)
    with db.read() as session:
        summary = stock_summary(session)
        at_cost, at_price = session.execute(
            select(func.coalesce(func.sum(Balance.quantity * Product.cost), 0),
                   func.coalesce(func.sum(Balance.quantity * Product.price), 0))
            .join(Product, Product.id == Balance.product_id)
            .where(Product.active.is_(True))
        ).one()
        day_units, day_amount, _, _ = _sales_since(session, today)
        week_units, week_amount, week_net, week_cost = _sales_since(session, week)
        moved_today = session.scalar(select(func.count()).select_from(Movement).where(Movement.created_at >= today))
    margin = ((week_net - week_cost) * 100 / week_net) if week_net > 0 else None
    return Kpis(
        stock_value_cost=Decimal(at_cost).quantize(Decimal("0.01")),
        stock_value_price=Decimal(at_price).quantize(Decimal("0.01")),
        active_products=summary["active"], below_minimum=summary["below_minimum"],
        out_of_stock=summary["out_of_stock"],
        sales_today_units=day_units.quantize(Decimal("0.001")), sales_today_amount=day_amount.quantize(Decimal("0.01")),
        sales_week_units=week_units.quantize(Decimal("0.001")),
        sales_week_amount=week_amount.quantize(Decimal("0.01")),
        margin_week=None if margin is None else margin.quantize(Decimal("0.1")),
        movements_today=int(moved_today or 0), marker=marker.movement_id,
    )


_COMPUTING = threading.Lock()


def current_kpis(db: Database, cache: Cache) -> Kpis:
    """The KPIs for the current marker and store day, from the cache when nothing changed.

    One computation at a time in this process: when a change empties the cache, the pages and event
    streams that arrive meanwhile wait for it and read its result instead of all computing at once.
    """
    with db.read() as session:
        marker = change_marker(session)
    key = f"kpis:{db_tag(db)}:{store_day_start().date().isoformat()}:{marker.key}"
    cached = cache.get_json(key)
    if cached is not None:
        return Kpis.from_json(cached)
    with _COMPUTING:
        cached = cache.get_json(key)
        if cached is not None:
            return Kpis.from_json(cached)
        kpis = compute_kpis(db, marker)
        cache.set_json(key, kpis.as_json(), CACHE_TTL)
    return kpis


def db_tag(db: Database) -> str:
    """A short tag of the database: stores sharing one Redis keep their cached numbers apart."""
    import hashlib

    return hashlib.sha256(db.url.encode()).hexdigest()[:12]  # stores sharing one Redis keep apart
