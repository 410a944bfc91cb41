"""Price batches: write a batch's changes set-based, undo a batch exactly, list batches.

A batch of 20,000 products is never a per-row loop. On PostgreSQL it is one statement (UPDATE
… FROM the planned rows RETURNING what changed, fed into the history INSERT); on SQLite, a
temporary table of the planned rows, one UPDATE … FROM and one INSERT … SELECT. Undo is the
same, driven by the batch's own history rows. Counted in `minimarket_price_batches_applied_total`
only once committed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from prometheus_client import Counter
from sqlalchemy import bindparam, event, select, text
from sqlalchemy.orm import Session

from minimarket.accounts.audit import Context, record_audit
from minimarket.errors import Conflict, NotFound
from minimarket.pricing.models import PriceBatch
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
    """Apply the planned changes and write their history rows, set-based however many products.

    Each product changes only if it still has the cost and price the plan read; any shortfall
    (a concurrent change) refuses the whole batch.
    """
    now = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        written = _write_postgresql(session, ctx, batch, changes, now)
    else:
        written = _write_sqlite(session, ctx, batch, changes, now)
    settle_batch(session, batch, written=written, expected=len(changes))


def settle_batch(session: Session, batch: PriceBatch, *, written: int, expected: int) -> None:
    """The batch wrote what it planned (else 409, and the caller's transaction rolls back); count it on commit."""
    if written != expected:
        raise Conflict("Otro usuario cambió costos o precios de estos productos mientras se aplicaba el lote; "
                       "volvé a pedir la vista previa y aplicalo de nuevo", code="precios_cambiaron")
    batch.products = expected
    session.info.setdefault("price_batches", []).append(batch.reason)


def _pg_array(values: list) -> str:
    # An array literal built here (ints and Decimals need no quoting) binds 20,000 values as one text
    # parameter: much cheaper than adapting every element on the client.
    return "{" + ",".join(map(str, values)) + "}"


_HISTORY_COLUMNS = ("producto_id, costo_antes, costo_despues, precio_antes, precio_despues, motivo, lote_id, actor, "
                    "creado_en")


def _write_postgresql(session: Session, ctx: Context, batch: PriceBatch, changes: list[Planned],
                      now: datetime) -> int:
    """One statement: UPDATE … FROM unnest(five arrays) RETURNING, fed into the history INSERT."""
    arrays = {"ids": _pg_array([c.id for c in changes]), "cb": _pg_array([c.cost_before for c in changes]),
              "pb": _pg_array([c.price_before for c in changes]), "ca": _pg_array([c.cost_after for c in changes]),
              "pa": _pg_array([c.price_after for c in changes])}
    return session.execute(text(
        "WITH v AS (SELECT * FROM unnest(CAST(:ids AS integer[]), CAST(:cb AS numeric[]), CAST(:pb AS numeric[]), "
        "CAST(:ca AS numeric[]), CAST(:pa AS numeric[])) AS v(id, cb, pb, ca, pa)), "
        "upd AS (UPDATE productos p SET costo = v.ca, precio = v.pa, actualizado_en = :now FROM v "
        "WHERE p.id = v.id AND p.costo = v.cb AND p.precio = v.pb RETURNING v.*), "
        f"ins AS (INSERT INTO precios_historial ({_HISTORY_COLUMNS}) "
        "SELECT id, cb, ca, pb, pa, :reason, :batch, :actor, :now FROM upd RETURNING 1) "
        "SELECT count(*) FROM ins").bindparams(bindparam("now", type_=Timestamp)),
        {**arrays, "reason": batch.reason, "batch": batch.id, "actor": ctx.actor, "now": now}).scalar_one()


def _write_sqlite(session: Session, ctx: Context, batch: PriceBatch, changes: list[Planned], now: datetime) -> int:
    """A temporary table filled by the driver's executemany, then one UPDATE … FROM and one INSERT … SELECT."""
    raw = session.connection().connection.cursor()
    try:
        raw.execute("DROP TABLE IF EXISTS temp.lote_planeado")
        raw.execute("CREATE TEMP TABLE lote_planeado (id INTEGER PRIMARY KEY, cb NUMERIC, pb NUMERIC, "
                    "ca NUMERIC, pa NUMERIC)")
        raw.executemany("INSERT INTO temp.lote_planeado VALUES (?, ?, ?, ?, ?)", [
            (c.id, str(c.cost_before), str(c.price_before), str(c.cost_after), str(c.price_after)) for c in changes])
    finally:
        raw.close()
    params = {"reason": batch.reason, "batch": batch.id, "actor": ctx.actor, "now": now}
    updated = session.execute(text(
        "UPDATE productos SET costo = v.ca, precio = v.pa, actualizado_en = :now FROM temp.lote_planeado v "
        "WHERE productos.id = v.id AND productos.costo = v.cb AND productos.precio = v.pb"
    ).bindparams(bindparam("now", type_=Timestamp)), params).rowcount
    session.execute(text(
        f"INSERT INTO precios_historial ({_HISTORY_COLUMNS}) "
        "SELECT id, cb, ca, pb, pa, :reason, :batch, :actor, :now FROM temp.lote_planeado"
    ).bindparams(bindparam("now", type_=Timestamp)), params)
    session.execute(text("DROP TABLE temp.lote_planeado"))
    return updated


def _changed_since(session: Session, batch_id: int) -> tuple[int, list[str]]:
    """Products of the batch whose cost or price is no longer what the batch left (or changed again since)."""
    rows = session.execute(text(
        "SELECT p.sku, count(*) OVER () FROM precios_historial h JOIN productos p ON p.id = h.producto_id "
        "WHERE h.lote_id = :b AND (p.costo <> h.costo_despues OR p.precio <> h.precio_despues OR EXISTS "
        "(SELECT 1 FROM precios_historial l WHERE l.producto_id = h.producto_id AND l.id > h.id)) "
        f"ORDER BY p.sku LIMIT {SHOWN_CONFLICTS}"), {"b": batch_id}).all()
    return (rows[0][1] if rows else 0), [sku for sku, _ in rows]


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
    postgresql = session.get_bind().dialect.name == "postgresql"
    if not postgresql:
        _refuse_if_changed(session, batch_id)
    undo = open_batch(session, ctx, operation="deshacer", reason="deshacer",
                      description=f"Deshace el lote {batch_id}")
    undo.undoes, now = batch_id, utcnow()
    if postgresql:
        restored = _restore_postgresql(session, ctx, batch=batch, undo_id=undo.id, now=now)
    else:
        restored = _restore_sqlite(session, ctx, batch_id=batch_id, undo_id=undo.id, now=now)
    if restored != batch.products:  # a product changed between the check and the restore
        raise Conflict(f"No se puede deshacer el lote {batch_id}: otro usuario cambió precios mientras tanto; "
                       "probá de nuevo", code="lote_con_cambios_posteriores")
    undo.products = restored
    batch.undone_at, batch.undone_by = now, undo.id
    record_audit(session, ctx, action="price.batch.undo", entity="lote_precios", entity_id=str(batch_id),
                 before={"batch_id": batch_id, "products": batch.products},
                 after={"undo_batch_id": undo.id, "products": restored})
    session.info.setdefault("price_batches", []).append("deshacer")
    session.flush()
    return undo


def _refuse_if_changed(session: Session, batch_id: int) -> None:
    """409 naming the products of the batch changed since (none named: nothing to refuse)."""
    count, skus = _changed_since(session, batch_id)
    if count:
        more = f" y {count - len(skus)} más" if count > len(skus) else ""
        raise Conflict(f"No se puede deshacer el lote {batch_id}: {count} producto(s) cambiaron de costo o precio "
                       f"después: {', '.join(skus)}{more}", code="lote_con_cambios_posteriores",
                       details={"changed": count, "skus": skus})


_HISTORY_OF_UNDO = (f"INSERT INTO precios_historial ({_HISTORY_COLUMNS}) SELECT h.producto_id, h.costo_despues, "
                    "h.costo_antes, h.precio_despues, h.precio_antes, 'deshacer', :undo, :actor, :now ")


def _restore_postgresql(session: Session, ctx: Context, *, batch: PriceBatch, undo_id: int, now: datetime) -> int:
    """One statement restores every product not changed since, with its 'deshacer' row; all or none.

    The check is the statement's own condition (cost and price still the batch's, no later history
    row), inside a savepoint: when it restores fewer than the batch changed, the savepoint goes back
    and `_changed_since` names the products (the happy path never pays for that query).
    """
    savepoint = session.begin_nested()
    restored = session.execute(text(
        "WITH h AS (SELECT id, producto_id, costo_antes, costo_despues, precio_antes, precio_despues "
        "FROM precios_historial WHERE lote_id = :b), "
        "upd AS (UPDATE productos p SET costo = h.costo_antes, precio = h.precio_antes, actualizado_en = :now "
        "FROM h WHERE p.id = h.producto_id AND p.costo = h.costo_despues AND p.precio = h.precio_despues "
        "AND NOT EXISTS (SELECT 1 FROM precios_historial l WHERE l.producto_id = h.producto_id AND l.id > h.id) "
        "RETURNING h.*), "
        f"ins AS ({_HISTORY_OF_UNDO} FROM upd h RETURNING 1) SELECT count(*) FROM ins"
    ).bindparams(bindparam("now", type_=Timestamp)),
        {"b": batch.id, "undo": undo_id, "actor": ctx.actor, "now": now}).scalar_one()
    if restored == batch.products:
        savepoint.commit()
        return restored
    savepoint.rollback()
    _refuse_if_changed(session, batch.id)
    return restored


def _restore_sqlite(session: Session, ctx: Context, *, batch_id: int, undo_id: int, now: datetime) -> int:
    """Every product of the batch back to its before values, with a 'deshacer' history row each."""
    params = {"b": batch_id, "undo": undo_id, "actor": ctx.actor, "now": now}
    session.execute(text(f"{_HISTORY_OF_UNDO} FROM precios_historial h WHERE h.lote_id = :b"
                         ).bindparams(bindparam("now", type_=Timestamp)), params)
    return session.execute(text(
        "UPDATE productos SET costo = h.costo_antes, precio = h.precio_antes, actualizado_en = :now "
        "FROM precios_historial h WHERE h.lote_id = :b AND h.producto_id = productos.id "
        "AND productos.costo = h.costo_despues AND productos.precio = h.precio_despues"
    ).bindparams(bindparam("now", type_=Timestamp)), params).rowcount


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
