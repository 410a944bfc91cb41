"""Per-product stock totals (`existencias_totales`): the sum of a product's balances and whether it is
at or below its minimum, kept in the ledger's transaction.

Lock order: the ledger updates balances first, in (product, location) order, then these rows in
product order; nothing else locks a balance, so two movements cannot deadlock over them. The
"low" flag is recomputed in a second statement, after the row lock is held, so it reads the
minimum as committed by then: a concurrent change of the minimum (`refresh_low`, which runs after
its own UPDATE of the product) either waits for this row or is seen by that statement.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache

from sqlalchemy import Integer, bindparam, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from minimarket.catalog.models import Product
from minimarket.platform.read_cache import note_changed
from minimarket.stock.models import ProductStock

_totals = ProductStock.__table__


def _insert(session: Session):  # noqa: ANN202
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(_totals)


# Versions of the kept inventory lists (stock.list_reads) whose membership follows the stock, bumped after the
# commit of a movement that moved a product in or out of them: "bajo mínimo" (the low flag flipped) and
# "sin stock" (the total crossed zero). A change of a listed product's own stock bumps its product version.
LOW_LISTS = "lists:low"
OUT_LISTS = "lists:out"


# Built once per dialect (like the ledger's statements): each movement sends them with its parameters.
@cache
def add_statement(dialect: str):  # noqa: ANN202
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(_totals).values(
        producto_id=bindparam("product_id", type_=Integer), cantidad=bindparam("delta", type_=_totals.c.cantidad.type),
        bajo_minimo=False)
    return stmt.on_conflict_do_update(
        index_elements=["producto_id"], set_={"cantidad": func.round(_totals.c.cantidad + stmt.excluded.cantidad, 3)},
    ).returning(_totals.c.cantidad, _totals.c.bajo_minimo)


REFRESH_LOW = (update(_totals).where(_totals.c.producto_id == bindparam("product_id", type_=Integer))
                .values(bajo_minimo=_totals.c.cantidad <= select(Product.min_stock)
                        .where(Product.id == bindparam("product_id", type_=Integer)).scalar_subquery())
                .returning(_totals.c.bajo_minimo))


def add_to_totals(session: Session, deltas: dict[int, Decimal]) -> None:
    """Add each product's net change to its total and recompute its low flag (one product at a time, in id order);
    note the list versions (LOW_LISTS, OUT_LISTS) whose membership that changed."""
    flipped: set[str] = set()
    add = add_statement(session.get_bind().dialect.name)
    for product_id in sorted(deltas):
        delta = deltas[product_id]
        total, was_low = session.execute(add, {"product_id": product_id, "delta": delta}).one()
        is_low = refresh_low(session, product_id)
        flipped |= flipped_lists(Decimal(total), delta, bool(was_low), is_low)
    if flipped:
        note_changed(session.info, *flipped)


def flipped_lists(total: Decimal, delta: Decimal, was_low: bool, is_low: bool) -> set[str]:
    """The list versions (LOW_LISTS, OUT_LISTS) whose membership a product's change `delta` changed: from its
    new `total` and its low flag as returned by `add_statement` (`was_low`) and by `refresh_low` (`is_low`)."""
    flipped = set()
    # A total equal to the change: the row was just inserted (in no list before) or was 0; either way, say so.
    fresh = total == delta
    if fresh or was_low != is_low:
        flipped.add(LOW_LISTS)
    if fresh or (total - delta <= 0) != (total <= 0):
        flipped.add(OUT_LISTS)
    return flipped


def refresh_low(session: Session, product_id: int) -> bool:
    """Recompute the low flag from the committed minimum (after a movement, or after the minimum changed); the
    flag as written (False when the product has no row)."""
    return bool(session.execute(REFRESH_LOW, {"product_id": product_id}).scalar_one_or_none())


def open_totals(session: Session, product_id: int) -> None:
    """A new product's row: no stock yet (so at or below any minimum)."""
    session.execute(_insert(session).values(producto_id=product_id, cantidad=0, bajo_minimo=True)
                    .on_conflict_do_nothing(index_elements=["producto_id"]))


def rebuild_totals(session: Session) -> None:
    """Every product's row from its balances (a bulk load that bypassed the ledger: the demo, a migration)."""
    session.execute(text(REBUILD_SQL))


# Like migration 0009's fill (which imports nothing of the app), for products that have no row yet.
REBUILD_SQL = """
INSERT INTO existencias_totales (producto_id, cantidad, bajo_minimo)
SELECT p.id, COALESCE(s.total, 0), COALESCE(s.total, 0) <= p.stock_minimo
FROM productos p LEFT JOIN (SELECT producto_id, ROUND(SUM(cantidad), 3) AS total FROM existencias
                            GROUP BY producto_id) s ON s.producto_id = p.id
WHERE NOT EXISTS (SELECT 1 FROM existencias_totales t WHERE t.producto_id = p.id)
"""


def total_mismatches(session: Session, ledger: dict[int, Decimal]
                     ) -> list[tuple[str, Decimal | None, Decimal, bool | None, str | None]]:
    """Products whose kept total disagrees with their ledger sum (`ledger`, by product id), whose low flag
    disagrees with the total, or whose row's copy of the SKU is not theirs: (sku, kept total or None, ledger
    sum, kept flag, kept SKU)."""
    rows = session.execute(
        select(Product.id, Product.sku, ProductStock.quantity, ProductStock.low, Product.min_stock, ProductStock.sku)
        .select_from(Product).outerjoin(ProductStock, ProductStock.product_id == Product.id)
    ).all()
    milli = Decimal("0.001")
    found = []
    for product_id, sku, kept, low, minimum, kept_sku in rows:
        summed = ledger.get(product_id, Decimal("0.000"))
        if kept is None:
            if summed != 0:  # a product never moved needs no row; one with stock does
                found.append((sku, None, summed, None, None))
            continue
        kept = Decimal(str(kept)).quantize(milli)
        if kept != summed or bool(low) != (kept <= Decimal(str(minimum))) or kept_sku != sku:
            found.append((sku, kept, summed, low, kept_sku))
    return found
