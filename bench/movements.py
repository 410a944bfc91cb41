"""Stock movements only, two versions of the code alternating in one sitting, beside `pgbench -N`.

    .venv/bin/python bench/movements.py --store postgresql://…/a_copy_of_the_demo_store \
        --before /path/to/an/older/checkout/src [--rounds 3] [--seconds 5] [--connections 32]

Each round runs `pgbench -N` (16 clients, on a pgbench database made once and dropped at the end), then for
each version ("before": the `src` given, put first on PYTHONPATH; "after": this checkout) starts `minimarket
serve` (1 process, Redis at BENCH_REDIS_URL, rate limiter raised, not removed) and measures with wrk, as
bench/run.py does (1 process, or `--workers N`), movements on random products and on one hot product: movements/s, share of `pgbench -N`,
P95, the server's CPU per movement (from /proc, warm-up included) and lost movements (2xx answers missing from
the ledger). The store is written to (movements are appended): use a copy, never the template.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (BIN, Servers, _plain, _tree_cpu_seconds, count_rows, pgbench_database,  # noqa: E402
                     drop_database, prepare_store, wrk)

PG_ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
MOVEMENT = '{"type": "entrada", "quantity": 1, "reason": "bench"}'


def pgbench(url: str, seconds: int, clients: int) -> float:
    out = subprocess.run(["pgbench", "-N", "-c", str(clients), "-j", "2", "-T", str(seconds), _plain(url)],
                         check=True, capture_output=True, text=True, timeout=seconds + 120).stdout
    return float(re.search(r"tps = ([\d.]+)", out).group(1))


def measure(version: str, src: str | None, store: dict, run: dict, servers: Servers, tps: float) -> list[dict]:
    env = {"DATABASE_URL": store["url"], "LOG_LEVEL": "WARNING", "REDIS_URL": REDIS_URL,
           "RATE_LIMIT_PER_KEY": "100000000", "RATE_LIMIT_PER_IP": "100000000"}
    if run["pool"]:
        env["DB_POOL_SIZE"] = str(run["pool"])
    if src:
        env["PYTHONPATH"] = src
    base = servers.start([str(BIN / "minimarket"), "serve", "--workers", str(run["workers"])], env, "/health/live")
    pid = servers.running[-1].pid
    rows = []
    try:
        key = f"X-API-Key: {store['key']}"
        for label, paths in [("random", [f"POST /api/inventory/{s}/movements" for s in store["skus"]]),
                             ("hot", [f"POST /api/inventory/{store['skus'][0]}/movements"])]:
            before_rows = count_rows(store["url"], "movimientos_stock")
            cpu = _tree_cpu_seconds(pid)
            result = wrk(f"{version} {label}", base, paths, run, header=key, body=MOVEMENT, baseline="pgbench")
            cpu = _tree_cpu_seconds(pid) - cpu
            time.sleep(1.0)
            written = count_rows(store["url"], "movimientos_stock") - before_rows
            rows.append({"version": version, "workload": label, "rps": result.rps, "share": result.rps / tps * 100,
                         "p50": result.p50, "p95": result.p95, "cpu_ms": cpu / max(result.answered, 1) * 1000,
                         "lost": max(0, result.answered - written), "other": result.other})
    finally:
        servers.stop_all()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True)
    parser.add_argument("--before", required=True, help="the `src` folder of the code to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--pool", type=int, help="DB_POOL_SIZE of the app (default: its own, as bench/run.py)")
    parser.add_argument("--pg-clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="app processes (`serve --workers`)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mm-moves-"))
    run = {"seconds": args.seconds, "connections": args.connections, "workdir": workdir, "pool": args.pool,
           "workers": args.workers}
    servers = Servers(workdir)
    created: list[str] = []
    try:
        store = prepare_store(args.store, workdir, 0, 0)
        random.Random(12).shuffle(store["skus"])
        pg = pgbench_database(PG_ADMIN, "mm_moves_pgbench", created)
        print("| ronda | carga | pgbench -N | versión | carga | movs/s | % pgbench -N | P50 ms | P95 ms | CPU/mov ms "
              "| perdidos | no 2xx |", flush=True)
        for n in range(1, args.rounds + 1):
            versions = [("antes", args.before), ("ahora", None)]
            if n % 2 == 0:
                versions.reverse()  # alternate which goes first
            tps = pgbench(pg, args.seconds, args.pg_clients)
            load = os.getloadavg()[0]
            for version, src in versions:
                for row in measure(version, src, store, run, servers, tps):
                    print(f"| {n} | {load:.1f} | {tps:.0f} | {row['version']} {row['workload']} | "
                          f"{os.getloadavg()[0]:.1f} | {row['rps']:.0f} | {row['share']:.1f} % | {row['p50']:.1f} | "
                          f"{row['p95']:.1f} | {row['cpu_ms']:.2f} | {row['lost']} | {row['other']} |", flush=True)
    finally:
        servers.stop_all()
        for url in created:
            drop_database(PG_ADMIN, url)


if __name__ == "__main__":
    main()
