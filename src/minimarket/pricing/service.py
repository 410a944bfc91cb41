"""Pricing use cases on one product: a new cost (invoices, price lists), its markup, its history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from minimarket.accounts.audit import Context, record_audit
from minimarket.catalog.models import Product
from minimarket.catalog.price_history import PriceChange, history_of, record_change
from minimarket.errors import InvalidInput
from minimarket.pricing import rules
from minimarket.pricing.settings import PricingSettings, load_pricing_settings
from minimarket.stock.models import Movement
from minimarket.types import utcnow


def checked_money(field: str, value: Decimal) -> Decimal:
    """Half-up to cents, within NUMERIC(14,2) and not negative — checked before anything is written."""
    amount = rules.money(value)
    if amount < 0 or amount > rules.MONEY_MAX:
        raise InvalidInput(f"{field}: el importe debe estar entre 0 y {rules.MONEY_MAX}; se obtuvo {amount}",
                           details={"field": field, "value": str(amount)})
    return amount


def target_markup(product: Product, settings: PricingSettings) -> Decimal:
    """The markup the product should carry: its own, else its category's, else the store's."""
    category_target = product.category.target_markup if product.category is not None else None
    return rules.resolve_markup(product.markup, category_target, settings.default_markup)


def suggested_price(product: Product, settings: PricingSettings, *, cost: Decimal | None = None) -> Decimal:
    """Shelf price for the product's cost (or `cost`), target markup and IVA, by the store's rounding."""
    base = product.cost if cost is None else cost
    return rules.shelf_price(base, target_markup(product, settings), product.vat_rate, settings.rounding)


@dataclass(frozen=True)
class CostChangeResult:
    """What a new cost did to one product (the product object is updated in place)."""

    product: Product
    cost_before: Decimal
    suggested_price: Decimal


def record_cost_changes(session: Session, ctx: Context, *, new_costs: dict[int, Decimal], reason: str,
                        batch_id: int | None = None, reference: str | None = None) -> list[CostChangeResult]:
    """Set several products' net costs (product id → cost), each with its history row and audit.

    One call for a whole invoice: the settings are read once and the products locked in one
    SELECT … FOR UPDATE, by id (concurrent callers lock in the same order). Each suggested
    price is also applied when the store's setting `apply_suggested_price` is on. Runs in the
    caller's unit of work (an invoice confirmation commits it with its stock entries).
    """
    settings = load_pricing_settings(session)
    checked = {pid: checked_money("cost", cost) for pid, cost in new_costs.items()}
    products = session.scalars(select(Product).where(Product.id.in_(checked)).order_by(Product.id)
                               .with_for_update(of=Product).execution_options(populate_existing=True)).all()
    results = []
    for product in products:
        cost_before, price_before = product.cost, product.price
        suggested = checked_money("price", suggested_price(product, settings, cost=checked[product.id]))
        product.cost = checked[product.id]
        if settings.apply_suggested_price:
            product.price = suggested
        product.updated_at = utcnow()
        row = record_change(session, ctx, product_id=product.id, cost_before=cost_before, cost_after=product.cost,
                            price_before=price_before, price_after=product.price, reason=reason, batch_id=batch_id,
                            reference=reference)
        if row is not None:
            record_audit(session, ctx, action="price.cost_change", entity="producto", entity_id=product.sku,
                         before={"cost": cost_before, "price": price_before},
                         after={"cost": product.cost, "price": product.price, "reason": reason,
                                "suggested_price": suggested, "batch_id": batch_id})
        results.append(CostChangeResult(product=product, cost_before=cost_before, suggested_price=suggested))
    session.flush()
    return results


def record_cost_change(session: Session, ctx: Context, *, product: Product, new_cost: Decimal, reason: str,
                       batch_id: int | None = None, reference: str | None = None) -> Decimal:
    """One product's new cost (see `record_cost_changes`); returns the suggested shelf price."""
    (result,) = record_cost_changes(session, ctx, new_costs={product.id: new_cost}, reason=reason, batch_id=batch_id,
                                    reference=reference)
    return result.suggested_price


def revert_cost_changes(session: Session, ctx: Context, *, changes: list[PriceChange],
                        reference: str) -> tuple[list[str], list[str]]:
    """Undo cost changes (e.g. an annulled invoice's) where nothing superseded them; (reverted, kept) SKUs.

    A product goes back to the cost and price before its change only if that change is still its
    latest history row and its cost and price are still the ones the change left: a later
    invoice, price list or manual change wins, and is left alone. Each revert writes its own
    history row (`deshacer`) and audit.
    """
    by_product = {c.product_id: c for c in changes}
    if not by_product:
        return [], []
    latest = dict(session.execute(select(PriceChange.product_id, func.max(PriceChange.id))
                                  .where(PriceChange.product_id.in_(by_product)).group_by(PriceChange.product_id)).all())
    products = session.scalars(select(Product).where(Product.id.in_(by_product)).order_by(Product.id)
                               .with_for_update(of=Product).execution_options(populate_existing=True)).all()
    reverted, kept = [], []
    for product in products:
        change = by_product[product.id]
        if latest.get(product.id) != change.id or (product.cost, product.price) != (change.cost_after,
                                                                                    change.price_after):
            kept.append(product.sku)
            continue
        record_change(session, ctx, product_id=product.id, cost_before=product.cost, cost_after=change.cost_before,
                      price_before=product.price, price_after=change.price_before, reason="deshacer",
                      reference=reference[:100])
        record_audit(session, ctx, action="price.cost_revert", entity="producto", entity_id=product.sku,
                     before={"cost": product.cost, "price": product.price},
                     after={"cost": change.cost_before, "price": change.price_before, "reference": reference})
        product.cost, product.price, product.updated_at = change.cost_before, change.price_before, utcnow()
        reverted.append(product.sku)
    session.flush()
    return reverted, kept


def set_product_markup(session: Session, ctx: Context, *, product: Product, markup: Decimal | None) -> Product:
    """The product's own markup (None: back to its category's target or the store default)."""
    if markup is not None and (markup < 0 or markup > rules.MARKUP_MAX):
        raise InvalidInput(f"markup: el margen debe estar entre 0 y {rules.MARKUP_MAX} (%)", details={"field": "markup"})
    before = product.markup
    product.markup = None if markup is None else markup.quantize(rules.CENT)
    if before != product.markup:
        record_audit(session, ctx, action="price.markup", entity="producto", entity_id=product.sku,
                     before={"markup": before}, after={"markup": product.markup})
    session.flush()
    return product


def last_purchases(session: Session, product_ids: list[int] | None = None) -> dict[int, datetime]:
    """When each product last came in (its latest `entrada`)."""
    stmt = select(Movement.product_id, func.max(Movement.created_at)).where(Movement.type == "entrada")
    if product_ids is not None:
        stmt = stmt.where(Movement.product_id.in_(product_ids))
    return dict(session.execute(stmt.group_by(Movement.product_id)).all())


def days_since(moment: datetime | None, now: datetime | None = None) -> Decimal:
    """Days (2 decimals) from `moment` to now; 0 when unknown or in the future."""
    if moment is None:
        return Decimal(0)
    seconds = ((now or utcnow()) - moment).total_seconds()
    return max(Decimal(0), (Decimal(str(seconds)) / Decimal(86400)).quantize(rules.CENT))


def price_summary(session: Session, product: Product, settings: PricingSettings,
                  last_purchase: datetime | None) -> dict[str, Any]:
    """Cost beside replacement cost, price, markups and the suggested price of one product."""
    category_target = product.category.target_markup if product.category is not None else None
    return summary_of(sku=product.sku, name=product.name, cost=product.cost, price=product.price,
                      vat=product.vat_rate, own_markup=product.markup, category_target=category_target,
                      settings=settings, last_purchase=last_purchase)


def summary_of(*, sku: str, name: str, cost: Decimal, price: Decimal, vat: Decimal, own_markup: Decimal | None,
               category_target: Decimal | None, settings: PricingSettings,
               last_purchase: datetime | None) -> dict[str, Any]:
    """The pricing summary from plain values (reports read columns, not ORM objects)."""
    target = rules.resolve_markup(own_markup, category_target, settings.default_markup)
    days = days_since(last_purchase)
    source = "producto" if own_markup is not None else "categoria" if category_target is not None else "tienda"
    return {
        "sku": sku, "name": name, "cost": cost,
        "replacement_cost": rules.replacement_cost(cost, settings.monthly_inflation, days),
        "last_purchase_at": last_purchase, "days_since_purchase": days, "price": price, "vat_rate": vat,
        "markup": rules.realized_markup(price, cost, vat), "target_markup": target, "markup_source": source,
        "suggested_price": rules.shelf_price(cost, target, vat, settings.rounding),
        "below_target": rules.below_target(price, cost, vat, target),
    }


def price_history(session: Session, product: Product, *, limit: int) -> dict[str, Any]:
    """The product's pricing summary and its history rows, newest first."""
    settings = load_pricing_settings(session)
    summary = price_summary(session, product, settings, last_purchases(session, [product.id]).get(product.id))
    rows = history_of(session, product.id, limit=limit)
    summary["changes"] = [{
        "id": r.id, "at": r.created_at, "reason": r.reason, "batch_id": r.batch_id, "reference": r.reference,
        "actor": r.actor, "cost_before": r.cost_before, "cost_after": r.cost_after,
        "price_before": r.price_before, "price_after": r.price_after} for r in rows]
    return summary
