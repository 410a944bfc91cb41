"""Bulk price change benchmark: 20,000+ products in a fresh database, apply a batch, undo it, print times.

    .venv/bin/python bench/prices_bulk.py [--products 20000] [--runs 3] [--postgres URL] [--sqlite]
                                          [--write docs/PERFORMANCE.md]

Each run previews, applies (+20 % on every product, one batch, one transaction, committed) and
undoes it through the same service functions the API calls. The baseline is the bare set-based
statement `UPDATE productos SET precio = precio * 1.2, actualizado_en = now` on the same rows in
the same database (rolled back): the least any bulk change can cost. Prices are checked back to
the cent after every undo. Besides the wall time it prints the CPU time of this process plus the
PostgreSQL backend's (from /proc, when the server runs on this machine): on a shared, loaded
machine that is close to what the same work takes on an idle one. On stderr: how many of the
productos rows each apply and undo updated HOT (no index entry written).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import make_url

from minimarket.accounts.audit import Context
from minimarket.catalog.models import Category, Product
from minimarket.db import Database
from minimarket.migrations.runner import upgrade
from minimarket.pricing import batches, bulk
from minimarket.pricing.schemas import BulkChangeIn

CTX = Context(actor="bench")
CHANGE = BulkChangeIn(filter={"all_products": True}, operation="price_percent", percent=Decimal("20"))


def load_products(db: Database, n: int) -> None:
    with db.write() as session:
        session.execute(insert(Category.__table__), [{"nombre": f"Categoría {i}"} for i in range(20)])
        cats = list(session.scalars(select(Category.id)))
        rows = []
        for i in range(n):
            cost = Decimal(100 + (i * 7919) % 90000) / 100 * 10
            rows.append({"sku": f"B-{i:06d}", "nombre": f"Producto {i}", "categoria_id": cats[i % len(cats)],
                         "unidad": "u", "costo": cost, "precio": (cost * Decimal("1.6335")).quantize(Decimal("0.01")),
                         "iva": Decimal("21"), "stock_minimo": Decimal(0), "activo": True})
        for start in range(0, n, 5000):
            session.execute(insert(Product.__table__), rows[start:start + 5000])


def prices(db: Database) -> list[tuple]:
    with db.read() as session:
        return session.execute(select(Product.id, Product.cost, Product.price).order_by(Product.id)).all()


def _backend_cpu(pid: int | None) -> float | None:
    """CPU seconds so far of a PostgreSQL backend on this machine (the kernel's count, in ns); 0 for SQLite."""
    if pid is None:
        return 0.0  # SQLite runs in this process: its time is this process's
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except OSError:
        return None  # a server elsewhere


def measure(open_session, work) -> tuple[float, float | None]:  # noqa: ANN001
    """(wall seconds, CPU seconds of this process and the database backend) of `work(session)`, commit included.

    On a loaded machine the wall time mostly waits for a core; the CPU time is what the same work
    takes on an idle one (less the commit's flush), so both are printed. CPU is None when the
    server is not a process on this machine.
    """
    wall, client = time.perf_counter(), time.process_time()
    try:
        with open_session() as session:
            pid = (session.execute(text("SELECT pg_backend_pid()")).scalar_one()
                   if session.get_bind().dialect.name == "postgresql" else None)
            server = _backend_cpu(pid)
            work(session)
    except _Rollback:
        pass
    wall, client = time.perf_counter() - wall, time.process_time() - client
    after = _backend_cpu(pid)
    return wall, (None if server is None or after is None else client + after - server)


OPERATIONS = (("baseline", "bare `UPDATE productos SET precio = precio * 1.2, actualizado_en = …` (baseline)"),
              ("preview", "preview (count + first 500 rows)"),
              ("apply", "apply +20 % as one batch (UPDATE … FROM + history INSERT … SELECT, commit)"),
              ("undo", "undo the batch (check + restore + history, commit)"))


def run_backend(label: str, url: str, products: int, runs: int) -> list[tuple]:
    upgrade(url)
    db = Database(url)
    try:
        load_products(db, products)
        original = prices(db)
        samples: dict[str, list[tuple[float, float | None]]] = {name: [] for name, _ in OPERATIONS}
        hot: list[tuple[int, int]] = []  # (HOT updates, updates) of productos in each apply and undo
        batch_ids: list[int] = []

        def baseline(session) -> None:  # noqa: ANN001
            session.execute(text("UPDATE productos SET precio = precio * 1.2, actualizado_en = :now"),
                            {"now": datetime.now(UTC)})
            raise _Rollback

        def apply(session) -> None:  # noqa: ANN001
            before = _hot_updates(session)
            batch_ids.append(bulk.apply_bulk(session, CTX, change=CHANGE).id)
            hot.append(tuple(n - b for n, b in zip(_hot_updates(session), before)))

        def undo(session) -> None:  # noqa: ANN001
            before = _hot_updates(session)
            batches.undo_batch(session, CTX, batch_id=batch_ids[-1])
            hot.append(tuple(n - b for n, b in zip(_hot_updates(session), before)))
        for _ in range(runs):
            samples["baseline"].append(measure(db.write, baseline))
            samples["preview"].append(measure(db.read, lambda session: bulk.preview_bulk(session, change=CHANGE)))
            samples["apply"].append(measure(db.write, apply))
            samples["undo"].append(measure(db.write, undo))
            if prices(db) != original:
                raise SystemExit(f"{label}: undo did not restore every price exactly")
        if label == "PostgreSQL":
            print(f"productos rows updated HOT (no index touched) in each apply/undo: "
                  f"{', '.join(f'{h}/{u}' for h, u in hot)}; {_oldest_writer(db)}", file=sys.stderr)
        base = statistics.median(wall for wall, _ in samples["baseline"])
        out = []
        for name, text_ in OPERATIONS:
            wall = statistics.median(w for w, _ in samples[name])
            cpus = [c for _, c in samples[name] if c is not None]
            out.append((label, text_, wall, statistics.median(cpus) if cpus else None, f"{wall / base:.1f}"))
        return out
    finally:
        db.dispose()


def _hot_updates(session) -> tuple[int, int]:  # noqa: ANN001
    """(HOT updates, updates) of productos this backend has not reported yet (this transaction's and maybe an
    earlier one's: take differences); (0, 0) on SQLite."""
    if session.get_bind().dialect.name != "postgresql":
        return 0, 0
    return tuple(session.execute(text("SELECT pg_stat_get_xact_tuples_hot_updated('productos'::regclass), "
                                      "pg_stat_get_xact_tuples_updated('productos'::regclass)")).one())


def _oldest_writer(db: Database) -> str:
    """While any transaction of the cluster older than a change runs, no page can prune that change's old rows."""
    with db.read() as session:
        age = session.scalar(text("SELECT extract(epoch FROM max(now() - xact_start)) FROM pg_stat_activity "
                                  "WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()"))
    return f"oldest other writing transaction in the cluster: {age or 0:.0f} s now"


class _Rollback(Exception):
    pass


def fresh_postgres(admin_url: str) -> tuple[str, callable]:
    name = f"mm_bench_prices_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), drop


def render(rows: list[tuple], products: int, runs: int) -> str:
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    lines = [f"{products:,} products, median of {runs} runs; {platform.python_implementation()} "
             f"{platform.python_version()}, one process, times include the commit; {os.cpu_count()} cores, "
             f"load average {load} when it ended.", "",
             "| backend | operation | ms | CPU ms | × baseline |", "|---|---|---:|---:|---:|"]
    lines += [f"| {b} | {op} | {sec * 1000:.0f} | {'—' if cpu is None else f'{cpu * 1000:.0f}'} | {ratio} |"
              for b, op, sec, cpu, ratio in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--sqlite", action="store_true", help="also measure the embedded SQLite")
    parser.add_argument("--write", type=Path, help="replace the bench-prices section of this Markdown file")
    args = parser.parse_args()
    admin_url = args.postgres.replace("postgresql://", "postgresql+psycopg://", 1)
    url, drop = fresh_postgres(admin_url)
    try:
        rows = run_backend("PostgreSQL", url, args.products, args.runs)
    finally:
        drop()
    if args.sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            rows += run_backend("SQLite", f"sqlite:///{tmp}/bench.db", args.products, args.runs)
    table = render(rows, args.products, args.runs)
    print(table)
    if args.write:
        doc = args.write.read_text()
        block = f"<!-- bench-prices:start -->\n{table}\n<!-- bench-prices:end -->"
        if "<!-- bench-prices:start -->" not in doc:
            sys.exit(f"{args.write}: no <!-- bench-prices:start --> section to replace")
        args.write.write_text(re.sub(r"<!-- bench-prices:start -->.*?<!-- bench-prices:end -->", block, doc,
                                     flags=re.S))


if __name__ == "__main__":
    main()
