"""Purchase order receipt benchmark: a sent 100-line order received in full at new costs, beside the same
100 entries alone.

    .venv/bin/python bench/purchase_receipt.py [--lines 100] [--runs 3] [--postgres URL] [--sqlite]

Each run drafts and sends a fresh order (not timed) and receives it through the service the API calls
(`purchasing.receiving.receive_order`: the order locked, 100 `entrada` movements through the stock
service, every product's new cost, history and audit in one pricing call, the received quantities
and state, committed). The baseline is the stock part alone: the same 100 entries as one batch of
`stock.service.register_movements`, committed. Prints milliseconds (median) and the ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal

from sqlalchemy import insert

from minimarket.accounts.audit import Context
from minimarket.catalog.models import Product
from minimarket.config import Settings
from minimarket.db import Database
from minimarket.migrations.runner import upgrade
from minimarket.purchasing import orders, receiving
from minimarket.purchasing.order_schemas import OrderIn, ReceiveIn
from minimarket.stock import service as stock_service
from minimarket.stock.schemas import BatchIn
from minimarket.suppliers.models import Supplier
from minimarket.types import utcnow

sys.path.insert(0, os.path.dirname(__file__))
from invoice_confirm import fresh_postgres  # noqa: E402  (the same throwaway database)

CTX = Context(actor="bench")


def load_store(db: Database, lines: int) -> None:
    with db.write() as session:
        session.add(Supplier(name="Distribuidora Bench", active=True, created_at=utcnow()))
        session.execute(insert(Product.__table__), [
            {"sku": f"P-{i:04d}", "nombre": f"Producto {i}", "unidad": "u", "costo": Decimal("100.00"),
             "precio": Decimal("170.00"), "iva": Decimal("21"), "stock_minimo": Decimal(0), "activo": True}
            for i in range(lines)])


def sent_order(db: Database, lines: int, run: int) -> int:
    """An order of 12 units per product at a cost that differs from the current one (every line moves a cost)."""
    body = OrderIn.model_validate({"supplier": "Distribuidora Bench", "lines": [
        {"sku": f"P-{i:04d}", "quantity": "12", "unit_cost": str(Decimal("100.00") + run + 1)} for i in range(lines)]})
    with db.write() as session:
        order = orders.create_order(session, CTX, data=body)
        orders.send_order(session, CTX, order_id=order.id)
        return order.id


def run_backend(label: str, url: str, lines: int, runs: int) -> list[tuple[str, str, float, str]]:
    upgrade(url)
    db, settings = Database(url), Settings(_env_file=None, database_url=url, minimarket_env="development")
    try:
        load_store(db, lines)
        samples: dict[str, list[float]] = {"baseline": [], "receive": []}
        entries = BatchIn.model_validate({"lines": [
            {"sku": f"P-{i:04d}", "type": "entrada", "quantity": "12", "unit_cost": "100.00"} for i in range(lines)]})
        for run in range(runs + 1):  # the first of each is a warm-up
            start = time.perf_counter()
            with db.write() as session:
                stock_service.register_movements(session, CTX, batch=entries, settings=settings)
            baseline = time.perf_counter() - start
            order_id = sent_order(db, lines, run)
            start = time.perf_counter()
            with db.write() as session:
                receiving.receive_order(session, CTX, order_id=order_id, data=ReceiveIn(), settings=settings)
            if run:
                samples["baseline"].append(baseline)
                samples["receive"].append(time.perf_counter() - start)
        base, receive = statistics.median(samples["baseline"]), statistics.median(samples["receive"])
        return [(label, f"{lines} entries as one stock batch (baseline)", base, "1.0"),
                (label, f"receive a {lines}-line order (entries + costs + history + audit + order)", receive,
                 f"{receive / base:.1f}")]
    finally:
        db.dispose()


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
