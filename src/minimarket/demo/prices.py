"""The demo store's price history: its suppliers' monthly price lists as batches and precios_historial rows.

The generator simulates the lists (each supplier raises 2-4 % once a month and shelf prices
follow); lists from the last HOLD_DAYS days are not on the shelves yet (the cost rose, the price
did not), so the lagging-prices report has real work. Every product's own markup is the one its
shelf price was set with, so only those held products show up as lagging.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

from sqlalchemy.orm import Session

from minimarket.demo.bulk import bulk_insert
from minimarket.catalog.price_history import PriceChange
from minimarket.pricing.models import PriceBatch
from minimarket.store_settings import MONTHLY_INFLATION, write_value

HOLD_DAYS = 10
DEMO_MONTHLY_INFLATION = "3"  # the simulated lists raise 2-4 % a month
ACTOR = "demo"


@dataclass(frozen=True)
class PriceListLine:
    """One product's change from a supplier's price list."""

    when: datetime
    supplier: str  # the demo catalogue's supplier key
    item: int  # index of the product in the generator's list
    cost_before: Decimal
    price_before: Decimal
    cost_after: Decimal
    price_after: Decimal

    @property
    def held(self) -> bool:
        """The cost rose but the shelf price was not updated yet."""
        return self.price_after == self.price_before and self.cost_after != self.cost_before


def own_markups(final: list[tuple[Decimal, Decimal, Decimal]], log: list[PriceListLine]) -> list[Decimal | None]:
    """Per product (final cost, final price, IVA): the markup (percent, floored to cents) its price was set with."""
    priced_cost = {i: cost for i, (cost, _, _) in enumerate(final)}
    opening: dict[int, Decimal] = {}
    for line in log:
        opening.setdefault(line.item, line.cost_before)
    for i, cost in opening.items():
        priced_cost[i] = cost
    for line in log:  # in time order: the last list that reached the shelf sets the price's cost
        if not line.held:
            priced_cost[line.item] = line.cost_after
    markups: list[Decimal | None] = []
    for i, (_, price, vat) in enumerate(final):
        cost = priced_cost[i]
        if cost <= 0:
            markups.append(None)
            continue
        net = price / (1 + vat / 100)
        markups.append(((net - cost) / cost * 100).quantize(Decimal("0.01"), rounding=ROUND_FLOOR))
    return markups


def write_price_history(session: Session, log: list[PriceListLine], product_ids: list[int],
                        supplier_names: dict[str, str]) -> int:
    """One `lista_proveedor` batch per supplier list, one history row per product; returns the rows written."""
    batches: dict[tuple[datetime, str], PriceBatch] = {}
    for line in log:
        key = (line.when, line.supplier)
        if key not in batches:
            held = " (costo; el precio de góndola todavía no)" if line.held else ""
            batches[key] = PriceBatch(operation="lista_proveedor", reason="lista_proveedor", products=0,
                                      description=f"Lista de precios de {supplier_names[line.supplier]}{held}"[:300],
                                      actor=ACTOR, created_at=line.when)
        batches[key].products += 1
    session.add_all(batches.values())
    session.flush()
    if log:
        bulk_insert(session, PriceChange.__table__, ("producto_id", "costo_antes", "costo_despues", "precio_antes",
                                                     "precio_despues", "motivo", "lote_id", "actor", "creado_en"), (
            (product_ids[line.item], line.cost_before, line.cost_after, line.price_before, line.price_after,
             "lista_proveedor", batches[(line.when, line.supplier)].id, ACTOR, line.when) for line in log))
    write_value(session, MONTHLY_INFLATION, DEMO_MONTHLY_INFLATION)
    return len(log)
