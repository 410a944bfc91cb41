"""Bulk price changes: pick products by a filter, plan the change (pure), preview it or apply it as a batch."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from minimarket.accounts.audit import Context, record_audit
from minimarket.catalog.models import Category, Product
from minimarket.errors import InvalidInput
from minimarket.pricing import rules
from minimarket.pricing.batches import Planned, open_batch, settle_batch, write_batch
from minimarket.pricing.bulk_sql import apply_computed
from minimarket.pricing.models import PriceBatch
from minimarket.pricing.schemas import BulkChangeIn, ProductFilter
from minimarket.pricing.settings import PricingSettings, load_pricing_settings
from minimarket.suppliers.service import resolve_supplier

PREVIEW_ITEMS = 500
_products, _categories = Product.__table__, Category.__table__
TARGET_COLUMNS = (_products.c.id, _products.c.sku, _products.c.nombre, _products.c.costo, _products.c.precio,
                  _products.c.iva, _products.c.margen, _categories.c.margen_objetivo)


def filtered_select(session: Session, flt: ProductFilter) -> Select:
    """SELECT of TARGET_COLUMNS for the active products the filter matches (unknown names are 422)."""
    stmt = (select(*TARGET_COLUMNS).select_from(_products.outerjoin(_categories,
                                                                   _categories.c.id == _products.c.categoria_id))
            .where(_products.c.activo.is_(True)))
    if flt.category:
        category_id = session.scalar(select(Category.id).where(func.lower(Category.name) == flt.category.lower()))
        if category_id is None:
            raise InvalidInput(f"filter.category: la categoría '{flt.category}' no existe",
                               details={"field": "filter.category"})
        stmt = stmt.where(_products.c.categoria_id == category_id)
    if flt.supplier:
        supplier = resolve_supplier(session, flt.supplier, field="filter.supplier")
        stmt = stmt.where(_products.c.proveedor_id == supplier.id)
    if flt.brand:
        stmt = stmt.where(func.lower(_products.c.marca) == flt.brand.lower())
    if flt.skus:
        found = set(session.scalars(select(_products.c.sku).where(_products.c.sku.in_(flt.skus),
                                                                  _products.c.activo.is_(True))))
        missing = [s for s in flt.skus if s not in found]
        if missing:
            raise InvalidInput(f"filter.skus: {len(missing)} SKU no existen o están dados de baja: "
                               f"{', '.join(missing[:20])}", details={"field": "filter.skus", "skus": missing[:100]})
        stmt = stmt.where(_products.c.sku.in_(flt.skus))
    return stmt


def target_rows(session: Session, flt: ProductFilter) -> list[Any]:
    """(id, sku, name, cost, price, vat, own markup, category target) of the active products matched, by SKU."""
    return session.execute(filtered_select(session, flt).order_by(_products.c.sku)).all()


def plan_row(row: Any, *, operation: str, percent: Decimal | None, update_prices: bool,
             settings: PricingSettings, listed_cost: Decimal | None = None) -> Planned:
    """One product's new cost and price (pure: no database); `listed_cost` is a price list's new cost."""
    target = rules.resolve_markup(row.margen, row.margen_objetivo, settings.default_markup)
    cost, price, vat = row.costo, row.precio, row.iva  # Decimals from NUMERIC columns
    new_cost, new_price = cost, price
    if operation == "price_percent":
        new_price = rules.round_price(price * (1 + percent / rules.HUNDRED), settings.rounding)
    elif operation in ("cost_percent", "lista_proveedor"):
        new_cost = rules.apply_percent(cost, percent) if operation == "cost_percent" else listed_cost
        if update_prices and new_cost > 0:
            new_price = rules.shelf_price(new_cost, target, vat, settings.rounding)
    elif operation == "recompute" and cost > 0:  # a product without a cost keeps its price
        new_price = rules.shelf_price(cost, target, vat, settings.rounding)
    for field, value in (("cost", new_cost), ("price", new_price)):
        if value > rules.MONEY_MAX:
            raise InvalidInput(f"{field}: el {('costo', 'precio')[field == 'price']} de '{row.sku}' quedaría en "
                               f"{value}, más que el máximo {rules.MONEY_MAX}", details={"sku": row.sku, "field": field})
    return Planned(id=row.id, sku=row.sku, name=row.nombre, vat=vat, target=target, cost_before=cost,
                   cost_after=new_cost, price_before=price, price_after=new_price)


def planned_out(c: Planned) -> dict[str, Any]:
    return {"sku": c.sku, "name": c.name, "cost_before": c.cost_before, "cost_after": c.cost_after,
            "price_before": c.price_before, "price_after": c.price_after,
            "markup_after": rules.realized_markup(c.price_after, c.cost_after, c.vat), "target_markup": c.target,
            "below_target": rules.below_target(c.price_after, c.cost_after, c.vat, c.target)}


def _plan(session: Session, change: BulkChangeIn) -> tuple[list[Planned], int]:
    settings = load_pricing_settings(session)
    rows = target_rows(session, change.filter)
    planned = [plan_row(r, operation=change.operation, percent=change.percent, update_prices=change.update_prices,
                        settings=settings) for r in rows]
    changed = [c for c in planned if c.changed]
    return changed, len(planned) - len(changed)


def preview_bulk(session: Session, *, change: BulkChangeIn, offset: int = 0,
                 limit: int = PREVIEW_ITEMS) -> dict[str, Any]:
    """What the change would do, without writing anything: the counts, and the products from `offset` (by SKU)."""
    changed, unchanged = _plan(session, change)
    below = sum(1 for c in changed if rules.below_target(c.price_after, c.cost_after, c.vat, c.target))
    return {"count": len(changed), "unchanged": unchanged, "below_target": below,
            "items": [planned_out(c) for c in changed[offset:offset + limit]]}


def describe(change: BulkChangeIn) -> str:
    if change.operation == "recompute":
        parts = "precio recalculado desde el costo"
    else:
        parts = f"{'precio' if change.operation == 'price_percent' else 'costo'} {change.percent:+}%"
    flt = change.filter
    scope = [f"{name} {value}" for name, value in (("categoría", flt.category), ("proveedor", flt.supplier),
                                                   ("marca", flt.brand)) if value]
    if flt.skus:
        scope.append(f"{len(flt.skus)} SKU")
    text = f"{parts} · {', '.join(scope) or 'todos los productos'}"
    return f"{text} · {change.note}" if change.note else text


def apply_bulk(session: Session, ctx: Context, *, change: BulkChangeIn) -> PriceBatch:
    """Apply the change to every matched product as one batch, in the caller's transaction.

    PostgreSQL computes the new values and applies them in one statement (pricing/bulk_sql.py: no
    row goes through Python); SQLite (binary floating point) applies the Python plan the preview
    shows, set-based through a temporary table (pricing/batches.write_batch).
    """
    filters = change.filter.model_dump(mode="json", exclude_none=True)
    if len(filters.get("skus", ())) > 100:  # the batch keeps a sample; its history rows name every product
        filters["skus"], filters["skus_total"] = filters["skus"][:100], len(filters["skus"])
    if session.get_bind().dialect.name == "postgresql":
        base = filtered_select(session, change.filter)
        batch = open_batch(session, ctx, operation=change.operation, reason="aumento_masivo",
                           description=describe(change), percent=change.percent, filters=filters)
        written, expected = apply_computed(session, ctx, batch, base, change, load_pricing_settings(session))
        _refuse_empty(expected)
        settle_batch(session, batch, written=written, expected=expected)
    else:
        changed, _ = _plan(session, change)
        _refuse_empty(len(changed))
        batch = open_batch(session, ctx, operation=change.operation, reason="aumento_masivo",
                           description=describe(change), percent=change.percent, filters=filters)
        write_batch(session, ctx, batch, changed)
    record_audit(session, ctx, action="price.batch.apply", entity="lote_precios", entity_id=str(batch.id),
                 after={"operation": change.operation, "percent": change.percent, "products": batch.products,
                        "filter": batch.filters, "description": batch.description})
    return batch


def _refuse_empty(changed: int) -> None:
    if not changed:
        raise InvalidInput("Ningún producto del filtro cambia con esta operación; no se creó ningún lote",
                           code="sin_cambios")
