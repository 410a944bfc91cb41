"""Bulk price change benchmark: 20,000+ products in a fresh database, apply a batch, undo it, print times.

    .venv/bin/python bench/prices_bulk.py [--products 20000] [--runs 3] [--postgres URL] [--sqlite]
                                          [--write docs/PERFORMANCE.md]

Each run previews, applies (+20 % on every product, one batch, one transaction, committed) and
undoes it through the same service functions the API calls. The baseline is the bare set-based
statement `UPDATE productos SET precio = precio * 1.2, actualizado_en = now` on the same rows in
the same database (the change marker is indexed, so neither can be a HOT update): the least any
bulk change can cost. Prices are checked back to the cent after every undo.
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


def timed(fn) -> float:  # noqa: ANN001
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_backend(label: str, url: str, products: int, runs: int) -> list[tuple[str, str, float, str]]:
    upgrade(url)
    db = Database(url)
    try:
        load_products(db, products)
        original = prices(db)
        samples: dict[str, list[float]] = {"baseline": [], "preview": [], "apply": [], "undo": []}
        for _ in range(runs):
            def baseline() -> None:
                with db.write() as session:
                    session.execute(text("UPDATE productos SET precio = precio * 1.2, actualizado_en = :now"),
                                    {"now": datetime.now(UTC)})
                    raise _Rollback
            samples["baseline"].append(_time_rollback(baseline))
            with db.read() as session:
                samples["preview"].append(timed(lambda: bulk.preview_bulk(session, change=CHANGE)))
            batch_ids = []

            def apply() -> None:
                with db.write() as session:
                    batch_ids.append(bulk.apply_bulk(session, CTX, change=CHANGE).id)
            samples["apply"].append(timed(apply))

            def undo() -> None:
                with db.write() as session:
                    batches.undo_batch(session, CTX, batch_id=batch_ids[-1])
            samples["undo"].append(timed(undo))
            if prices(db) != original:
                raise SystemExit(f"{label}: undo did not restore every price exactly")
        base = statistics.median(samples["baseline"])
        out = []
        for name, text_ in (("baseline", "bare `UPDATE productos SET precio = precio * 1.2, actualizado_en = …` (baseline)"),
                            ("preview", "preview (count + first 500 rows)"),
                            ("apply", "apply +20 % as one batch (UPDATE … FROM + history INSERT … SELECT, commit)"),
                            ("undo", "undo the batch (check + restore + history, commit)")):
            median = statistics.median(samples[name])
            out.append((label, text_, median, f"{median / base:.1f}"))
        return out
    finally:
        db.dispose()


class _Rollback(Exception):
    pass


def _time_rollback(fn) -> float:  # noqa: ANN001
    start = time.perf_counter()
    try:
        fn()
    except _Rollback:
        pass
    return time.perf_counter() - start


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


def render(rows: list[tuple[str, str, float, str]], products: int, runs: int) -> str:
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    lines = [f"{products:,} products, median of {runs} runs; {platform.python_implementation()} "
             f"{platform.python_version()}, one process, times include the commit; {os.cpu_count()} cores, "
             f"load average {load} when it ended.", "",
             "| backend | operation | ms | × baseline |", "|---|---|---:|---:|"]
    lines += [f"| {b} | {op} | {sec * 1000:.0f} | {ratio} |" for b, op, sec, ratio in rows]
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
