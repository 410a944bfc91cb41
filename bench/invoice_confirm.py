"""Invoice confirmation benchmark: a 100-line supplier invoice confirmed, beside the same 100 entries alone.

    .venv/bin/python bench/invoice_confirm.py [--lines 100] [--runs 3] [--postgres URL] [--sqlite]

Each run loads a fresh draft (not timed) and confirms it through the service the API calls
(`invoices.receipt.confirm_invoice`: 100 `entrada` movements through the stock service, each
product's new cost, history and audit, committed). The baseline is the stock part alone: the same
100 entries as one batch of `stock.service.register_movements`, committed — what any receipt
must cost. Prints milliseconds (median) and the ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from minimarket.accounts.audit import Context
from minimarket.catalog.models import Product
from minimarket.config import Settings
from minimarket.db import Database
from minimarket.invoices import receipt, service
from minimarket.invoices.schemas import InvoiceIn
from minimarket.migrations.runner import upgrade
from minimarket.stock import service as stock_service
from minimarket.stock.schemas import BatchIn
from minimarket.suppliers.models import Supplier
from minimarket.types import utcnow

CTX = Context(actor="bench")
CUIT = "30712345671"


def load_store(db: Database, lines: int) -> None:
    with db.write() as session:
        session.add(Supplier(name="Distribuidora Bench", cuit=CUIT, active=True, created_at=utcnow()))
        session.execute(insert(Product.__table__), [
            {"sku": f"F-{i:04d}", "nombre": f"Producto {i}", "unidad": "u", "costo": Decimal("100.00"),
             "precio": Decimal("170.00"), "iva": Decimal("21"), "stock_minimo": Decimal(0), "activo": True}
            for i in range(lines)])


def draft(db: Database, lines: int, number: int) -> int:
    cost = Decimal("100.00") + number
    net = cost * 3 * lines
    body = {"supplier": CUIT, "type": "A", "point_of_sale": 1, "number": number, "date": date.today(),
            "net": {"21": net}, "vat": {"21": (net * Decimal("0.21")).quantize(Decimal("0.01"))},
            "total": net + (net * Decimal("0.21")).quantize(Decimal("0.01")),
            "lines": [{"sku": f"F-{i:04d}", "quantity": Decimal(3), "unit_cost": cost} for i in range(lines)]}
    with db.write() as session:
        return service.create_invoice(session, CTX, data=InvoiceIn.model_validate(body)).id


def run_backend(label: str, url: str, lines: int, runs: int) -> list[tuple[str, str, float, str]]:
    upgrade(url)
    db, settings = Database(url), Settings(_env_file=None, database_url=url, minimarket_env="development")
    try:
        load_store(db, lines)
        samples: dict[str, list[float]] = {"baseline": [], "confirm": []}
        entries = BatchIn.model_validate({"lines": [
            {"sku": f"F-{i:04d}", "type": "entrada", "quantity": "3", "unit_cost": "100.00"} for i in range(lines)]})
        for run in range(runs + 1):  # the first of each is a warm-up
            start = time.perf_counter()
            with db.write() as session:
                stock_service.register_movements(session, CTX, batch=entries, settings=settings)
            baseline = time.perf_counter() - start
            invoice_id = draft(db, lines, run + 1)
            start = time.perf_counter()
            with db.write() as session:
                receipt.confirm_invoice(session, CTX, invoice_id=invoice_id, location=None, settings=settings)
            if run:
                samples["baseline"].append(baseline)
                samples["confirm"].append(time.perf_counter() - start)
        base = statistics.median(samples["baseline"])
        confirm = statistics.median(samples["confirm"])
        return [(label, f"{lines} entries as one stock batch (baseline)", base, "1.0"),
                (label, f"confirm a {lines}-line invoice (entries + costs + history + audit)", confirm,
                 f"{confirm / base:.1f}")]
    finally:
        db.dispose()


def fresh_postgres(admin_url: str):  # noqa: ANN201
    name = f"mm_bench_invoice_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--sqlite", action="store_true", help="also measure the embedded SQLite")
    args = parser.parse_args()
    url, drop = fresh_postgres(args.postgres.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        rows = run_backend("PostgreSQL", url, args.lines, args.runs)
    finally:
        drop()
    if args.sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            rows += run_backend("SQLite", f"sqlite:///{tmp}/bench.db", args.lines, args.runs)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"median of {args.runs} runs, times include the commit; load average {load} when it ended.\n")
    print("| backend | operation | ms | × baseline |\n|---|---|---:|---:|")
    for backend, what, seconds, ratio in rows:
        print(f"| {backend} | {what} | {seconds * 1000:.0f} | {ratio} |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
