"""`minimarket demo`: fill an empty database with a believable Argentine minimercado.

Everything is drawn from one `random.Random(seed)`, so a seed and a `today` always give the
same store. Three steps, each in its own module so the store can grow new kinds of history:

1. plan (`demo/plan.py`): categories, suppliers, products, stock levels, and the monthly price lists,
   so the products are written once with today's prices and markups, and the lists become
   price batches and history (`demo/prices.py`);
2. simulate the days (`demo/simulation.py`), one at a time, each written as soon as it is simulated, today only
   up to the present moment (so Inicio shows today's sales);
   Each day's deliveries become confirmed supplier invoices (`demo/invoices.py`) before its rows
   are written, so the ledger rows reference them;
3. close: the balances the history left, the store's own data (name, CUIT, address), one audit row.

All of it is one unit of work, so a failure leaves the database empty. Rows go in with bulk
writes (COPY on PostgreSQL, executemany on SQLite): 100,000 products × 30 days take minutes.
"""

from __future__ import annotations

import random
import time as clock
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.orm import Session

from minimarket.accounts.models import AuditEntry
from minimarket.ar.dates import STORE_TZ
from minimarket.catalog.models import Category, Product
from minimarket.db import Database
from minimarket.errors import Conflict, InvalidInput
from minimarket.demo.bulk import bulk_insert
from minimarket.demo.catalog import CATEGORIES, SUPPLIERS
from minimarket.demo.invoices import supplier_fields, write_invoices
from minimarket.demo.prices import PriceListLine, own_markups, write_price_history
from minimarket.demo.plan import DEP, Item, Progress, at, cuits, plan_catalogue, plan_price_lists
from minimarket.demo.simulation import Row, simulate
from minimarket.stock.models import Balance, Movement
from minimarket.store_settings import (STORE_ADDRESS, STORE_CUIT, STORE_EMAIL, STORE_NAME, STORE_PHONE, read_value,
                                       write_value)
from minimarket.suppliers.models import Supplier
from minimarket.stock.totals import rebuild_totals

ACTOR = "demo"
NOT_EMPTY = "La base ya tiene productos: los datos de demostración sólo se cargan en una base vacía"
MOVEMENT_COLUMNS = ("producto_id", "ubicacion_id", "tipo", "cantidad", "saldo_posterior", "costo_unitario",
                    "precio_unitario", "motivo", "referencia", "actor", "clave_idempotencia", "operacion",
                    "creado_en")


@dataclass(frozen=True)
class DemoSummary:
    products: int
    categories: int
    suppliers: int
    movements: int
    sales_lines: int
    days: int
    seconds: float


def database_is_empty(db: Database) -> bool:
    with db.read() as session:
        return not session.scalar(select(func.count()).select_from(Product.__table__))


def generate_demo(db: Database, *, products: int = 600, days: int = 180, seed: int = 42,
                  progress: Progress | None = None, today: date | None = None,
                  now: datetime | None = None) -> DemoSummary:
    """Create categories, suppliers, products, `days` whole days of ledger history and today's up to now.

    With a fixed `today` (and no `now`) the history ends yesterday, so a seed gives the same store any time.
    """
    started = clock.perf_counter()
    if products < 1 or days < 1:
        raise InvalidInput(f"{'products' if products < 1 else 'days'}: tiene que ser al menos 1")
    if not database_is_empty(db):
        raise Conflict(NOT_EMPTY)
    report = progress or (lambda _label, _done, _total: None)
    rng = random.Random(seed)
    if today is None:
        now = now or datetime.now(STORE_TZ)
    until = now.astimezone(STORE_TZ) if now is not None else None  # today so far; nothing in the store's future
    today = until.date() if until is not None else today
    start = today - timedelta(days=days)
    simulated = days + (1 if until is not None else 0)
    items = plan_catalogue(rng, products, days, report)
    supplier_cuits = cuits(rng, len(SUPPLIERS))
    price_log: list[PriceListLine] = []
    price_changes = plan_price_lists(rng, items, start, days, price_log)
    with db.write() as session:
        if session.scalar(select(func.count()).select_from(Product.__table__)):
            raise Conflict(NOT_EMPTY)
        markups = own_markups([(it.final_cost, it.final_price, it.iva) for it in items], price_log)
        pids, sup_by_key = _write_catalogue(session, items, markups, supplier_cuits, at(start, 7, 30), report)
        write_price_history(session, price_log, pids, {key: name for key, name, _ in SUPPLIERS})
        stored = dict(session.execute(select(Supplier.id, Supplier.cuit)).all())
        sup_cuits = {key: stored[i] for key, i in sup_by_key.items()}
        movements = sales = 0
        for d, day_rows in enumerate(simulate(rng, items, start, simulated, price_changes, until), 1):
            report("Simulando ventas", d, simulated)
            rows = [Row(*r) for r in write_invoices(session, day_rows, items, pids, sup_by_key, sup_cuits, seed=seed,
                                                    location_id=DEP)]
            bulk_insert(session, Movement.__table__, MOVEMENT_COLUMNS, (_movement(pids, r) for r in rows))
            movements += len(rows)
            sales += sum(1 for r in rows if r.kind == "venta")
            report("Guardando movimientos", d, simulated)
        _write_closing(session, items, pids, closed=until or at(today - timedelta(days=1), 21, 30), report=report)
        _write_store_profile(session, seed)
        counts = {"products": len(items), "categories": len({it.category for it in items}),
                  "suppliers": len({it.supplier for it in items}), "movements": movements,
                  "sales_lines": sales, "days": days}
        session.execute(insert(AuditEntry.__table__), [{
            "creado_en": datetime.now(UTC), "actor": ACTOR, "accion": "demo.generate", "entidad": "demo",
            "entidad_id": f"seed:{seed}", "antes": None,
            "despues": {**counts, "seed": seed, "from": start.isoformat(),
                        "to": (until.isoformat() if until else (today - timedelta(days=1)).isoformat())},
            "request_id": None}])
    _analyze(db)
    return DemoSummary(**counts, seconds=round(clock.perf_counter() - started, 3))


def _analyze(db: Database) -> None:
    """Statistics for the planner right after a bulk load: autovacuum would take its time, and until then
    PostgreSQL plans the trigram and partial-index lookups of the inventory (and SQLite its joins) blind."""
    with db.write() as session:  # ANALYZE may run in a transaction on both backends
        session.execute(text("ANALYZE"))


def _write_catalogue(session: Session, items: list[Item], markups: list, supplier_cuits: list[str],
                     opened: datetime, report: Progress) -> tuple[list[int], dict[str, int]]:
    """Categories, suppliers (with their files) and products (with today's prices); returns product ids
    by item index and supplier ids by key."""
    used = {it.category for it in items}
    cat_ids = _ensure_named(session, Category.__table__, [{"nombre": c.name} for c in CATEGORIES if c.name in used])
    used = {it.supplier for it in items}
    sup_ids = _ensure_named(session, Supplier.__table__, [
        {"nombre": name, "cuit": cuit, "activo": True, "creado_en": opened, **supplier_fields(key, lead)}
        for (key, name, lead), cuit in zip(SUPPLIERS, supplier_cuits, strict=True) if key in used])
    sup_by_key = {key: sup_ids[name] for key, name, _ in SUPPLIERS if key in used}
    columns = ("sku", "codigo_barras", "nombre", "marca", "categoria_id", "unidad", "costo", "precio", "iva",
               "stock_minimo", "stock_maximo", "proveedor_id", "activo", "creado_en", "actualizado_en", "margen")
    bulk_insert(session, Product.__table__, columns, (
        (it.sku, it.barcode, it.name, it.brand, cat_ids[it.category], it.unit, it.final_cost, it.final_price, it.iva,
         it.min_stock, it.max_stock, sup_by_key[it.supplier], True, opened, it.updated or opened, markup)
        for it, markup in zip(items, markups, strict=True)))
    ids = dict(session.execute(select(Product.sku, Product.id)).all())
    report("Guardando el catálogo", len(items), len(items))
    return [ids[it.sku] for it in items], sup_by_key


def _movement(pids: list[int], r: Row) -> tuple:
    return (pids[r.item], r.location, r.kind, r.delta, r.balance_after, r.cost, r.price, r.reason, r.reference,
            ACTOR, None, r.operation, r.when)


def _write_closing(session: Session, items: list[Item], pids: list[int], *, closed: datetime,
                   report: Progress) -> None:
    """The balances the history left, per product and location."""
    bulk_insert(session, Balance.__table__, ("producto_id", "ubicacion_id", "cantidad", "actualizado_en"), (
        (pids[it.idx], loc, quantity, closed) for it in items for loc, quantity in it.stock.items()))
    rebuild_totals(session)
    report("Cerrando existencias", len(items), len(items))


def _write_store_profile(session: Session, seed: int) -> None:
    """The demo store's own data (Configuración), unless the operator already typed it; its own random stream,
    so the catalogue and history of a seed stay what they were."""
    profile = {STORE_NAME: "Minimercado La Esquina (demostración)",
               STORE_CUIT: cuits(random.Random(f"tienda:{seed}"), 1)[0],
               STORE_ADDRESS: "Av. Rivadavia 4321, CABA", STORE_PHONE: "11 4901-2345",
               STORE_EMAIL: "compras@laesquina.example"}
    for key, value in profile.items():
        if not read_value(session, key):
            write_value(session, key, value)


def _ensure_named(session: Session, table: Table, rows: list[dict]) -> dict[str, int]:
    """Reuse rows that already exist by name (an operator may have typed a few); insert the rest."""
    existing = dict(session.execute(select(table.c.nombre, table.c.id)).all())
    if "cuit" in table.c:  # never collide with a CUIT already on file
        taken = set(session.execute(select(table.c.cuit)).scalars())
        rows = [{**r, "cuit": None if r["cuit"] in taken else r["cuit"]} for r in rows]
    new = [r for r in rows if r["nombre"] not in existing]
    if new:
        session.execute(insert(table), new)
    return dict(session.execute(select(table.c.nombre, table.c.id)).all())
