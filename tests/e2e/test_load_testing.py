"""scripts/load_testing: the commands LOAD_TESTING.md shows run against a live store and pass, and
the pass/fail verdict works both ways: a slow target and an erroring target make it fail.

Each wrk run is 2 s (1 s for the failing targets) on 2 connections (the documented 30 s and 8 are the only rewrites, with the port and the
interpreter): CI checks the commands and the verdict, the capacity is measured by bench/ and by operators.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import skip_outside_ci
from tests.e2e.servers import Server, StartServer, TcpProxy, clean_env, cli_command, measure, via_proxy

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "load_testing" / "run.py"
GUIDE = ROOT / "scripts" / "load_testing" / "LOAD_TESTING.md"
MARKER = "<!-- probar -->"
RATE_LIMIT = "1000000"  # raised as the guide says, never turned off
SECONDS = "2"  # the guide's run
FAILING_SECONDS = "1"  # a slow or failing target shows in a second


def load_run_module():  # noqa: ANN201
    spec = importlib.util.spec_from_file_location("load_testing_run", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def need_wrk() -> None:
    if shutil.which("wrk") is None:
        skip_outside_ci("falta wrk (apt-get install wrk)")


def guide_blocks() -> list[str]:
    lines = GUIDE.read_text(encoding="utf-8").splitlines()
    blocks = []
    for i, line in enumerate(lines):
        if line.strip() == MARKER:
            start = lines.index("```bash", i + 1)
            end = lines.index("```", start + 1)
            blocks.append("\n".join(lines[start + 1:end]))
    return blocks


def run_tool(server_url: str, *args: str, seconds: str = FAILING_SECONDS, password: str | None = None,
             ) -> tuple[int, dict | str]:
    env = clean_env(MINIMARKET_API_KEY=None, MINIMARKET_LOAD_USER=None, MINIMARKET_LOAD_PASSWORD=password)
    done = subprocess.run([sys.executable, str(SCRIPT), "--url", server_url, "--duration", seconds,
                           "--connections", "2", *args], capture_output=True, text=True, timeout=120,
                          env=env, check=False)
    if "--json" in args and done.stdout.strip():
        return done.returncode, json.loads(done.stdout)
    return done.returncode, done.stdout + done.stderr


class SlowProxy(TcpProxy):
    """A TcpProxy that holds every chunk from the client for `delay` seconds before passing it on."""

    def __init__(self, upstream: tuple[str, int], delay: float):
        super().__init__(upstream)
        self.delay = delay

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            to_upstream = dst.getpeername()[1] == self.upstream[1]
        except OSError:
            to_upstream = False
        if not to_upstream:
            return super()._pump(src, dst)
        try:
            while data := src.recv(65536):
                time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                self._close(s)


@pytest.fixture
def store(start_server: StartServer, pg_database: str, pg_proxy: TcpProxy) -> Server:
    """A small demo store on PostgreSQL (through the proxy, to cut it later), rate limit raised."""
    need_wrk()
    server = start_server(via_proxy(pg_database, pg_proxy), RATE_LIMIT_PER_KEY=RATE_LIMIT)
    demo = server.cli("demo", "--products", "40", "--days", "3")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    return server


def test_the_verdict_follows_each_threshold():
    """P95 and error rate against the read (300 ms) and write (500 ms) limits, at the edges."""
    run = load_run_module()
    scenarios = run.SCENARIOS
    raw = {"requests": 1000, "duration_us": 2_000_000, "p50_us": 10_000, "p95_us": 299_000, "p99_us": 400_000,
           "max_us": 450_000, "connect_errors": 0, "read_errors": 0, "write_errors": 0, "timeouts": 0,
           "statuses": {"200": 995, "503": 5}}
    assert run.judge(scenarios["lectura"], raw)["passed"]
    assert not run.judge(scenarios["lectura"], {**raw, "p95_us": 300_000})["passed"]
    assert run.judge(scenarios["escritura"], {**raw, "p95_us": 450_000})["passed"]
    assert not run.judge(scenarios["escritura"], {**raw, "p95_us": 500_000})["passed"]
    too_many = run.judge(scenarios["health"], {**raw, "statuses": {"200": 990, "429": 10}})
    assert not too_many["passed"] and any("RATE_LIMIT_PER_KEY" in p for p in too_many["problems"])
    redirected = run.judge(scenarios["dashboard"], {**raw, "statuses": {"200": 900, "303": 100}})
    assert not redirected["passed"]  # a lost session is an error, not a fast page
    timeouts = run.judge(scenarios["health"], {**raw, "statuses": {"200": 1000}, "timeouts": 11})
    assert not timeouts["passed"]
    assert not run.judge(scenarios["health"], {**raw, "requests": 0, "statuses": {}})["passed"]


def test_the_guide_passes_on_a_live_store_and_a_slow_or_failing_target_fails(store: Server, pg_proxy: TcpProxy):
    """One store for the three runs (its setup is the slow part): healthy as the guide says, slow, failing."""
    blocks = guide_blocks()
    assert len(blocks) == 1
    script = blocks[0].replace("127.0.0.1:8090", f"127.0.0.1:{store.port}")
    script = script.replace(".venv/bin/python ", f"{sys.executable} ")
    script, rewrites = re.subn(r"--duration 30\b", f"--duration {SECONDS} --connections 2", script)
    assert rewrites == 1, script
    started = time.monotonic()
    env = {**store.env, "PATH": f"{Path(sys.executable).parent}:{store.env.get('PATH', '/usr/bin:/bin')}"}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=150, check=False)
    failed = f"{done.stdout}\n{done.stderr}\n--- servidor\n{store.log_tail()}"
    rows = [ln for ln in done.stdout.splitlines() if ln.split(" ")[0] in load_run_module().SCENARIOS]
    assert len(rows) == 5, failed
    # Errors never pass. A row over its P95 limit and nothing else is measured again (the same tool, limits
    # and run), at most twice: on a 2-core box shared by a team a 2 s run can catch a stall of the machine;
    # a store that is really slow is slow on every run.
    slow = [ln.split(" ")[0] for ln in rows if not ln.rstrip().endswith("OK") and only_over_p95(ln)]
    assert all(ln.rstrip().endswith("OK") for ln in rows if ln.split(" ")[0] not in slow), failed
    assert done.returncode == (1 if slow else 0), failed  # the tool's verdict says the same
    again = rerun_slow(store, slow)
    measure("load guide, 5 scenarios × 2 s on PostgreSQL", f"{time.monotonic() - started:.1f} s\n" + done.stdout
            + "".join(f"{name}: P95 over its limit on the guide's run, OK on run {n + 1}\n" for name, n in again.items()))
    verify = store.cli("verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr  # the write scenario kept the ledger whole

    key = store.create_key("carga-lenta", "lectura")
    slow = SlowProxy(("127.0.0.1", store.port), delay=0.35)
    slow.start()
    try:
        code, result = run_tool(f"http://127.0.0.1:{slow.port}", "--scenario", "health", "--scenario", "lectura",
                                "--api-key", key, "--json")
    finally:
        slow.stop()
    assert code == 1, result
    for r in result["results"]:
        assert not r["passed"] and r["p95_ms"] >= 300 and r["error_rate"] == 0, r
        assert any(p.startswith("P95") for p in r["problems"]), r

    pg_proxy.stop()  # the database goes away: /health answers 503
    deadline = time.monotonic() + 10
    while httpx.get(store.base_url + "/health", timeout=5).status_code != 503:
        assert time.monotonic() < deadline, "/health never noticed the database was gone"
        time.sleep(0.2)
    code, result = run_tool(store.base_url, "--scenario", "health", "--json")
    pg_proxy.start()
    assert code == 1, result
    failing = result["results"][0]
    assert not failing["passed"] and failing["error_rate"] > 0.5 and "503" in str(failing["statuses"]), failing
    assert any(p.startswith("errores") for p in failing["problems"]), failing


def only_over_p95(row: str) -> bool:
    """A FALLA row whose only problem is its P95 (no errors, no missing answers)."""
    problems = row.split("FALLA: ", 1)[1].split("; ")
    return len(problems) == 1 and problems[0].startswith("P95 ")


def rerun_slow(store: Server, names: list[str]) -> dict[str, int]:
    """Each scenario in `names` run again (at most twice) until it passes; returns the runs it took."""
    runs: dict[str, int] = {}
    if not names:
        return runs
    key = store.create_key("carga-repetida", "encargado")
    password = "clave-de-carga-repetida"
    made = subprocess.run(cli_command() + ["user", "create", "--username", "carga2", "--role", "lectura",
                                           "--password-stdin"], input=password + "\n", env=store.env, cwd=store.cwd,
                          capture_output=True, text=True, timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    for name in names:
        results = []
        for n in range(1, 3):
            code, result = run_tool(store.base_url, "--scenario", name, "--api-key", key, "--username", "carga2",
                                    "--json", seconds=SECONDS, password=password)
            results.append(result)
            if code == 0:
                runs[name] = n
                break
            (row,) = result["results"]
            assert row["error_rate"] == 0 and all(p.startswith("P95") for p in row["problems"]), row
        else:
            raise AssertionError(f"{name}: P95 over its limit on three runs: {results}")
    return runs


def test_the_tool_refuses_what_it_cannot_run(tmp_path: Path):
    need_wrk()
    code, out = run_tool("http://192.0.2.10:8080", "--scenario", "health")
    assert code == 2 and "loopback" in out, out
    code, out = run_tool("http://127.0.0.1:9", "--scenario", "lectura")
    assert code == 2 and "MINIMARKET_API_KEY" in out, out
    code, out = run_tool("http://127.0.0.1:9", "--scenario", "health", "--duration", "301")
    assert code == 2 and "--duration" in out, out
