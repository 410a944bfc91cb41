"""Price batches: write a batch's changes set-based, undo a batch exactly, list batches.

A batch of 20,000 products is two statements on PostgreSQL (INSERT … SELECT FROM unnest(…)
of the history rows, then UPDATE … FROM those rows), never a per-row ORM loop; undo is two
set-based statements driven by the batch's own history rows, on both backends. Counted in
`minimarket_price_batches_applied_total` only once committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from prometheus_client import Counter
from sqlalchemy import bindparam, event, insert, select, text
from sqlalchemy.orm import Session

from minimarket.accounts.audit import Context, record_audit
from minimarket.errors import Conflict, NotFound
from minimarket.pricing.models import PriceBatch, PriceChange
from minimarket.types import Timestamp, utcnow

PRICE_BATCHES = Counter("minimarket_price_batches_applied_total",
                        "Price batches committed (bulk changes, supplier price lists, undos), by reason", ["reason"])
for _reason in ("aumento_masivo", "lista_proveedor", "deshacer"):
    PRICE_BATCHES.labels(_reason)
SHOWN_CONFLICTS = 20


@dataclass(frozen=True)
class Planned:
    """One product's change in a batch (values already rounded and limit-checked)."""

    id: int
    sku: str
    name: str
    vat: Decimal
    target: Decimal
    cost_before: Decimal
    cost_after: Decimal
    price_before: Decimal
    price_after: Decimal

    @property
    def changed(self) -> bool:
        return self.cost_before != self.cost_after or self.price_before != self.price_after


@event.listens_for(Session, "after_commit")
def _count_committed_batches(session: Session) -> None:
    for reason in session.info.pop("price_batches", ()):
        PRICE_BATCHES.labels(reason).inc()


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back_batches(session: Session) -> None:
    session.info.pop("price_batches", None)


def open_batch(session: Session, ctx: Context, *, operation: str, reason: str, description: str | None,
               percent: Decimal | None = None, filters: dict | None = None) -> PriceBatch:
    """A new batch row (its id goes on every history row of the batch)."""
    # The column holds 300 characters; a long filter (names up to 200 each) is cut, never refused.
    batch = PriceBatch(operation=operation, reason=reason, percent=percent,
                       description=description[:300] if description else None,
                       filters=filters, products=0, actor=ctx.actor, created_at=utcnow())
    session.add(batch)
    session.flush()
    return batch


def write_batch(session: Session, ctx: Context, batch: PriceBatch, changes: list[Planned]) -> None:
    """Write the planned changes' history rows, then apply them to the products."""
    now = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        _insert_history_postgresql(session, ctx, batch, changes, now)
    else:
        _insert_history_rows(session, ctx, batch, changes, now)
    apply_batch_rows(session, batch, expected=len(changes))


def apply_batch_rows(session: Session, batch: PriceBatch, *, expected: int) -> None:
    """Set each product to its history row's after values, in one UPDATE … FROM, only where the product
    still has the before values; any shortfall (a concurrent change) refuses the whole batch."""
    updated = session.execute(text(
        "UPDATE productos SET costo = h.costo_despues, precio = h.precio_despues, actualizado_en = h.creado_en "
        "FROM precios_historial h WHERE h.lote_id = :batch AND h.producto_id = productos.id "
        "AND productos.costo = h.costo_antes AND productos.precio = h.precio_antes"), {"batch": batch.id}).rowcount
    if updated != expected:
        raise Conflict("Otro usuario cambió costos o precios de estos productos mientras se aplicaba el lote; "
                       "volvé a pedir la vista previa y aplicalo de nuevo", code="precios_cambiaron")
    batch.products = expected
    session.info.setdefault("price_batches", []).append(batch.reason)


def _pg_array(values: list) -> str:
    # An array literal built here (ints and Decimals need no quoting) binds 20,000 values as one text
    # parameter: much cheaper than adapting every element on the client.
    return "{" + ",".join(map(str, values)) + "}"


def _insert_history_postgresql(session: Session, ctx: Context, batch: PriceBatch, changes: list[Planned],
                               now: datetime) -> None:
    """One INSERT … SELECT FROM unnest(five arrays), however many products."""
    arrays = {"ids": _pg_array([c.id for c in changes]), "cb": _pg_array([c.cost_before for c in changes]),
              "pb": _pg_array([c.price_before for c in changes]), "ca": _pg_array([c.cost_after for c in changes]),
              "pa": _pg_array([c.price_after for c in changes])}
    session.execute(text(
        "INSERT INTO precios_historial (producto_id, costo_antes, costo_despues, precio_antes, precio_despues, "
        "motivo, lote_id, actor, creado_en) SELECT v.id, v.cb, v.ca, v.pb, v.pa, :reason, :batch, :actor, :now "
        "FROM unnest(CAST(:ids AS integer[]), CAST(:cb AS numeric[]), CAST(:pb AS numeric[]), "
        "CAST(:ca AS numeric[]), CAST(:pa AS numeric[])) AS v(id, cb, pb, ca, pa)"),
        {**arrays, "reason": batch.reason, "batch": batch.id, "actor": ctx.actor, "now": now})


def _insert_history_rows(session: Session, ctx: Context, batch: PriceBatch, changes: list[Planned],
                         now: datetime) -> None:
    """SQLite has no arrays: multi-row INSERTs (SQLAlchemy batches the VALUES)."""
    session.execute(insert(PriceChange.__table__), [{
        "producto_id": c.id, "costo_antes": c.cost_before, "costo_despues": c.cost_after,
        "precio_antes": c.price_before, "precio_despues": c.price_after, "motivo": batch.reason,
        "lote_id": batch.id, "actor": ctx.actor, "creado_en": now} for c in changes])


def _changed_since(session: Session, batch_id: int) -> tuple[int, list[str]]:
    """Products of the batch whose cost or price is no longer what the batch left (or changed again since)."""
    where = ("FROM precios_historial h JOIN productos p ON p.id = h.producto_id WHERE h.lote_id = :b AND "
             "(p.costo <> h.costo_despues OR p.precio <> h.precio_despues OR EXISTS (SELECT 1 FROM precios_historial l "
             "WHERE l.producto_id = h.producto_id AND l.id > h.id))")
    count = session.execute(text(f"SELECT count(*) {where}"), {"b": batch_id}).scalar_one()
    skus = session.execute(text(f"SELECT p.sku {where} ORDER BY p.sku LIMIT {SHOWN_CONFLICTS}"), {"b": batch_id})
    return count, list(skus.scalars())


def undo_batch(session: Session, ctx: Context, *, batch_id: int) -> PriceBatch:
    """Put back every cost and price the batch changed, exactly; refused if any of them changed since."""
    batch = session.get(PriceBatch, batch_id, with_for_update=True)
    if batch is None:
        raise NotFound(f"batch_id: el lote {batch_id} no existe", details={"batch_id": batch_id})
    if batch.undone_at is not None:
        raise Conflict(f"El lote {batch_id} ya se deshizo (lote {batch.undone_by})", code="lote_ya_deshecho",
                       details={"undone_by": batch.undone_by})
    if batch.operation == "deshacer":
        raise Conflict(f"El lote {batch_id} es un deshacer; para volver a esos precios aplicá el cambio de nuevo",
                       code="lote_es_deshacer")
    count, skus = _changed_since(session, batch_id)
    if count:
        more = f" y {count - len(skus)} más" if count > len(skus) else ""
        raise Conflict(f"No se puede deshacer el lote {batch_id}: {count} producto(s) cambiaron de costo o precio "
                       f"después: {', '.join(skus)}{more}", code="lote_con_cambios_posteriores",
                       details={"changed": count, "skus": skus})
    undo = open_batch(session, ctx, operation="deshacer", reason="deshacer",
                      description=f"Deshace el lote {batch_id}")
    undo.undoes, now = batch_id, utcnow()
    params = {"b": batch_id, "undo": undo.id, "actor": ctx.actor, "now": now}
    session.execute(text(
        "INSERT INTO precios_historial (producto_id, costo_antes, costo_despues, precio_antes, precio_despues, motivo, "
        "lote_id, actor, creado_en) SELECT h.producto_id, h.costo_despues, h.costo_antes, h.precio_despues, "
        "h.precio_antes, 'deshacer', :undo, :actor, :now FROM precios_historial h WHERE h.lote_id = :b"
    ).bindparams(bindparam("now", type_=Timestamp)), params)
    restored = session.execute(text(
        "UPDATE productos SET costo = h.costo_antes, precio = h.precio_antes, actualizado_en = :now "
        "FROM precios_historial h WHERE h.lote_id = :b AND h.producto_id = productos.id"
    ).bindparams(bindparam("now", type_=Timestamp)), params).rowcount
    undo.products = restored
    batch.undone_at, batch.undone_by = now, undo.id
    record_audit(session, ctx, action="price.batch.undo", entity="lote_precios", entity_id=str(batch_id),
                 before={"batch_id": batch_id, "products": batch.products},
                 after={"undo_batch_id": undo.id, "products": restored})
    session.info.setdefault("price_batches", []).append("deshacer")
    session.flush()
    return undo


def list_batches(session: Session, *, limit: int, before_id: int | None) -> list[PriceBatch]:
    """Newest first; `before_id` pages back."""
    stmt = select(PriceBatch).order_by(PriceBatch.id.desc()).limit(limit)
    if before_id is not None:
        stmt = stmt.where(PriceBatch.id < before_id)
    return list(session.scalars(stmt).all())


def batch_out(batch: PriceBatch) -> dict:
    return {"batch_id": batch.id, "operation": batch.operation, "reason": batch.reason, "percent": batch.percent,
            "description": batch.description, "products": batch.products, "actor": batch.actor,
            "created_at": batch.created_at, "undone_at": batch.undone_at, "undone_by": batch.undone_by,
            "undoes": batch.undoes}
