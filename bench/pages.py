"""Render time of the dashboard's pages on a big store, against a bare FastAPI HTML page, in one process.

    .venv/bin/python bench/pages.py [--products 100000] [--days 30] [--requests 40] [--database URL]
                                    [--pages / /inventario …]

Builds a demo store (SQLite in a temporary folder unless --database names an empty one), signs
in an admin, and requests each page through the full app (middleware, session, templates) with
Starlette's test client; prints P50/P95 per page and the ratio to the baseline's P50. The
first request of each page is a warm-up (it also fills the KPI cache, as the first visitor does).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from minimarket.accounts.audit import Context  # noqa: E402
from minimarket.accounts.sessions import SESSION_COOKIE, start_session  # noqa: E402
from minimarket.accounts.users import create_user  # noqa: E402
from minimarket.apps import create_app  # noqa: E402
from minimarket.config import Settings  # noqa: E402
from minimarket.db import Database  # noqa: E402
from minimarket.migrations.runner import upgrade  # noqa: E402
from minimarket.demo.generator import generate_demo  # noqa: E402

PAGES = ["/", "/inventario", "/inventario?q=yerba", "/inventario?estado=bajo", "/inventario?orden=nombre&pagina=20",
         "/inventario/{sku}", "/movimientos", "/movimientos?tipo=venta", "/movimientos/nuevo", "/recuento",
         "/reportes", "/configuracion", "/precios/atrasados"]


DEMO_MAX = 6000  # the demo's catalogue has about this many distinct products


def add_catalog_only_products(db: Database, count: int) -> int:
    """Fill the catalogue up to the target size with products that have no stock (no ledger rows needed)."""
    if count <= 0:
        return 0
    from sqlalchemy import insert

    from minimarket.catalog.models import Product
    from minimarket.types import utcnow

    now = utcnow()
    rows = [{"sku": f"BENCH-{i:06d}", "name": f"Producto de prueba {i}", "unit": "u", "cost": 100 + i % 900,
             "price": 200 + i % 1500, "vat_rate": 21, "min_stock": i % 5, "active": True, "created_at": now,
             "updated_at": now} for i in range(count)]
    with db.write() as session:
        for chunk in range(0, count, 5000):
            session.execute(insert(Product), rows[chunk:chunk + 5000])
    return count


def timings(client: TestClient, path: str, n: int) -> list[float]:
    client.get(path)  # warm-up
    out = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.get(path)
        out.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return sorted(out)


def p(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    args = argparse.ArgumentParser()
    args.add_argument("--products", type=int, default=100_000)
    args.add_argument("--days", type=int, default=30)
    args.add_argument("--requests", type=int, default=40)
    args.add_argument("--database", default=None)
    args.add_argument("--pages", nargs="+", default=PAGES, help="only these paths ({sku}: the last product)")
    opts = args.parse_args()
    url = opts.database or f"sqlite:///{tempfile.mkdtemp(prefix='mm-bench-')}/bench.db"
    upgrade(url)
    db = Database(url)
    import logging

    import structlog

    # One access line per request would drown the table.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    start = time.perf_counter()
    from sqlalchemy import text

    with db.read() as session:
        existing = session.execute(text("SELECT count(*) FROM productos")).scalar_one()
    if existing:  # --database of a store built before: measured as it is
        print(f"store: {existing} products (existing database)")
    else:
        summary = generate_demo(db, products=min(opts.products, DEMO_MAX), days=opts.days, seed=7, progress=None)
        extra = add_catalog_only_products(db, opts.products - summary.products)
        print(f"store: {summary.products + extra} products ({extra} without stock), {summary.movements} movements "
              f"({time.perf_counter() - start:.0f} s)")
    with db.write() as session:
        name = f"bench-{int(time.time())}"
        user = create_user(session, Context(actor="bench"), username=name, role="admin", password="bench-password")
        token = start_session(session, user=user, ip=None)
    with db.read() as session:
        from sqlalchemy import text

        sku = session.execute(text("SELECT sku FROM productos ORDER BY id DESC LIMIT 1")).scalar_one()
    db.dispose()

    bare = FastAPI()
    bare.get("/")(lambda: HTMLResponse("<!doctype html><p>hola</p>"))
    with TestClient(bare) as client:
        base = timings(client, "/", opts.requests)
    print(f"{'page':42} {'P50 ms':>8} {'P95 ms':>8} {'× base':>8}")
    print(f"{'bare FastAPI HTML':42} {p(base, .5):8.2f} {p(base, .95):8.2f} {1:8.1f}")
    app = create_app("all", Settings(_env_file=None, database_url=url, rate_limit_enabled=False))
    with TestClient(app) as client:
        client.cookies.set(SESSION_COOKIE, token)
        for path in opts.pages:
            path = path.format(sku=sku)
            values = timings(client, path, opts.requests)
            print(f"{path:42} {p(values, .5):8.2f} {p(values, .95):8.2f} {p(values, .5) / p(base, .5):8.1f}")
    app.state.db.dispose()


if __name__ == "__main__":
    main()
