"""Reorder suggestions per supplier from the stored forecast, stock, stock on order (units of sent
orders not received yet, `on_order.py`) and supplier terms."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from minimarket.ar.dates import store_day_start
from minimarket.catalog.models import Product
from minimarket.errors import InvalidInput
from minimarket.purchasing import reorder as R
from minimarket.purchasing.on_order import on_order_by_product
from minimarket.purchasing.models import Forecast
from minimarket.stock.models import Balance
from minimarket.suppliers.models import Supplier, SupplierCode
from minimarket.suppliers.service import resolve_supplier

DEFAULT_LEAD_DAYS = 1  # a supplier whose lead time is not loaded delivers the next day


def _latest_forecasts(session: Session) -> dict[int, Forecast]:
    latest = session.scalar(select(func.max(Forecast.computed_on)))
    if latest is None:
        return {}
    return {f.product_id: f for f in session.scalars(select(Forecast).where(Forecast.computed_on == latest))}


def _stock(session: Session) -> dict[int, Decimal]:
    rows = session.execute(select(Balance.product_id, func.sum(Balance.quantity)).group_by(Balance.product_id))
    return {pid: Decimal(q or 0) for pid, q in rows}


def _packs(session: Session) -> dict[tuple[int, int], int]:
    rows = session.execute(select(SupplierCode.supplier_id, SupplierCode.product_id, func.max(SupplierCode.pack_size))
                           .group_by(SupplierCode.supplier_id, SupplierCode.product_id))
    return {(s, p): int(n) for s, p, n in rows if n}


def suggestions(session: Session, *, supplier: str | None = None, cover_days: int = R.DEFAULT_COVER_DAYS,
                service_level: float = R.DEFAULT_SERVICE_LEVEL, now: datetime | None = None,
                include_all: bool = False) -> dict:
    """What to order, grouped by supplier, most urgent first (fewest days of cover left)."""
    if not 1 <= cover_days <= 120:
        raise InvalidInput("cover_days: usá entre 1 y 120 días de cobertura", details={"field": "cover_days"})
    try:
        R.service_z(service_level)
    except ValueError as exc:
        raise InvalidInput(str(exc), details={"field": "service_level"}) from exc
    today = store_day_start(now).date()
    query = select(Product).where(Product.active.is_(True))
    if supplier is not None:
        query = query.where(Product.supplier_id == resolve_supplier(session, supplier).id)
    forecasts, stock, packs = _latest_forecasts(session), _stock(session), _packs(session)
    on_order = on_order_by_product(session)
    groups: dict[int | None, list[dict]] = defaultdict(list)
    suppliers: dict[int, Supplier] = {}
    for product in session.scalars(query.order_by(Product.id)):
        sup = product.supplier
        if sup is not None:
            suppliers[sup.id] = sup
        lead = (sup.lead_time_days if sup and sup.lead_time_days is not None else DEFAULT_LEAD_DAYS)
        review = R.review_days(today, sup.order_days if sup else None)
        fc = forecasts.get(product.id)
        pack = packs.get((sup.id, product.id)) if sup else None
        coming = on_order.get(product.id, Decimal(0))
        s = R.suggest(stock=stock.get(product.id, Decimal(0)), on_order=coming,
                      rate=fc.daily_rate if fc else None, profile=fc.weekday_profile if fc else None,
                      mae=fc.backtest_mae if fc else None, today=today, lead_days=lead, review=review,
                      cover_days=cover_days, service_level=service_level, min_stock=product.min_stock or Decimal(0),
                      max_stock=product.max_stock, pack_size=pack)
        if s.quantity <= 0 and not include_all:
            continue
        groups[sup.id if sup else None].append({
            "sku": product.sku, "name": product.name, "quantity": str(s.quantity),
            "stock": str(stock.get(product.id, Decimal(0))), "on_order": str(coming),
            "daily_forecast": round(fc.daily_rate, 3) if fc else None,
            "method": fc.method if fc and fc.daily_rate > 0 else "min_max",
            "reorder_point": str(s.reorder_point), "target": str(s.target), "days_of_cover": s.days_of_cover,
            "pack_size": pack, "unit_cost": str(product.cost),
            "line_cost": str((s.quantity * product.cost).quantize(Decimal("0.01"))), "why": s.reasons})
    return {"date": today.isoformat(), "cover_days": cover_days, "service_level": service_level,
            "suppliers": [_group(suppliers.get(sid), lines, today) for sid, lines in _ordered(groups)]}


def _urgency(line: dict) -> tuple:
    cover = line["days_of_cover"]
    return (cover is None, cover if cover is not None else 0.0, line["sku"])


def _ordered(groups):  # noqa: ANN001, ANN202
    for lines in groups.values():
        lines.sort(key=_urgency)
    return sorted(groups.items(), key=lambda item: _urgency(item[1][0]) if item[1] else (True, 0.0, ""))


def _group(sup: Supplier | None, lines: list[dict], today) -> dict:  # noqa: ANN001
    total = sum((Decimal(line["line_cost"]) for line in lines), Decimal(0))
    minimum = sup.min_order if sup else None
    return {
        "supplier_id": sup.id if sup else None, "supplier": sup.name if sup else "Sin proveedor",
        "order_days": (sup.order_days or []) if sup else [],
        "next_order_day": R.next_order_day(today, sup.order_days if sup else None).isoformat(),
        "lead_time_days": sup.lead_time_days if sup and sup.lead_time_days is not None else DEFAULT_LEAD_DAYS,
        "total_cost": str(total), "min_order": str(minimum) if minimum is not None else None,
        "reaches_min_order": None if minimum is None else total >= minimum,
        "lines": lines,
    }
