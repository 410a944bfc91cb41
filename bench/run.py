"""Throughput of the stock API against a bare FastAPI hello, measured in one run with wrk.

    .venv/bin/python bench/run.py [--seconds 5] [--connections 8] [--write docs/PERFORMANCE.md]

Starts the bare baseline and Mini Market (SQLite, and PostgreSQL when reachable) as
uvicorn processes on loopback, loads demo data, runs wrk against each route and prints
requests/s and latency with the ratio to the baseline. Bounded: one wrk run per route.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG_ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def wrk(url: str, seconds: int, connections: int, script: str | None, env: dict[str, str]) -> dict[str, float]:
    cmd = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--latency", url]
    if script:
        cmd[1:1] = ["-s", str(ROOT / "bench" / script)]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env}, timeout=seconds + 30).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return {"rps": rps, "p50_ms": pct("50"), "p99_ms": pct("99"), "errors": int(non2xx.group(1)) if non2xx else 0}


def start(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, env={**os.environ, **env}, cwd=cwd, stdout=log.open("w"), stderr=subprocess.STDOUT)


def prepare_store(database_url: str, workdir: Path, products: int, days: int) -> str:
    env = {**os.environ, "DATABASE_URL": database_url, "MINIMARKET_ENV": "development"}
    mm = str(BIN / "minimarket")
    subprocess.run([mm, "db", "upgrade"], env=env, cwd=workdir, check=True, capture_output=True)
    subprocess.run([mm, "demo", "--products", str(products), "--days", str(days)], env=env, cwd=workdir,
                   check=True, capture_output=True)
    out = subprocess.run([mm, "apikey", "create", "--name", "bench", "--role", "admin", "--json"], env=env,
                         cwd=workdir, check=True, capture_output=True, text=True).stdout
    return json.loads(out)["key"]


def measure_store(label: str, database_url: str, args: argparse.Namespace, workdir: Path) -> list[dict]:
    key = prepare_store(database_url, workdir, args.products, args.days)
    port = free_port()
    # The rate limiter would answer 429 after the first minute's quota: the bench measures the work behind it.
    env = {"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING", "BENCH_KEY": key, "RATE_LIMIT_ENABLED": "false"}
    proc = start([str(BIN / "minimarket"), "serve", "--port", str(port)], env, workdir, workdir / f"{label}.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base + "/health")
        sku = httpx.get(base + "/api/inventory?limit=1", headers={"X-API-Key": key}).json()["items"][0]["sku"]
        routes = [
            ("GET /health", base + "/health", None),
            ("GET /api/inventory/{sku}", f"{base}/api/inventory/{sku}", "get_with_key.lua"),
            ("GET /api/inventory?limit=50", f"{base}/api/inventory?limit=50", "get_with_key.lua"),
            ("POST /api/inventory/{sku}/movements", f"{base}/api/inventory/{sku}/movements", "post_movement.lua"),
        ]
        results = []
        for name, url, script in routes:
            results.append({"backend": label, "route": name, **wrk(url, args.seconds, args.connections, script,
                                                                      {"BENCH_KEY": key})})
        check = subprocess.run([str(BIN / "minimarket"), "verify"], env={**os.environ, "DATABASE_URL": database_url},
                               cwd=workdir, capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"verify failed after the {label} run:\n{check.stdout}")
        return results
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def pg_database() -> tuple[str, str] | None:
    try:
        import psycopg

        name = f"mm_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN.replace("+psycopg", ""), autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name, PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    except Exception:  # noqa: BLE001
        return None


def drop_pg(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def render(rows: list[dict], baseline: dict, args: argparse.Namespace) -> str:
    lines = [
        "| backend | route | req/s | × baseline | p50 ms | p99 ms | non-2xx |",
        "|---|---|---:|---:|---:|---:|---:|",
        f"| — | bare FastAPI `GET /hello` (baseline) | {baseline['rps']:.0f} | 1.00 | {baseline['p50_ms']:.2f} "
        f"| {baseline['p99_ms']:.2f} | {baseline['errors']} |",
    ]
    for r in rows:
        lines.append(f"| {r['backend']} | `{r['route']}` | {r['rps']:.0f} | {r['rps'] / baseline['rps']:.2f} "
                     f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} |")
    header = (f"wrk, 1 thread, {args.connections} connections, {args.seconds} s per route; one uvicorn worker; "
              f"demo store of {args.products} products and {args.days} days; {os.cpu_count()} cores, "
              f"Python {platform.python_version()}.")
    return header + "\n\n" + "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--products", type=int, default=600)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--write", type=Path, help="Replace the results block of this Markdown file")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    workdir = Path(tempfile.mkdtemp(prefix="mm-bench-"))
    port = free_port()
    base_proc = start([str(BIN / "uvicorn"), "baseline_app:app", "--port", str(port), "--log-level", "warning"],
                      {"PYTHONPATH": str(ROOT / "bench")}, workdir, workdir / "baseline.log")
    try:
        wait_ready(f"http://127.0.0.1:{port}/hello")
        baseline = wrk(f"http://127.0.0.1:{port}/hello", args.seconds, args.connections, None, {})
    finally:
        base_proc.terminate()
        base_proc.wait(timeout=15)
    rows = measure_store("SQLite", f"sqlite:///{workdir}/bench.db", args, workdir)
    pg = pg_database()
    if pg:
        try:
            rows += measure_store("PostgreSQL", pg[1], args, workdir)
        finally:
            drop_pg(pg[0])
    table = render(rows, baseline, args)
    print(table)
    if args.write:
        text = args.write.read_text(encoding="utf-8")
        start_mark, end_mark = "<!-- bench:start -->", "<!-- bench:end -->"
        before, _, rest = text.partition(start_mark)
        _, _, after = rest.partition(end_mark)
        args.write.write_text(f"{before}{start_mark}\n{table}{end_mark}{after}", encoding="utf-8")


if __name__ == "__main__":
    main()
