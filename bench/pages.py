"""Every page of the dashboard on a big store: P50/P95 at 1 connection and under load, and the server's CPU
per page, one app process served as in production (`minimarket serve`, Redis for the kept pages).

    .venv/bin/python bench/pages.py [--database URL] [--products 100000] [--days 30]
                                    [--connections 1 16 32] [--seconds 2] [--only /inventario …]
    .venv/bin/python bench/pages.py --in-process [--requests 40]   # render time through the test client

Without --database it builds a demo store in a temporary SQLite file (6,000 demo products with their
history, the catalogue filled up to --products with products without stock) and deletes it at the end;
with --database (a store already built, PostgreSQL or SQLite) it measures the store as it is, adding one
admin user and its session. Each row is wrk over its paths (a random one per request, bench/random_paths.lua)
for --seconds after a 1 s warm-up, at each --connections; «CPU» is the server's CPU per answered request
(from /proc). Rows named «drawn anew» ask for paths nobody asked for before (10,000 SKUs, or a list with a
query parameter that changes nothing but the page's key), so the kept pages (web/kept_pages.py) cannot
answer them: that is what a page costs to draw. /precios/atrasados is drawn on every request; the rest
(web/kept_pages.py: KEPT) are drawn once a session and page, and again after a write that changes them.

Bounded: about (1 + --seconds) × len(--connections) seconds a row (≈ 3 min with the defaults).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from harness import BIN, Servers, wrk  # noqa: E402

from minimarket.accounts.audit import Context  # noqa: E402
from minimarket.accounts.sessions import SESSION_COOKIE, start_session  # noqa: E402
from minimarket.accounts.users import create_user  # noqa: E402
from minimarket.db import Database  # noqa: E402
from minimarket.migrations.runner import upgrade  # noqa: E402

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
DEMO_MAX = 6000  # the demo's catalogue has about this many distinct products
ANEW = 10_000  # distinct paths of a «drawn anew» row: far more than a run of a few seconds asks for


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


def build_store(url: str, products: int, days: int) -> None:
    from minimarket.demo.generator import generate_demo

    db = Database(url)
    try:
        start = time.perf_counter()
        summary = generate_demo(db, products=min(products, DEMO_MAX), days=days, seed=7, progress=None)
        extra = add_catalog_only_products(db, products - summary.products)
        print(f"store: {summary.products + extra} products ({extra} without stock), {summary.movements} movements "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    finally:
        db.dispose()


def store_facts(url: str) -> dict:
    """A signed-in admin's session and the names and ids the pages' paths need."""
    from sqlalchemy import text

    db = Database(url)
    try:
        with db.write() as session:
            user = create_user(session, Context(actor="bench"), username=f"bench-{int(time.time() * 1000)}",
                               role="admin", password="bench-password-123")
            token = start_session(session, user=user, ip=None)
        with db.read() as session:
            one = lambda sql: session.execute(text(sql)).scalar()  # noqa: E731
            facts = {
                "session": token,
                "skus": list(session.execute(text("SELECT sku FROM productos WHERE activo ORDER BY id")).scalars()),
                "category": one("SELECT nombre FROM categorias ORDER BY id LIMIT 1"),
                "supplier": one("SELECT nombre FROM proveedores ORDER BY id LIMIT 1"),
                "supplier_id": one("SELECT id FROM proveedores ORDER BY id LIMIT 1"),
                "invoice_id": one("SELECT id FROM facturas ORDER BY id DESC LIMIT 1"),
                "order_id": one("SELECT id FROM pedidos ORDER BY id DESC LIMIT 1"),
                "products": one("SELECT count(*) FROM productos"),
            }
    finally:
        db.dispose()
    return facts


def page_rows(facts: dict) -> list[tuple[str, list[str]]]:
    """(label, paths) for every page of web/ (nav.PAGES and the pages under them); rows whose store has
    nothing to show (no supplier, invoice or order) are left out."""
    from urllib.parse import quote

    skus = list(facts["skus"])
    random.Random(12).shuffle(skus)
    anew = lambda path: [f"{path}{'&' if '?' in path else '?'}v={i}" for i in range(ANEW)]  # noqa: E731
    rows: list[tuple[str, list[str] | None]] = [
        ("/ (Inicio)", ["/"]),
        ("/inventario", ["/inventario"]),
        ("/inventario (drawn anew)", anew("/inventario")),
        ("/inventario?q=yerba (drawn anew)", anew("/inventario?q=yerba")),
        ("/inventario?estado=bajo (drawn anew)", anew("/inventario?estado=bajo")),
        ("/inventario?estado=sin (drawn anew)", anew("/inventario?estado=sin")),
        ("/inventario?categoria=… (drawn anew)",
         anew(f"/inventario?categoria={quote(facts['category'])}") if facts["category"] else None),
        ("/inventario?proveedor=… (drawn anew)",
         anew(f"/inventario?proveedor={quote(facts['supplier'])}") if facts["supplier"] else None),
        ("/inventario?orden=nombre&pagina=20 (drawn anew)", anew("/inventario?orden=nombre&pagina=20")),
        ("/inventario/{sku} (kept: 20 SKUs)", [f"/inventario/{quote(s, safe='')}" for s in skus[:20]]),
        (f"/inventario/{{sku}} (drawn anew: {ANEW:,} SKUs)",
         [f"/inventario/{quote(s, safe='')}" for s in skus[20:20 + ANEW]]),
        ("/movimientos", ["/movimientos"]),
        ("/movimientos (drawn anew)", anew("/movimientos")),
        ("/movimientos?tipo=venta (drawn anew)", anew("/movimientos?tipo=venta")),
        ("/movimientos/nuevo", ["/movimientos/nuevo"]),
        ("/movimientos/nuevo (drawn anew)", anew("/movimientos/nuevo")),
        ("/recuento", ["/recuento"]),
        ("/alertas", ["/alertas"]),
        ("/proveedores", ["/proveedores"]),
        ("/proveedores/{id}", [f"/proveedores/{facts['supplier_id']}"] if facts["supplier_id"] else None),
        ("/proveedores/{id} (drawn anew)", anew(f"/proveedores/{facts['supplier_id']}") if facts["supplier_id"] else None),
        ("/facturas", ["/facturas"]),
        ("/facturas/{id}", [f"/facturas/{facts['invoice_id']}"] if facts["invoice_id"] else None),
        ("/facturas/{id} (drawn anew)", anew(f"/facturas/{facts['invoice_id']}") if facts["invoice_id"] else None),
        ("/facturas/nueva", ["/facturas/nueva"]),
        ("/precios", ["/precios"]),
        ("/precios/atrasados", ["/precios/atrasados"]),
        ("/precios/atrasados?pagina=50", ["/precios/atrasados?pagina=50"]),
        ("/precios/atrasados?categoria=…",
         [f"/precios/atrasados?categoria={quote(facts['category'])}"] if facts["category"] else None),
        ("/pedidos", ["/pedidos"]),
        ("/pedidos/{id}", [f"/pedidos/{facts['order_id']}"] if facts["order_id"] else None),
        ("/pedidos/nuevo", ["/pedidos/nuevo"]),
        ("/pronostico", ["/pronostico"]),
        ("/reportes", ["/reportes"]),
        ("/configuracion", ["/configuracion"]),
    ]
    return [(label, paths) for label, paths in rows if paths]


def served(url: str, facts: dict, opts: argparse.Namespace, workdir: Path) -> None:
    rows = [(label, paths) for label, paths in page_rows(facts)
            if not opts.only or label.split(" ")[0] in opts.only]
    run = {"seconds": opts.seconds, "workdir": workdir}
    cookie = f"Cookie: {SESSION_COOKIE}={facts['session']}"
    servers = Servers(workdir)
    env = {"DATABASE_URL": url, "REDIS_URL": REDIS_URL, "LOG_LEVEL": "WARNING",
           "RATE_LIMIT_PER_KEY": "100000000", "RATE_LIMIT_PER_IP": "100000000"}  # raised, still counting
    import httpx

    results = []
    try:
        base = servers.start([str(BIN / "minimarket"), "serve", "--workers", "1"], env, "/health/live")
        pid = servers.running[-1].pid
        for label, paths in rows:
            first = httpx.get(base + paths[0].lstrip("/"), headers={"Cookie": cookie.split(": ", 1)[1]}, timeout=120,
                              follow_redirects=False)
            if first.status_code != 200:
                raise SystemExit(f"{paths[0]}: {first.status_code} (se esperaba 200)")
            cells = []
            for connections in opts.connections:
                result = wrk(f"{label}, {connections} conn.", base, paths, {**run, "connections": connections},
                             header=cookie, cpu_pid=pid)
                cells.append(result)
            results.append((label, cells))
    finally:
        servers.stop_all()
    head = " | ".join(f"{c} conn. P50 / P95 ms" for c in opts.connections)
    print(f"\n{facts['products']:,} products; {opts.seconds} s a cell after 1 s of warm-up; one process with Redis; "
          f"load average {os.getloadavg()[0]:.1f} at the end\n")
    print(f"| page | {head} | CPU ms a request (at {', '.join(map(str, opts.connections))}) | req/s at "
          f"{opts.connections[-1]} | non-2xx |")
    print("|---|" + "---:|" * (len(opts.connections) + 3))
    for label, cells in results:
        timing = " | ".join(f"{c.p50:.1f} / {c.p95:.1f}" for c in cells)
        cpu = ", ".join("—" if c.cpu_ms is None else f"{c.cpu_ms:.2f}" for c in cells)
        print(f"| `{label}` | {timing} | {cpu} | {cells[-1].rps:.0f} | {sum(c.other for c in cells)} |")


def in_process(url: str, facts: dict, opts: argparse.Namespace) -> None:
    """Render time without a server: the test client, one request at a time, against a bare FastAPI page."""
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse
    from fastapi.testclient import TestClient

    from minimarket.apps import create_app
    from minimarket.config import Settings

    def timings(client: TestClient, paths: list[str]) -> tuple[list[float], float]:
        client.get(paths[0])  # warm-up
        out, cpu = [], time.process_time()
        for i in range(opts.requests):
            start = time.perf_counter()
            response = client.get(paths[i % len(paths)])
            out.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, (paths[i % len(paths)], response.status_code)
        return sorted(out), (time.process_time() - cpu) * 1000 / opts.requests

    p = lambda values, q: values[min(len(values) - 1, int(round(q * (len(values) - 1))))]  # noqa: E731
    bare = FastAPI()
    bare.get("/")(lambda: HTMLResponse("<!doctype html><p>hola</p>"))
    with TestClient(bare) as client:
        base, _ = timings(client, ["/"])
    print(f"{'page':52} {'P50 ms':>8} {'P95 ms':>8} {'CPU ms':>8} {'× base':>8}")
    print(f"{'bare FastAPI HTML':52} {p(base, .5):8.2f} {p(base, .95):8.2f} {'':>8} {1:8.1f}")
    app = create_app("all", Settings(_env_file=None, database_url=url, rate_limit_enabled=False))
    with TestClient(app) as client:
        client.cookies.set(SESSION_COOKIE, facts["session"])
        for label, paths in page_rows(facts):
            if opts.only and label.split(" ")[0] not in opts.only:
                continue
            values, cpu = timings(client, paths)
            print(f"{label:52} {p(values, .5):8.2f} {p(values, .95):8.2f} {cpu:8.2f} "
                  f"{p(values, .5) / p(base, .5):8.1f}", flush=True)
    app.state.db.dispose()


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    args.add_argument("--database", default=None, help="a store already built (kept as it is)")
    args.add_argument("--products", type=int, default=100_000)
    args.add_argument("--days", type=int, default=30)
    args.add_argument("--connections", type=int, nargs="+", default=[1, 16, 32])
    args.add_argument("--seconds", type=int, default=2)
    args.add_argument("--only", nargs="+", default=None, help="only the rows of these paths (e.g. /inventario/{sku})")
    args.add_argument("--in-process", action="store_true", help="the test client instead of a served process")
    args.add_argument("--requests", type=int, default=40, help="with --in-process: requests a page")
    opts = args.parse_args()
    import structlog

    # One access line per request would drown the table.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    workdir = Path(tempfile.mkdtemp(prefix="mm-bench-pages-"))
    try:
        url = opts.database or f"sqlite:///{workdir}/bench.db"
        if opts.database is None:
            upgrade(url)
            build_store(url, opts.products, opts.days)
        facts = store_facts(url)
        if opts.in_process:
            in_process(url, facts, opts)
        else:
            served(url, facts, opts, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
