"""The only code that changes stock: an atomic conditional update plus one ledger row.

The balance moves with `UPDATE … SET cantidad = cantidad + d WHERE … AND cantidad + d >= 0
RETURNING cantidad`, so the check and the change are one statement: PostgreSQL re-evaluates
the condition after taking the row lock, and SQLite runs write units of work under BEGIN
IMMEDIATE. No balance is ever read into Python, changed and written back. The same
condition keeps the balance inside its NUMERIC column (`minimarket.limits.QUANTITY`), so a
write that would overflow is refused on both backends instead of failing (PostgreSQL) or
being stored inexactly (SQLite).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import bindparam, event, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from minimarket.accounts.audit import Context
from minimarket.catalog.models import Product
from minimarket.limits import QUANTITY, check_result
from minimarket.platform.read_cache import note_changed, product_version
from minimarket.platform.metrics import SALES_REVENUE, SALES_TICKETS, STOCK_MOVEMENTS, STOCK_REFUSED
from minimarket.stock.models import Balance, Location, Movement
from minimarket.stock.rules import insufficient
from minimarket.stock.totals import add_to_totals
from minimarket.types import Quantity, Timestamp, utcnow

LEDGER_VERSION = "ledger"  # bumped by every movement: what lists the ledger as a whole (web/kept_pages.py)

_balances = Balance.__table__
_movements = Movement.__table__


@dataclass
class Leg:
    """One change of one product at one location, as planned by a use case."""

    product: Product
    location: Location
    type: str
    delta: Decimal
    unit_cost: Decimal | None = None
    unit_price: Decimal | None = None
    reason: str | None = None
    reference: str | None = None
    field: str = "quantity"  # the request field this leg comes from, named in errors


def new_operation_id() -> str:
    return str(uuid.uuid4())


def ensure_balance_row(session: Session, product_id: int, location_id: int) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(_balances).values(producto_id=product_id, ubicacion_id=location_id, cantidad=0,
                                    actualizado_en=utcnow())
    session.execute(stmt.on_conflict_do_nothing(index_elements=["producto_id", "ubicacion_id"]))


def current_balance(session: Session, product_id: int, location_id: int, *, lock: bool = False) -> Decimal:
    stmt = select(_balances.c.cantidad).where(
        _balances.c.producto_id == product_id, _balances.c.ubicacion_id == location_id
    )
    if lock:
        stmt = stmt.with_for_update()
    value = session.scalar(stmt)
    return Decimal("0") if value is None else Decimal(value).quantize(Decimal("0.001"))


# The ledger's statements are built once and sent with their values as parameters: a statement object keeps
# its compiled-cache key, so a movement no longer pays for constructing and hashing each statement (more
# Python time than sending it; docs/PERFORMANCE.md "Movimientos").
@cache
def _balance_update(floor: bool):  # noqa: ANN202
    """`UPDATE existencias SET cantidad = round(cantidad + :delta, 3) WHERE (this balance) AND (fits) [AND >= 0]
    RETURNING cantidad`, with `floor` the below-zero refusal."""
    new_qty = func.round(_balances.c.cantidad + bindparam("delta", type_=Quantity), 3)
    conditions = [_balances.c.producto_id == bindparam("product_id"), _balances.c.ubicacion_id == bindparam("location_id"),
                  new_qty <= QUANTITY.maximum, new_qty >= -QUANTITY.maximum]
    if floor:
        conditions.append(new_qty >= 0)
    return (update(_balances).where(*conditions).values(cantidad=new_qty, actualizado_en=bindparam("now", type_=Timestamp))
            .returning(_balances.c.cantidad))


def _conditional_update(product: Product, location: Location, delta: Decimal, *, allow_negative: bool,
                        field: str) -> tuple[bool, dict]:
    """The one rule that moves a balance (`_balance_update`: `UPDATE … SET cantidad = cantidad + d WHERE … AND (fits)
    RETURNING cantidad`), as (whether it refuses below zero, its parameters); no row back means no balance row
    yet, or refused (below zero, or outside its column)."""
    check_result(delta, QUANTITY, field=field, subject=f"el movimiento de '{product.sku}' en {location.code}",
                 details={"field": field, "sku": product.sku, "location": location.code})
    return delta < 0 and not allow_negative, {"delta": delta, "product_id": product.id, "location_id": location.id,
                                              "now": utcnow()}


# A ledger row's columns but its balance after, in the order `_move_and_record` sends them.
_ROW_COLUMNS = ("producto_id", "ubicacion_id", "tipo", "cantidad", "costo_unitario", "precio_unitario", "motivo",
                "referencia", "actor", "clave_idempotencia", "operacion", "creado_en")


@cache
def _moved_and_recorded(floor: bool):  # noqa: ANN202
    """PostgreSQL: `_balance_update` and the ledger INSERT in one statement (a data-modifying CTE whose INSERT
    takes its row only from the UPDATE's RETURNING); the row's values are the parameters `row_<column>`."""
    moved = _balance_update(floor).cte("moved")
    values = select(*(bindparam(f"row_{c}", type_=_movements.c[c].type) for c in _ROW_COLUMNS), moved.c.cantidad)
    return (insert(_movements).from_select([*_ROW_COLUMNS, "saldo_posterior"], values)
            .returning(_movements.c.id, _movements.c.saldo_posterior).add_cte(moved))


_RECORD = insert(_movements).returning(_movements.c.id)  # SQLite: the ledger row after `apply_delta`


def _refuse(session: Session, product: Product, location: Location, delta: Decimal, field: str) -> None:
    """The update was refused: say why (outside the column, or not enough stock). Nothing was written."""
    available = current_balance(session, product.id, location.id)
    check_result(available + delta, QUANTITY, field=field, subject=f"el saldo de '{product.sku}' en {location.code}",
                 details={"field": field, "sku": product.sku, "location": location.code})
    STOCK_REFUSED.inc()
    raise insufficient(sku=product.sku, location=location.code, available=available, requested=-delta)


def apply_delta(session: Session, *, product: Product, location: Location, delta: Decimal,
                allow_negative: bool, field: str = "quantity") -> Decimal:
    """Move the balance by `delta` atomically; returns the new balance.

    Raises InsufficientStock below zero, OutOfRange when the movement or the balance would not
    fit its column; in both cases nothing was written.
    """
    floor, params = _conditional_update(product, location, delta, allow_negative=allow_negative, field=field)
    stmt = _balance_update(floor)
    after = session.execute(stmt, params).scalar()
    if after is None:  # no balance row yet (its first movement there), or refused: create it and try once more
        ensure_balance_row(session, product.id, location.id)
        after = session.execute(stmt, params).scalar()
    if after is None:
        _refuse(session, product, location, delta, field)
    return Decimal(after).quantize(Decimal("0.001"))


def _move_and_record(session: Session, leg: Leg, row: dict, *, allow_negative: bool) -> tuple[int, Decimal]:
    """Apply one leg and append its ledger row (`row`: every column but the balance after); returns the
    row's id and the balance after.

    On PostgreSQL the conditional update and the ledger INSERT are one statement (a data-modifying
    CTE: the row is written only from the update's RETURNING, so a refused update writes nothing);
    SQLite has no such CTE and runs `apply_delta` and the INSERT. Same rule, same rows.
    """
    if session.get_bind().dialect.name != "postgresql":
        after = apply_delta(session, product=leg.product, location=leg.location, delta=leg.delta,
                            allow_negative=allow_negative, field=leg.field)
        movement_id = session.execute(_RECORD, {**row, "saldo_posterior": after}).scalar_one()
        return movement_id, after
    stmt, params = move_and_record_statement(leg, row, allow_negative=allow_negative)
    found = session.execute(stmt, params).first()
    if found is None:  # no balance row yet (its first movement there), or refused: create it and try once more
        ensure_balance_row(session, leg.product.id, leg.location.id)
        found = session.execute(stmt, params).first()
    if found is None:
        _refuse(session, leg.product, leg.location, leg.delta, leg.field)
    return found[0], balance_after(found[1])


def balance_after(value: Any) -> Decimal:  # noqa: ANN401
    """A balance as returned by the database, at the ledger's 3 decimals."""
    return Decimal(value).quantize(Decimal("0.001"))


def move_and_record_statements() -> tuple[Any, ...]:
    """Every statement `move_and_record_statement` may return (to prepare them once)."""
    return _moved_and_recorded(False), _moved_and_recorded(True)


def move_and_record_statement(leg: Leg, row: dict, *, allow_negative: bool) -> tuple[Any, dict]:
    """PostgreSQL: the statement that applies `leg` and appends its ledger row `row` (`ledger_row`), and its
    parameters; no row back: no balance row yet, or refused (`_refuse` says why). OutOfRange when the
    movement itself does not fit its column."""
    floor, params = _conditional_update(leg.product, leg.location, leg.delta, allow_negative=allow_negative,
                                        field=leg.field)
    params.update({f"row_{c}": row[c] for c in _ROW_COLUMNS})
    return _moved_and_recorded(floor), params


def ledger_row(leg: Leg, actor: str, *, idempotency_key: str | None, operation_id: str, when: datetime) -> dict:
    """A leg's ledger row, every column but the balance after."""
    return {"producto_id": leg.product.id, "ubicacion_id": leg.location.id, "tipo": leg.type,
            "cantidad": leg.delta, "costo_unitario": leg.unit_cost if leg.unit_cost is not None else leg.product.cost,
            "precio_unitario": leg.unit_price, "motivo": leg.reason, "referencia": leg.reference,
            "actor": actor, "clave_idempotencia": idempotency_key, "operacion": operation_id,
            "creado_en": when}


def recorded_movement(leg: Leg, row: dict, movement_id: int, after: Decimal) -> Movement:
    """The ledger row as written (with Core, not through the ORM's unit of work)."""
    return Movement(
        id=movement_id, product_id=leg.product.id, location_id=leg.location.id, type=leg.type,
        quantity=leg.delta, balance_after=after, unit_cost=row["costo_unitario"], unit_price=leg.unit_price,
        reason=leg.reason, reference=leg.reference, actor=row["actor"], idempotency_key=row["clave_idempotencia"],
        operation_id=row["operacion"], created_at=row["creado_en"],
    )


def changed_versions(skus: Iterable[str]) -> tuple[str, ...]:
    """The cache versions a movement's commit bumps: the ledger's and each moved product's."""
    return (LEDGER_VERSION, *{product_version(sku) for sku in skus})


def count_movements(types: Iterable[str]) -> None:
    """Count committed movements in the metrics (only after their commit)."""
    for movement_type in types:
        STOCK_MOVEMENTS.labels(movement_type).inc()


def post_legs(session: Session, ctx: Context, legs: list[Leg], *, allow_negative: bool,
              operation_id: str, idempotency_key: str | None = None, occurred_at=None) -> list[Movement]:  # noqa: ANN001
    """Apply every leg and append its ledger row, in one transaction; all or nothing.

    Legs are applied in (product, location) order so that two concurrent operations
    over the same balances take their row locks in the same order and cannot deadlock;
    then each product's total (stock.totals), in product order.
    The returned movements (written with Core, not through the ORM's unit of work) follow the order of `legs`.
    """
    order = sorted(range(len(legs)), key=lambda i: (legs[i].product.id, legs[i].location.id))
    movements: list[Movement | None] = [None] * len(legs)
    when = occurred_at or utcnow()
    for i in order:
        leg = legs[i]
        row = ledger_row(leg, ctx.actor, idempotency_key=idempotency_key, operation_id=operation_id, when=when)
        movement_id, after = _move_and_record(session, leg, row, allow_negative=allow_negative)
        movements[i] = recorded_movement(leg, row, movement_id, after)
    deltas: dict[int, Decimal] = {}
    for leg in legs:
        deltas[leg.product.id] = deltas.get(leg.product.id, Decimal(0)) + leg.delta
    add_to_totals(session, deltas)  # after every balance: the lock order is balances, then totals
    session.info.setdefault("movement_types", []).extend(leg.type for leg in legs)
    # After the commit, every process drops what it kept of these products and of the ledger (platform.read_cache).
    note_changed(session.info, *changed_versions(leg.product.sku for leg in legs))
    return [m for m in movements if m is not None]


def note_sale(session: Session, total: Decimal) -> None:
    """Count a POS ticket in the sales metrics once its transaction commits."""
    session.info.setdefault("sale_totals", []).append(total)


@event.listens_for(Session, "after_commit")
def _count_committed_movements(session: Session) -> None:
    # Counted on commit only, so a refused or rolled-back batch never inflates the metrics.
    count_movements(session.info.pop("movement_types", ()))
    for total in session.info.pop("sale_totals", ()):
        SALES_TICKETS.inc()
        SALES_REVENUE.inc(float(total))


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop("movement_types", None)
    session.info.pop("sale_totals", None)
