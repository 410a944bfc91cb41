"""The request path against its baselines, in one run: bare Starlette hello, `pgbench -N`, Mini Market.

    .venv/bin/python bench/run.py [--seconds 5] [--connections 32] [--products 100000] [--days 30]
                                  [--store postgresql://…/a_demo_store] [--write docs/PERFORMANCE.md]

One command: creates a PostgreSQL database, loads the demo store (`minimarket demo`, 100,000
products and 30 days of history by default), and on loopback with wrk measures the bare baseline
(Starlette JSON hello, the framework under FastAPI, same uvicorn) and `pgbench -N` (16 clients,
same server) beside every workload of issue 12, with 1 app process and 2 (`serve --workers 2`),
both with Redis (the read caches keep nothing without it). Prints the table (req/s, ratio, P50/P95/P99,
non-2xx) with the machine's load average, checks `minimarket verify` and that no 2xx movement
is missing from the ledger, writes the table into docs/PERFORMANCE.md, and drops its databases,
processes and temporary folder. Guarantees stay on: authentication, roles, idempotency keys on
every POST, audit rows, metrics, and the rate limiter (raised, not removed).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (BIN, ROOT, Result, Servers, count_rows, create_database, drop_database,  # noqa: E402
                     pgbench_tps, prepare_store, wrk)

PG_ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
MOVEMENT = '{"type": "entrada", "quantity": 1, "reason": "bench"}'
TERMS = ["yerba", "galletitas", "coca", "aceite", "ALC-00", "lavandina", "queso", "fideos"]


def prime(base: str, paths: list[str], header: str, workers: int) -> None:
    """Read each path just before it is measured, as a store's busy hour reads its products: at least twice
    per process (a list page is kept at its second read). One kept-alive connection with 1 process; with
    more, 6 per process, each reading every path once (each connection lands on one of the processes).
    A kept answer lives 60 s (platform/read_cache), so each row reads its own paths right before its run."""
    name, value = header.split(": ", 1)
    clients = [httpx.Client(headers={name: value}, timeout=60) for _ in range(1 if workers == 1 else 6 * workers)]
    try:
        for _ in range(2 if workers == 1 else 1):
            for client in clients:
                for path in paths:
                    client.get(base + path.lstrip("/"))
    finally:
        for client in clients:
            client.close()


def app_workloads(base: str, store: dict, workers: int, run: dict) -> list[Result]:
    """Every API workload of the issue against one running app."""
    key = f"X-API-Key: {store['key']}"
    skus, hot = store["skus"], store["skus"][0]

    def kept(label: str, paths: list[str]) -> Result:
        prime(base, paths, key, workers)
        return wrk(label, base, paths, run, header=key, baseline="hello")

    rows = [
        wrk("GET /health/live (no dependency: the floor of middleware and routing)", base, ["/health/live"], run,
            baseline="hello"),
        wrk("GET /health", base, ["/health"], run, baseline="hello"),
        kept("GET /api/inventory/{sku} (1,000 SKUs at random, each read just before: kept answers)",
             [f"/api/inventory/{s}" for s in skus[:1000]]),
        wrk(f"GET /api/inventory/{{sku}} ({len(skus):,} SKUs at random)", base,
            [f"/api/inventory/{s}" for s in skus], run, header=key, baseline="hello"),
        kept("GET /api/inventory?limit=50&q=… (name, SKU, barcode; each read just before)",
             [f"/api/inventory?limit=50&q={t}" for t in TERMS + store["barcodes"][:8]]),
        kept("GET /api/inventory?limit=50&low_stock=true (read just before)", ["/api/inventory?limit=50&low_stock=true"]),
    ]
    for label, paths in [(f"POST /api/inventory/{{sku}}/movements (random of {len(skus):,})",
                          [f"POST /api/inventory/{s}/movements" for s in skus]),
                         ("POST movements on one hot product", [f"POST /api/inventory/{hot}/movements"])]:
        before = count_rows(store["url"], "movimientos_stock")
        moves = wrk(label, base, paths, run, header=key, body=MOVEMENT, baseline="pgbench")
        time.sleep(1.0)  # requests still in flight when wrk stopped
        written = count_rows(store["url"], "movimientos_stock") - before
        moves.note = (f"{moves.answered} answered 2xx (with the warm-up), {written} rows in the ledger: "
                      f"{max(0, moves.answered - written)} lost")
        rows.append(moves)
    if workers == 1:
        cookie = f"Cookie: mm_sesion={store['session']}"
        for label, paths in [("page / (Inicio: KPIs, charts)", ["/"]), ("page /inventario", ["/inventario"]),
                             ("page /inventario?q=yerba", ["/inventario?q=yerba"]),
                             ("page /inventario?estado=bajo", ["/inventario?estado=bajo"]),
                             ("page /inventario/{sku} (1,000 SKUs, each read just before: kept pages)",
                              [f"/inventario/{s}" for s in skus[:1000]]),
                             ("page /inventario/{sku} (10,000 other SKUs at random: mostly drawn anew)",
                              [f"/inventario/{s}" for s in skus[1000:11000]]),
                             ("page /movimientos", ["/movimientos"])]:
            if "read just before" in label:
                prime(base, paths, cookie, workers)  # a page is kept per session: the bench's one session
            started = time.perf_counter()  # the first visitor of the process, as in the store
            first = httpx.get(base + paths[0].lstrip("/"), headers={"Cookie": cookie.split(": ", 1)[1]}, timeout=300)
            seconds = time.perf_counter() - started
            # One visitor at a time (the render time), a store's few (4) and the bench's connections.
            for connections in sorted({1, 4, run["connections"]}):
                row = wrk(f"{label}, {connections} conn.", base, paths, {**run, "connections": connections},
                          header=cookie, baseline="hello")
                if connections == 1:
                    row.note = f"first visit alone: {first.status_code} in {seconds * 1000:.0f} ms"
                rows.append(row)
    for row in rows:
        row.workers = workers
    return rows


def measure_app(store: dict, workers: int, run: dict, servers: Servers) -> list[Result]:
    env = {"DATABASE_URL": store["url"], "LOG_LEVEL": "WARNING",
           # raised, not removed: the limiter still counts every request (in Redis with 2 processes)
           "RATE_LIMIT_PER_KEY": "100000000", "RATE_LIMIT_PER_IP": "100000000"}
    env["REDIS_URL"] = REDIS_URL  # the read caches keep nothing without Redis (apps._add_read_caches)
    base = servers.start([str(BIN / "minimarket"), "serve", "--workers", str(workers)], env, "/health/live")
    try:
        return app_workloads(base, store, workers, run)
    finally:
        servers.stop_all()


def baseline(workers: int, run: dict, servers: Servers) -> Result:
    base = servers.start([str(BIN / "uvicorn"), "baseline_app:app", "--workers", str(workers), "--log-level",
                          "warning"], {"PYTHONPATH": str(ROOT / "bench")}, "/hello")
    try:
        result = wrk("bare Starlette JSON hello (baseline)", base, ["/hello"], run)
    finally:
        servers.stop_all()
    result.workers = workers
    return result


def render(rows: list[Result], hello: dict[int, Result], pg: dict, args: argparse.Namespace, loads: list) -> str:
    lines = ["| processes | workload | req/s | share of baseline | P50 ms | P95 ms | P99 ms | non-2xx or none |",
             "|---:|---|---:|---:|---:|---:|---:|---:|",
             f"| — | `pgbench -N`, {args.pg_clients} clients (baseline of movements) | {pg['tps']:.0f} | 100 % | — | — "
             f"| — | — |"]
    for row in rows:
        base = pg["tps"] if row.baseline == "pgbench" else hello[row.workers].rps if row.baseline else row.rps
        if row.rps == 0:  # nothing came back before the run ended (wrk waits up to 10 s for an answer)
            lines.append(f"| {row.workers} | {row.name} | 0 | — | no answer within {args.seconds} s at "
                         f"{args.connections} connections | | | |")
            continue
        share = f"{row.rps / base * 100:.0f} %"
        lines.append(f"| {row.workers} | {row.name} | {row.rps:.0f} | {share} | {row.p50:.1f} | {row.p95:.1f} "
                     f"| {row.p99:.1f} | {row.other} |")
    notes = sorted({f"- {r.name} ({r.workers} proc.): {r.note}" for r in rows if r.note})
    header = (f"{time.strftime('%d/%m/%Y %H:%M UTC', time.gmtime())}; PostgreSQL, demo store of {args.products:,} "
              f"products × {args.days} days; wrk, 1 thread, {args.connections} connections, {args.seconds} s per "
              f"workload; {os.cpu_count()} cores shared with other work, load average {loads[0]:.1f} at the start, "
              f"{loads[1]:.1f} at the end; Python {platform.python_version()}. LOG_LEVEL=WARNING, rate limiter "
              "raised to 10⁸/min (still counting). 1 process and 2 processes: both with Redis; 2 processes: "
              "`serve --workers 2` with Redis (cache versions and rate limits shared).")
    return header + "\n\n" + "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


def write_block(path: Path, table: str) -> None:
    text = path.read_text(encoding="utf-8")
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    before, _, rest = text.partition(start)
    _, _, after = rest.partition(end)
    path.write_text(f"{before}{start}\n{table}{end}{after}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)  # issue 12: 32 connections
    parser.add_argument("--pg-clients", type=int, default=16)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--store", help="An existing demo store (PostgreSQL URL) instead of loading one; kept")
    parser.add_argument("--write", type=Path, help="Replace the bench block of this Markdown file")
    args = parser.parse_args()
    for tool in ("wrk", "pgbench"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} no está instalado (apt-get install {'wrk' if tool == 'wrk' else 'postgresql-client'})")
    workdir = Path(tempfile.mkdtemp(prefix="mm-bench-"))
    run = {"seconds": args.seconds, "connections": args.connections, "workdir": workdir}
    servers = Servers(workdir)
    databases: list[str] = []
    loads = [os.getloadavg()[0]]
    try:
        store_url = args.store or create_database(PG_ADMIN, "mm_bench_store", databases)
        print(f"cargando {args.products:,} productos × {args.days} días…" if not args.store else "tienda dada",
              flush=True)
        store = prepare_store(store_url, workdir, 0 if args.store else args.products, args.days)
        random.Random(12).shuffle(store["skus"])
        pg = pgbench_tps(create_database(PG_ADMIN, "mm_bench_pgbench", databases), args.pg_clients, args.seconds)
        hello, rows = {}, []
        for workers in args.workers:
            hello[workers] = baseline(workers, run, servers)
            rows.append(hello[workers])
            rows += measure_app(store, workers, run, servers)
            print(render(rows, hello, pg, args, [loads[0], os.getloadavg()[0]]), flush=True)
        check = subprocess.run([str(BIN / "minimarket"), "verify"], env={**os.environ, "DATABASE_URL": store_url},
                               cwd=workdir, capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise SystemExit(f"minimarket verify falló después de la carga:\n{check.stdout}{check.stderr}")
        loads.append(os.getloadavg()[0])
        table = render(rows, hello, pg, args, loads) + "\n`minimarket verify` after the run: OK.\n"
        print(table)
        if args.write:
            write_block(args.write, table)
    finally:
        servers.stop_all()
        for url in databases:
            drop_database(PG_ADMIN, url)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
