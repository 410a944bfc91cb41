"""Time of `minimarket demo` at the size the performance work needs, on SQLite and PostgreSQL.

    .venv/bin/python bench/demo_scale.py [--products 100000] [--days 30] [--write docs/PERFORMANCE.md]

Runs the real command (`minimarket demo`, then `minimarket verify`) as a process on a new SQLite
file and on a new PostgreSQL database (created and dropped here; skipped when PostgreSQL does not
answer), and reports wall time, the command's CPU time and the machine's load average, since
on a shared machine the wall time says more about the neighbours than about the code.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG_ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def run(args: list[str], url: str, timeout: float) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the command, its last line of output)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([str(BIN / "minimarket"), *args], env={**os.environ, "DATABASE_URL": url},
                          capture_output=True, text=True, timeout=timeout, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"minimarket {' '.join(args)} -> {done.returncode}\n{done.stdout}\n{done.stderr}")
    lines = (done.stdout + done.stderr).strip().splitlines()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, " ".join(lines[-2:]) if lines else ""


def measure(backend: str, url: str, products: int, days: int) -> str:
    load = os.getloadavg()[0]
    wall, cpu, summary = run(["demo", "--products", str(products), "--days", str(days)], url, timeout=1800)
    verify_wall, _, verified = run(["verify"], url, timeout=600)
    print(f"{backend}: {summary}\n  verify: {verified}", flush=True)
    return (f"| {backend} | {products:,} × {days} | {wall:.0f} s | {cpu:.0f} s | {load:.1f} | "
            f"{verify_wall:.0f} s, {'OK' if verified.startswith('OK') else verified} |")


def postgres_url() -> tuple[str, object] | None:
    admin = create_engine(PG_ADMIN.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            name = f"mm_bench_demo_{uuid.uuid4().hex[:8]}"
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - no PostgreSQL: measure SQLite only
        print(f"PostgreSQL no responde ({exc}); sólo SQLite", file=sys.stderr)
        admin.dispose()
        return None
    return make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False), admin


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--write", type=Path)
    options = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(measure("SQLite", f"sqlite:///{tmp}/demo.db", options.products, options.days))
    pg = postgres_url()
    if pg is not None:
        url, admin = pg
        try:
            subprocess.run([str(BIN / "minimarket"), "db", "upgrade"], env={**os.environ, "DATABASE_URL": url},
                           check=True, capture_output=True)
            rows.append(measure("PostgreSQL", url, options.products, options.days))
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
            admin.dispose()
    table = "\n".join([
        f"`minimarket demo` then `minimarket verify`; {os.cpu_count()} cores, Python {platform.python_version()}.",
        "",
        "| backend | products × days | wall | CPU of the command | load average at start | verify |",
        "|---|---|---:|---:|---:|---|",
        *rows,
    ])
    print(table)
    if options.write:
        text_ = options.write.read_text(encoding="utf-8")
        start, end = "<!-- demo:start -->", "<!-- demo:end -->"
        head, _, rest = text_.partition(start)
        _, _, tail = rest.partition(end)
        options.write.write_text(f"{head}{start}\n{table}\n{end}{tail}", encoding="utf-8")


if __name__ == "__main__":
    main()
