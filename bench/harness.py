"""What bench/run.py drives: servers on loopback, wrk with random paths, pgbench, scratch databases."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@dataclass
class Result:
    name: str
    rps: float
    ok: int
    other: int
    p50: float
    p95: float
    p99: float
    baseline: str | None = None  # "hello" or "pgbench": what its share is of
    workers: int = 1
    note: str = ""
    answered: int = 0  # 2xx including the warm-up
    cpu_ms: float | None = None  # the server's CPU per request of the measured run (wrk(cpu_pid=…))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by `pid` and its children (uvicorn's supervisor and its workers), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def _settle(pid: int, timeout: float = 40.0) -> None:
    """Wait until the server is idle: with --workers N it answers as soon as one worker is up, while the
    others still import the app (seconds of CPU on a loaded machine) and would be measured starting."""
    if not Path(f"/proc/{pid}/stat").exists():
        return  # no /proc: nothing to watch
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = _tree_cpu_seconds(pid)
        time.sleep(0.5)
        if _tree_cpu_seconds(pid) - before < 0.05:
            return


class Servers:
    """uvicorn processes started for one measurement and always stopped (by their own pid)."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.running: list[subprocess.Popen] = []

    def start(self, cmd: list[str], env: dict[str, str], ready: str) -> str:
        port = free_port()
        log = (self.workdir / f"server-{port}.log").open("w")
        proc = subprocess.Popen([*cmd, "--port", str(port)], env={**os.environ, **env}, cwd=self.workdir,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.running.append(proc)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[0]} terminó al arrancar:\n{(self.workdir / log.name).read_text()[-2000:]}")
            try:
                if httpx.get(base + ready, timeout=1).status_code < 500:
                    _settle(proc.pid)
                    return base + "/"
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{base}{ready} no respondió en 90 s")

    def stop_all(self) -> None:
        for proc in self.running:
            if proc.poll() is None:
                proc.terminate()  # uvicorn's supervisor stops its workers
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.running.clear()


def wrk(name: str, base: str, paths: list[str], run: dict, *, header: str = "", body: str = "",
        baseline: str | None = None, cpu_pid: int | None = None) -> Result:
    """One wrk run over random `paths` ("POST /x" for a POST); a warm-up of 1 s first (caches, pools).
    With `cpu_pid`, the CPU that process (and its children) used during the measured run, per request."""
    paths_file = run["workdir"] / f"paths-{uuid.uuid4().hex[:6]}.txt"
    paths_file.write_text("\n".join(paths) + "\n", encoding="utf-8")
    env = {**os.environ, "BENCH_PATHS": str(paths_file), "BENCH_HEADER": header, "BENCH_BODY": body}
    script = str(ROOT / "bench" / "random_paths.lua")
    answered = 0  # 2xx of the warm-up and the measured run: what the ledger must hold for a POST
    for seconds in (1, run["seconds"]):
        cpu_before = _tree_cpu_seconds(cpu_pid) if cpu_pid else 0.0
        out = subprocess.run(["wrk", "-t", "1", "-c", str(run["connections"]), "-d", f"{seconds}s", "--timeout", "10s",
                              "-s", script, base], env=env, capture_output=True, text=True, timeout=seconds + 60,
                             check=False)
        found = re.search(r"^BENCH (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+)$", out.stdout, re.M)
        if found is None:
            raise RuntimeError(f"wrk sin resultado para {name}:\n{out.stdout}\n{out.stderr}")
        answered += int(found.group(2))
    cpu = _tree_cpu_seconds(cpu_pid) - cpu_before if cpu_pid else None
    requests, ok, other = (int(found.group(i)) for i in (1, 2, 3))
    p50, p95, p99, duration = (float(found.group(i)) for i in (4, 5, 6, 7))
    other += int(found.group(8))  # no answer at all (timeout, reset) counts against it too
    result = Result(name=name, rps=requests / duration, ok=ok, other=other, p50=p50, p95=p95, p99=p99,
                    baseline=baseline, answered=answered,
                    cpu_ms=cpu * 1000 / requests if cpu is not None and requests else None)
    spent = f", CPU {result.cpu_ms:.2f} ms a request" if result.cpu_ms is not None else ""
    print(f"  {name}: {result.rps:.0f} req/s, P95 {p95:.1f} ms, non-2xx or no answer {other}{spent}", flush=True)
    return result


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(admin_url: str, prefix: str, created: list[str]) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_plain(admin_url), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    created.append(url)
    return url


def pgbench_database(admin_url: str, prefix: str, created: list[str]) -> str:
    """A new database with pgbench's tables at scale 10 (the baseline of the write benchmarks)."""
    url = create_database(admin_url, prefix, created)
    subprocess.run(["pgbench", "-i", "-q", "-s", "10", _plain(url)], check=True, capture_output=True, timeout=600)
    return url


def drop_database(admin_url: str, url: str) -> None:
    with psycopg.connect(_plain(admin_url), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


def count_rows(url: str, table: str) -> int:
    with psycopg.connect(_plain(url), connect_timeout=5) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def pgbench_tps(url: str, clients: int, seconds: int) -> dict:
    """`pgbench -N` (no updates of the small tables: an update of a row and an insert per transaction)."""
    plain = _plain(url)
    subprocess.run(["pgbench", "-i", "-q", "-s", "10", plain], check=True, capture_output=True, timeout=600)
    out = subprocess.run(["pgbench", "-N", "-c", str(clients), "-j", "2", "-T", str(seconds), plain],
                         check=True, capture_output=True, text=True, timeout=seconds + 120).stdout
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    latency = re.search(r"latency average = ([\d.]+) ms", out)
    print(f"  pgbench -N -c {clients}: {tps:.0f} TPS", flush=True)
    return {"tps": tps, "latency_ms": float(latency.group(1)) if latency else None}


def prepare_store(url: str, workdir: Path, products: int, days: int) -> dict:
    """Migrate, load the demo store, create an admin API key and an admin's dashboard session."""
    env = {**os.environ, "DATABASE_URL": url, "MINIMARKET_ENV": "development"}
    mm = str(BIN / "minimarket")
    if products:  # 0: a store already loaded (--store)
        subprocess.run([mm, "db", "upgrade"], env=env, cwd=workdir, check=True, capture_output=True)
        started = time.perf_counter()
        subprocess.run([mm, "demo", "--products", str(products), "--days", str(days)], env=env, cwd=workdir,
                       check=True, capture_output=True)
        print(f"  demo: {time.perf_counter() - started:.0f} s", flush=True)
    out = subprocess.run([mm, "apikey", "create", "--name", "bench", "--role", "admin", "--json"], env=env,
                         cwd=workdir, check=True, capture_output=True, text=True).stdout
    sys.path.insert(0, str(ROOT / "src"))
    from minimarket.accounts.audit import Context
    from minimarket.accounts.sessions import start_session
    from minimarket.accounts.users import create_user
    from minimarket.db import Database

    db = Database(url)
    try:
        with db.write() as session:
            user = create_user(session, Context(actor="bench"), username=f"bench{uuid.uuid4().hex[:6]}", role="admin",
                               password="bench-password-123")
            token = start_session(session, user=user, ip=None)
    finally:
        db.dispose()
    with psycopg.connect(_plain(url)) as conn:
        skus = [r[0] for r in conn.execute("SELECT sku FROM productos WHERE activo ORDER BY id")]
        barcodes = [r[0] for r in conn.execute(
            "SELECT codigo_barras FROM productos WHERE codigo_barras IS NOT NULL ORDER BY id DESC LIMIT 8")]
    return {"url": url, "key": json.loads(out)["key"], "session": token, "skus": skus, "barcodes": barcodes}
