"""GET /api/inventory/{sku} only, two versions of the code alternating in one sitting, beside the bare hello.

    .venv/bin/python bench/reads.py --store postgresql://…/a_copy_of_the_demo_store \
        --before /path/to/an/older/checkout/src [--rounds 3] [--seconds 5] [--connections 32]

Each round measures the bare Starlette hello (bench/baseline_app.py), then for each version ("before": the `src`
given, put first on PYTHONPATH; "after": this checkout; the order alternates by round) starts `minimarket serve`
(1 process, Redis at BENCH_REDIS_URL, rate limiter raised, not removed) and runs wrk as bench/run.py does over
every active SKU of the store at random (nearly all misses: each read goes to PostgreSQL) and over 1,000 SKUs
each read once before (kept answers). Per row: req/s, share of the hello, P50/P95, the app's CPU per request
and the PostgreSQL backends' CPU per request (both from /proc, measured run only, warm-up excluded). The store is
only read (plus the bench's API key and session): use a copy, never the template.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import BIN, ROOT, Servers, _plain, _tree_cpu_seconds, prepare_store  # noqa: E402

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
TICK = os.sysconf("SC_CLK_TCK")


def _backend_cpu(url: str) -> dict[int | str, float]:
    """CPU seconds so far of each PostgreSQL backend connected to `url`'s database (but this query's own), and
    under "statements" the transactions the database has counted (each read on the event loop is one)."""
    with psycopg.connect(_plain(url), autocommit=True, connect_timeout=5) as conn:
        name = make_url(url).database
        pids = [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,))]
        conn.execute("SELECT pg_stat_clear_snapshot()")
        statements = conn.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
                                  (name,)).fetchone()[0]
    found: dict[int | str, float] = {"statements": float(statements)}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            found[pid] = (int(fields[11]) + int(fields[12])) / TICK
        except (OSError, IndexError, ValueError):
            pass
    return found


def _wrk(base: str, paths_file: Path, header: str, seconds: int, connections: int) -> dict:
    env = {**os.environ, "BENCH_PATHS": str(paths_file), "BENCH_HEADER": header, "BENCH_BODY": ""}
    out = subprocess.run(["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s",
                          "-s", str(ROOT / "bench" / "random_paths.lua"), base], env=env, capture_output=True,
                         text=True, timeout=seconds + 60, check=False)
    found = re.search(r"^BENCH (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+)$", out.stdout, re.M)
    if found is None:
        raise RuntimeError(f"wrk sin resultado:\n{out.stdout}\n{out.stderr}")
    requests, ok, other = (int(found.group(i)) for i in (1, 2, 3))
    return {"requests": requests, "other": other + int(found.group(8)) + (requests - ok - other),
            "rps": requests / float(found.group(7)), "p50": float(found.group(4)), "p95": float(found.group(5))}


def measured(base: str, pid: int, paths: list[str], run: dict, *, header: str = "", url: str | None = None) -> dict:
    """A warm-up of 1 s, then the measured run with the server's and the backends' CPU per request."""
    paths_file = run["workdir"] / f"paths-{random.random():.8f}.txt"
    paths_file.write_text("\n".join(paths) + "\n", encoding="utf-8")
    _wrk(base, paths_file, header, 1, run["connections"])
    pg_before = _backend_cpu(url) if url else {}
    cpu_before = _tree_cpu_seconds(pid)
    result = _wrk(base, paths_file, header, run["seconds"], run["connections"])
    cpu = _tree_cpu_seconds(pid) - cpu_before
    n = max(result["requests"], 1)
    result["cpu_us"] = cpu / n * 1e6
    if url:
        time.sleep(0.6)  # the backends report their counts to the statistics at most every 0.5 s
        pg_after = _backend_cpu(url)
        statements = pg_after.pop("statements") - pg_before.pop("statements")
        result["pg_us"] = sum(v - pg_before.get(p, 0.0) for p, v in pg_after.items()) / n * 1e6
        result["per_statement"] = n / max(statements, 1)
    return result


def hello(run: dict, servers: Servers) -> dict:
    base = servers.start([str(BIN / "uvicorn"), "baseline_app:app", "--log-level", "warning"],
                         {"PYTHONPATH": str(ROOT / "bench")}, "/hello")
    try:
        return measured(base, servers.running[-1].pid, ["/hello"], run)
    finally:
        servers.stop_all()


def measure(src: str | None, store: dict, run: dict, servers: Servers) -> dict[str, dict]:
    env = {"DATABASE_URL": store["url"], "LOG_LEVEL": "WARNING", "REDIS_URL": REDIS_URL,
           "RATE_LIMIT_PER_KEY": "100000000", "RATE_LIMIT_PER_IP": "100000000"}
    if src:
        env["PYTHONPATH"] = src
    base = servers.start([str(BIN / "minimarket"), "serve"], env, "/health/live")
    pid = servers.running[-1].pid
    key = f"X-API-Key: {store['key']}"
    try:
        misses = measured(base, pid, [f"/api/inventory/{s}" for s in store["skus"]], run, header=key,
                          url=store["url"])
        kept = [f"/api/inventory/{s}" for s in store["skus"][:1000]]
        with httpx.Client(base_url=base, headers={"X-API-Key": store["key"]}) as client:
            for path in kept:  # each read once before: the next reads are kept answers
                client.get(path).raise_for_status()
        hits = measured(base, pid, kept, run, header=key, url=store["url"])
        return {"misses": misses, "hits": hits}
    finally:
        servers.stop_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True)
    parser.add_argument("--before", required=True, help="the `src` folder of the code to compare with")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--no-hits", action="store_true", help="misses only")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mm-reads-"))
    run = {"seconds": args.seconds, "connections": args.connections, "workdir": workdir}
    servers = Servers(workdir)
    try:
        store = prepare_store(args.store, workdir, 0, 0)
        random.Random(12).shuffle(store["skus"])
        print("| ronda | carga | hello/s | versión | fila | pedidos/s | % hello | P50 ms | P95 ms | CPU app µs "
              "| CPU PostgreSQL µs | pedidos por sentencia | no 2xx |", flush=True)
        for n in range(1, args.rounds + 1):
            versions = [("antes", args.before), ("ahora", None)]
            if n % 2 == 0:
                versions.reverse()  # alternate which goes first
            base = hello(run, servers)
            print(f"| {n} | {os.getloadavg()[0]:.1f} | {base['rps']:.0f} | hello | — | {base['rps']:.0f} | 100 % | "
                  f"{base['p50']:.1f} | {base['p95']:.1f} | {base['cpu_us']:.0f} | — | — | {base['other']} |", flush=True)
            for version, src in versions:
                for label, row in measure(src, store, run, servers).items():
                    if args.no_hits and label == "hits":
                        continue
                    print(f"| {n} | {os.getloadavg()[0]:.1f} | {base['rps']:.0f} | {version} | {label} | "
                          f"{row['rps']:.0f} | {row['rps'] / base['rps'] * 100:.1f} % | {row['p50']:.1f} | "
                          f"{row['p95']:.1f} | {row['cpu_us']:.0f} | {row['pg_us']:.0f} | {row['per_statement']:.1f} | "
                          f"{row['other']} |",
                          flush=True)
    finally:
        servers.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
