"""Precios atrasados: products whose shelf price gives less than their target markup, by money lost per day."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from minimarket.catalog.models import Category, Product
from minimarket.errors import InvalidInput
from minimarket.pricing import rules
from minimarket.pricing.bulk import TARGET_COLUMNS
from minimarket.pricing.models import PriceChange
from minimarket.pricing.service import last_purchases, summary_of
from minimarket.pricing.settings import load_pricing_settings
from minimarket.stock.models import Movement
from minimarket.types import utcnow

SALES_DAYS = 30
CHUNK = 1000  # ids per IN (...) list: well under every backend's parameter limit


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start:start + CHUNK]


def _units_sold(session: Session, ids: list[int], since: datetime) -> dict[int, Decimal]:
    sold: dict[int, Decimal] = {}
    for chunk in _chunks(ids):
        stmt = (select(Movement.product_id, func.sum(Movement.quantity))
                .where(Movement.type == "venta", Movement.created_at >= since, Movement.product_id.in_(chunk))
                .group_by(Movement.product_id))
        sold.update({pid: -Decimal(q) for pid, q in session.execute(stmt).all()})
    return sold


def _cost_changes(session: Session, ids: list[int]) -> dict[int, datetime]:
    changed: dict[int, datetime] = {}
    for chunk in _chunks(ids):
        stmt = (select(PriceChange.product_id, func.max(PriceChange.created_at))
                .where(PriceChange.cost_before != PriceChange.cost_after, PriceChange.product_id.in_(chunk))
                .group_by(PriceChange.product_id))
        changed.update(dict(session.execute(stmt).all()))
    return changed


def _purchases(session: Session, ids: list[int]) -> dict[int, datetime]:
    found: dict[int, datetime] = {}
    for chunk in _chunks(ids):
        found.update(last_purchases(session, chunk))
    return found


def lagging_prices(session: Session, *, limit: int, category: str | None = None) -> dict[str, Any]:
    """Products below their target markup, most money lost per day first (sales of the last 30 days)."""
    settings = load_pricing_settings(session)
    products, categories = Product.__table__, Category.__table__
    stmt = (select(*TARGET_COLUMNS).select_from(products.outerjoin(categories,
                                                                  categories.c.id == products.c.categoria_id))
            .where(products.c.activo.is_(True), products.c.costo > 0))
    if category:
        category_id = session.scalar(select(Category.id).where(func.lower(Category.name) == category.lower()))
        if category_id is None:
            raise InvalidInput(f"category: la categoría '{category}' no existe", details={"field": "category"})
        stmt = stmt.where(products.c.categoria_id == category_id)
    below = [r for r in session.execute(stmt).all() if rules.below_target(
        r.precio, r.costo, r.iva, rules.resolve_markup(r.margen, r.margen_objetivo, settings.default_markup))]
    ids = [r.id for r in below]
    sold = _units_sold(session, ids, utcnow() - timedelta(days=SALES_DAYS))
    purchases, cost_changes = _purchases(session, ids), _cost_changes(session, ids)
    items = []
    for r in below:
        item = summary_of(sku=r.sku, name=r.nombre, cost=r.costo, price=r.precio, vat=r.iva, own_markup=r.margen,
                          category_target=r.margen_objetivo, settings=settings, last_purchase=purchases.get(r.id))
        per_day = (sold.get(r.id, Decimal(0)) / SALES_DAYS).quantize(Decimal("0.001"))
        item.update(units_per_day=per_day, cost_changed_at=cost_changes.get(r.id),
                    lost_per_day=rules.daily_loss(r.precio, item["suggested_price"], r.iva, per_day))
        items.append(item)
    # Most money lost first; among products without sales, the widest gap to the suggested price.
    items.sort(key=lambda i: (-i["lost_per_day"], i["price"] / i["suggested_price"], i["sku"]))
    return {"count": len(items), "items": items[:limit]}
