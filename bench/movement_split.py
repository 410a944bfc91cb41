"""Where a stock movement's time goes: CPU per movement of the app, of its PostgreSQL backends and of Redis,
and what the backends wait on, beside the same SQL replayed by pgbench and `pgbench -N`.

    .venv/bin/python bench/movement_split.py --store postgresql://…/a_copy_of_the_demo_store \
        [--before /path/to/an/older/checkout/src] [--rounds 2] [--seconds 8] [--connections 32]

For each round: `pgbench -N` (16 clients, a pgbench database made once and dropped at the end), the path's own
SQL replayed by pgbench (the three messages stock/movement_on_loop.py sends, triggers included, 16 clients, on the
store: bench/movement_sql_text.pgbench every statement as text, as before 2/12/2026; bench/movement_sql.pgbench
prepared, as now), then for each version (the `src` given as "before", this checkout as
"after") one app process (Redis at BENCH_REDIS_URL, rate limiter raised, not removed) under wrk's movements on
random products. Every workload reports: transactions/s, share of `pgbench -N`, P95, and per transaction the CPU
of the app process, of the PostgreSQL backends of the database it used, of the cluster's own processes
(walwriter, checkpointer: shared with whatever else runs), of redis-server (shared too) and of the load
generator, plus how the backends spent the run (pg_stat_activity sampled every 10 ms: running, waiting on a
lock or on I/O, idle in a transaction — waiting on its client — or idle; for the app, only the connections that
record movements, whose CPU is counted with every other backend of the store). The store is written to: use a copy.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import (BIN, ROOT, Servers, _plain, _tree_cpu_seconds, drop_database, pgbench_database,  # noqa: E402
                     prepare_store)

PG_ADMIN = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
MOVEMENT = '{"type": "entrada", "quantity": 1, "reason": "bench"}'
REPLAYS = [("SQL del movimiento en pgbench, como texto (antes)", ROOT / "bench" / "movement_sql_text.pgbench"),
           ("SQL del movimiento en pgbench, sentencias preparadas (ahora)", ROOT / "bench" / "movement_sql.pgbench")]
TICK = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


class Watch:
    """CPU of the backends of one database (those alive at the end count whole; connect during warm-up), of
    the cluster's other processes and of redis-server, and pg_stat_activity sampled, over one run."""

    def __init__(self, database: str, redis_client: redis.Redis, *, movement_connections: bool = False):
        self.database = database
        # The app's states: only its movement connections (their last statement is the path's), not its idle others.
        self.only = " AND query ~ '^(BEGIN;|EXECUTE mm_movement|WITH moved|PREPARE mm_movement|INSERT INTO existencias_totales)'" if (
            movement_connections) else ""
        self.redis = redis_client
        self.states: collections.Counter = collections.Counter()
        self._stop = threading.Event()
        with psycopg.connect(_plain(PG_ADMIN), autocommit=True) as conn:  # a backend's parent: the postmaster
            self.postmaster = _ppid(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
        self.redis_pid = int(redis_client.info("server")["process_id"])

    def _backends(self, conn: psycopg.Connection) -> list[int]:
        return [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> "
                                           "pg_backend_pid()", (self.database,))]

    def _cluster(self) -> list[int]:
        return [int(e) for e in os.listdir("/proc") if e.isdigit() and _ppid(int(e)) == self.postmaster]

    def _sample(self) -> None:
        with psycopg.connect(_plain(PG_ADMIN), autocommit=True) as conn:
            while not self._stop.wait(0.01):
                for pid, state, kind, event in conn.execute(
                        "SELECT pid, state, wait_event_type, wait_event FROM pg_stat_activity WHERE datname = %s "
                        "AND pid <> pg_backend_pid() AND backend_type = 'client backend'" + self.only, (self.database,)):
                    self._last[pid] = _cpu(pid) or self._last.get(pid, 0.0)  # pgbench's backends end before we do
                    if state == "active":
                        label = f"esperando {kind}:{event}" if kind else "corriendo"
                    else:
                        label = state
                    self.states[label] += 1

    def __enter__(self) -> Watch:
        self._admin = psycopg.connect(_plain(PG_ADMIN), autocommit=True)
        self._start = {pid: _cpu(pid) for pid in self._cluster()}
        self._last: dict[int, float] = {}
        self._wal0 = _wal(self._admin)
        self._redis0 = _cpu(self.redis_pid)
        self._calls0 = _redis_calls(self.redis)
        self._children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        for pid in self._backends(self._admin):
            self._last[pid] = _cpu(pid)
        cluster = {pid: _cpu(pid) - self._start.get(pid, 0.0) for pid in self._cluster()}
        self.wal_bytes, self.wal_fpi = (b - a for a, b in zip(self._wal0, _wal(self._admin), strict=True))
        self._admin.close()
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.backend_cpu = sum(v - self._start.get(pid, 0.0) for pid, v in self._last.items())
        aux = {pid for pid in cluster if _backend_type(pid) in AUX}
        self.aux_cpu = sum(v for pid, v in cluster.items() if pid in aux)
        self.redis_cpu = _cpu(self.redis_pid) - self._redis0
        self.redis_calls = _redis_calls(self.redis) - self._calls0
        self.client_cpu = (children.ru_utime + children.ru_stime
                           - self._children0.ru_utime - self._children0.ru_stime)


AUX = ("walwriter", "checkpointer", "background writer")


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _backend_type(pid: int) -> str:
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").replace("\0", " ")
    except OSError:
        return ""
    return title.split(": ", 2)[-1].strip()


def _wal(conn: psycopg.Connection) -> tuple[int, int]:
    """WAL written by the whole cluster so far: bytes and full-page images."""
    return tuple(int(v) for v in conn.execute("SELECT wal_bytes, wal_fpi FROM pg_stat_wal").fetchone())


def _redis_calls(client: redis.Redis) -> int:
    return sum(v["calls"] for v in client.info("commandstats").values())


def _pgbench(args: list[str], seconds: int) -> tuple[float, float]:
    out = subprocess.run(["pgbench", "-n", "-c", "16", "-j", "2", "-T", str(seconds), "-P", "100", *args],
                         check=True, capture_output=True, text=True, timeout=seconds + 120).stdout
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    latency = float(re.search(r"latency average = ([\d.]+) ms", out).group(1))
    return tps, latency


def _row(label: str, count: int, seconds: float, watch: Watch, app_cpu: float | None, tps_n: float | None,
         p95: float | None) -> str:
    per = lambda v: f"{v / max(count, 1) * 1e6:.0f}"  # noqa: E731 - microseconds per transaction
    total = sum(watch.states.values()) or 1
    states = ", ".join(f"{k} {v / total * 100:.0f} %" for k, v in watch.states.most_common(5))
    share = f"{count / seconds / tps_n * 100:.1f} %" if tps_n else "100 %"
    return (f"| {label} | {count / seconds:.0f} | {share} | {'' if p95 is None else f'{p95:.1f}'} | "
            f"{'—' if app_cpu is None else per(app_cpu)} | {per(watch.backend_cpu)} | {per(watch.aux_cpu)} | "
            f"{per(watch.redis_cpu)} | {watch.redis_calls / max(count, 1):.1f} | {per(watch.client_cpu)} | "
            f"{watch.wal_bytes / max(count, 1):.0f} | {watch.wal_fpi / max(count, 1):.2f} | {states} |")


def app_run(label: str, src: str | None, store: dict, seconds: int, connections: int, workdir: Path,
            servers: Servers, redis_client: redis.Redis, tps_n: float, profile: bool) -> str:
    env = {"DATABASE_URL": store["url"], "LOG_LEVEL": "WARNING", "REDIS_URL": REDIS_URL,
           "RATE_LIMIT_PER_KEY": "100000000", "RATE_LIMIT_PER_IP": "100000000"}
    if src:
        env["PYTHONPATH"] = src
    base = servers.start([str(BIN / "minimarket"), "serve", "--workers", "1"], env, "/health/live")
    pid = servers.running[-1].pid
    paths = workdir / "paths.txt"
    paths.write_text("".join(f"POST /api/inventory/{s}/movements\n" for s in store["skus"]), encoding="utf-8")
    wrk_env = {**os.environ, "BENCH_PATHS": str(paths), "BENCH_HEADER": f"X-API-Key: {store['key']}",
               "BENCH_BODY": MOVEMENT}
    command = ["wrk", "-t", "1", "-c", str(connections), "--timeout", "10s", "-s",
               str(ROOT / "bench" / "random_paths.lua"), base]
    try:
        subprocess.run([*command[:5], "-d", "2s", *command[5:]], env=wrk_env, capture_output=True, check=True)
        spy = None
        if profile:
            spy = subprocess.Popen([str(BIN / "py-spy"), "record", "-p", str(pid), "-d", str(seconds), "-r", "200",
                                    "-f", "raw", "-o", str(workdir / f"{label.replace(' ', '_')}.txt"), "--gil"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu = _tree_cpu_seconds(pid)
        with Watch(make_db(store["url"]), redis_client, movement_connections=True) as watch:
            out = subprocess.run([*command[:5], "-d", f"{seconds}s", *command[5:]], env=wrk_env,
                                 capture_output=True, text=True, check=True).stdout
        cpu = _tree_cpu_seconds(pid) - cpu
        if spy:
            spy.wait(timeout=60)
        found = re.search(r"^BENCH (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+)$", out, re.M)
        requests, ok, other = (int(found.group(i)) for i in (1, 2, 3))
        duration = float(found.group(7))
        if other or int(found.group(8)):
            print(f"  {label}: {other} no 2xx, {found.group(8)} sin respuesta", flush=True)
        return _row(label, requests, duration, watch, cpu, tps_n, float(found.group(5)))
    finally:
        servers.stop_all()


def make_db(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True)
    parser.add_argument("--before", help="the `src` folder of the code to compare with")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--profile", action="store_true", help="py-spy record (raw) of each app run, in the workdir")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mm-split-"))
    servers = Servers(workdir)
    created: list[str] = []
    redis_client = redis.Redis.from_url(REDIS_URL)
    try:
        store = prepare_store(args.store, workdir, 0, 0)
        random.Random(12).shuffle(store["skus"])
        pg = pgbench_database(PG_ADMIN, "mm_split_pgbench", created)
        print(f"workdir {workdir}\n\n| carga | tx/s | % de `pgbench -N` | P95 ms | app µs/tx | backends µs/tx | "
              "walwriter etc. µs/tx | Redis µs/tx | llamadas a Redis/tx | cliente µs/tx | WAL bytes/tx | páginas enteras/tx "
              "| backends (muestras) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|", flush=True)
        for n in range(1, args.rounds + 1):
            with Watch(make_db(pg), redis_client) as watch:
                tps_n, _ = _pgbench(["-N", _plain(pg)], args.seconds)
            print(_row(f"{n}: `pgbench -N`", round(tps_n * args.seconds), args.seconds, watch, None, None, None),
                  flush=True)
            for label, script in REPLAYS:
                with Watch(make_db(store["url"]), redis_client) as watch:
                    tps, _ = _pgbench(["-M", "simple", "-f", str(script), _plain(store["url"])], args.seconds)
                print(_row(f"{n}: {label}", round(tps * args.seconds), args.seconds, watch, None, tps_n, None),
                      flush=True)
            versions = [("antes", args.before), ("ahora", None)] if args.before else [("app", None)]
            if n % 2 == 0:
                versions.reverse()
            for version, src in versions:
                print(app_run(f"{n}: {version}", src, store, args.seconds, args.connections, workdir, servers,
                              redis_client, tps_n, args.profile), flush=True)
    finally:
        servers.stop_all()
        for url in created:
            drop_database(PG_ADMIN, url)


if __name__ == "__main__":
    main()
