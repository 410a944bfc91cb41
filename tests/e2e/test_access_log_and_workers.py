"""Real processes: the JSON access log of a running server, and `serve --workers 2` metrics aggregation.

Every request leaves exactly one access line with the fields promtail reads (LOG_FIELDS), the
request id the client sent (echoed back), the route template and the authenticated actor; the
API key itself never reaches the log. With several Uvicorn workers, /metrics adds up the counters
of all of them through PROMETHEUS_MULTIPROC_DIR, whichever worker answers the scrape.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.parser import text_string_to_metric_families

from minimarket.platform.logging import LOG_FIELDS
from tests.e2e.servers import STOP_TIMEOUT, StartServer, clean_env, cli_command, free_port, measure, tail

pytestmark = pytest.mark.timeout(180)

LOG_WAIT = 10.0
WORKERS_STARTUP = 60.0


def read_log(path: Path) -> list[dict]:
    """Every line of the server's output, each of which must be one JSON object."""
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"log line {number} is not JSON: {line[:300]!r}")
        assert isinstance(record, dict), f"log line {number} is not a JSON object: {line[:300]!r}"
        records.append(record)
    return records


def access_lines(path: Path) -> list[dict]:
    return [r for r in read_log(path) if r.get("message") == "request"]


def wait_for_access_lines(path: Path, request_ids: set[str], timeout: float = LOG_WAIT) -> list[dict]:
    """Access lines once every id in `request_ids` has one (bounded wait for the log to be written)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = access_lines(path)
        missing = request_ids - {line.get("request_id") for line in lines}
        if not missing:
            return lines
        if time.monotonic() > deadline:
            pytest.fail(f"no access line within {timeout} s for request ids {sorted(missing)}:\n{tail(path)}")
        time.sleep(0.1)


# --- access log -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    endpoint: str
    status: int
    key: str | None = None  # "good", "bad" or None
    body: dict | None = None
    query: dict | None = None


CALLS = [
    Call("GET", "/health", "/health", 200),
    Call("GET", "/health/live", "/health/live", 200),
    Call("GET", "/api/inventory", "/api/inventory", 200, key="good", query={"limit": "5"}),
    Call("POST", "/api/inventory", "/api/inventory", 201, key="good",
         body={"sku": "YERBA-1", "name": "Yerba mate 1 kg", "price": "4200", "initial_stock": 5}),
    Call("GET", "/api/inventory/YERBA-1", "/api/inventory/{sku}", 200, key="good"),
    Call("GET", "/api/inventory/yerba-1", "/api/inventory/{sku}", 200, key="good"),
    Call("GET", "/api/inventory/NO-EXISTE", "/api/inventory/{sku}", 404, key="good"),
    Call("POST", "/api/inventory/YERBA-1/movements", "/api/inventory/{sku}/movements", 409, key="good",
         body={"type": "venta", "quantity": 99}),
    Call("POST", "/api/inventory/YERBA-1/movements", "/api/inventory/{sku}/movements", 422, key="good",
         body={"type": "venta", "quantity": -1}),
    Call("GET", "/api/inventory", "/api/inventory", 401),
    Call("GET", "/api/inventory", "/api/inventory", 401, key="bad"),
    Call("GET", "/no/existe", "<sin_ruta>", 404),
    Call("GET", "/metrics", "/metrics", 200),
]


@pytest.mark.parametrize("service", ["all", "deposito"])
def test_every_request_writes_one_json_access_line(start_server: StartServer, sqlite_database: str, service: str):
    server = start_server(sqlite_database, service=service)
    key = server.create_key(name="caja-1", role="admin")
    bad_key = key[:-8] + "XXXXXXXX"  # right shape, right prefix, wrong secret
    sent: dict[str, tuple[Call, httpx.Response]] = {}
    before = time.time()
    with server.client() as keep_alive:
        for i, call in enumerate(CALLS):
            request_id = f"e2e-{i:02d}-{uuid.uuid4().hex[:12]}"
            headers = {"X-Request-ID": request_id}
            if call.key:
                headers["X-API-Key"] = key if call.key == "good" else bad_key
            if i % 3 == 0:  # some on a connection of their own
                with server.client() as fresh:
                    r = fresh.request(call.method, call.path, headers=headers, json=call.body, params=call.query)
            else:
                r = keep_alive.request(call.method, call.path, headers=headers, json=call.body, params=call.query)
            assert r.status_code == call.status, f"{call.method} {call.path}: {r.status_code} {r.text[:300]}"
            assert r.headers["X-Request-ID"] == request_id, "the request id is echoed back"
            sent[request_id] = (call, r)
        unnamed = keep_alive.get("/health/live")  # no X-Request-ID: the server makes one up and returns it
    generated = unnamed.headers["X-Request-ID"]
    assert len(generated) >= 16

    lines = wait_for_access_lines(server.log_path, {*sent, generated})
    by_id = Counter(line.get("request_id") for line in lines)
    for request_id, (call, response) in sent.items():
        assert by_id[request_id] == 1, f"{call.method} {call.path} left {by_id[request_id]} access lines"
        [line] = [entry for entry in lines if entry.get("request_id") == request_id]
        assert set(line) == set(LOG_FIELDS), f"fields {sorted(line)} != LOG_FIELDS"
        assert line["message"] == "request" and line["level"] == "info"
        assert line["service"] == service
        assert (line["method"], line["path"], line["endpoint"]) == (call.method, call.path, call.endpoint)
        assert line["status"] == response.status_code
        assert isinstance(line["duration_ms"], int | float) and 0 <= line["duration_ms"] < 10_000
        stamp = datetime.fromisoformat(line["timestamp"])
        assert stamp.utcoffset() == timedelta(0)
        assert before - 1 <= stamp.timestamp() <= time.time() + 1
        authenticated = call.key == "good"
        assert line["actor"] == ("apikey:caja-1" if authenticated else None), line
    assert by_id[generated] == 1
    assert not re.search(r"[?&]limit=", json.dumps(lines)), "query strings stay out of the path field"

    text = server.log_path.read_text(encoding="utf-8")
    secret = key.split(".", 1)[-1]
    assert key not in text and secret not in text, "the API key reached the log"
    assert bad_key not in text and bad_key.split(".", 1)[-1] not in text, "a rejected API key reached the log"
    # Every line of the server's output is JSON, not only the access lines (uvicorn's own included).
    records = read_log(server.log_path)
    assert any("Application startup complete" in r.get("message", "") for r in records)
    for record in records:
        assert {"timestamp", "level", "message", "service"} <= set(record), record
        assert record["service"] == service


# --- several workers ----------------------------------------------------------------------------------

HEALTH = {"service": "all", "method": "GET", "endpoint": "/health", "status": "200"}
SCRAPE = {"service": "all", "method": "GET", "endpoint": "/metrics", "status": "200"}


@dataclass
class WorkersServer:
    base_url: str
    process: subprocess.Popen
    log_path: Path
    metrics_dir: Path


def per_worker_requests(metrics_dir: Path, labels: dict[str, str]) -> dict[str, float]:
    """http_requests_total{labels} as each worker process wrote it in its own counter file (pid -> count)."""
    counts: dict[str, float] = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = path.stem.split("_", 1)[1]
        for key, value, _ts, _pos in MmapedDict.read_all_values_from_file(str(path)):
            _family, name, got, _help = json.loads(key)
            if name == "http_requests_total" and got == labels:
                counts[pid] = counts.get(pid, 0.0) + value
    return counts


def exposed(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels` (0 when none)."""
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def write_stale_counter(metrics_dir: Path) -> Path:
    """A counter file left by a previous run (a pid that no longer exists) claiming 1000 /health requests."""
    path = metrics_dir / "counter_999999.db"
    stale = MmapedDict(str(path))
    stale.write_value(mmap_key("http_requests", "http_requests_total", list(HEALTH), list(HEALTH.values()),
                               "HTTP requests"), 1000.0, 0.0)
    stale.close()
    return path


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM the `serve` supervisor (it stops its workers); SIGKILL its own process group if that hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT * 2)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)  # workers of this server still alive?
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def workers_server(tmp_path: Path, sqlite_database: str) -> Iterator[WorkersServer]:
    metrics_dir = tmp_path / "prometheus-multiproc"
    metrics_dir.mkdir()
    stale = write_stale_counter(metrics_dir)
    port = free_port()
    log_path = tmp_path / "workers.log"
    env = clean_env(DATABASE_URL=sqlite_database, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    with open(log_path, "w", encoding="utf-8") as log_file:
        process = subprocess.Popen(
            cli_command() + ["serve", "--workers", "2", "--host", "127.0.0.1", "--port", str(port)],
            env=env, cwd=tmp_path, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = WorkersServer(base_url=f"http://127.0.0.1:{port}", process=process, log_path=log_path,
                           metrics_dir=metrics_dir)
    try:
        started = time.monotonic()
        deadline = started + WORKERS_STARTUP
        while True:  # both workers have finished their startup (not just the first one to answer)
            if process.poll() is not None:
                pytest.fail(f"serve --workers 2 exited with {process.returncode}:\n{tail(log_path)}")
            log = log_path.read_text(encoding="utf-8")
            if log.count("Application startup complete") >= 2:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"two workers not started within {WORKERS_STARTUP} s:\n{tail(log_path)}")
            time.sleep(0.2)
        measure("serve --workers 2 startup", f"{time.monotonic() - started:.1f} s")
        assert not stale.exists(), "the counter file of a previous run was not removed"
        yield server
    except BaseException:
        print(f"--- serve --workers 2 log ---\n{tail(log_path)}")  # noqa: T201 - shown with the failure
        raise
    finally:
        stop_group(process)


def test_workers_metrics_add_up_whichever_worker_answers(workers_server: WorkersServer):
    server = workers_server

    def burst(n: int) -> int:
        """n GET /health on their own connections, 4 at a time; returns how many answered 200."""
        def one(_i: int) -> int:
            with httpx.Client(base_url=server.base_url, timeout=10.0, trust_env=False) as c:
                return int(c.get("/health", headers={"Connection": "close"}).status_code == 200)
        with ThreadPoolExecutor(max_workers=4) as pool:
            return sum(pool.map(one, range(n)))

    sent = 0
    # Keep-alive connections too: several requests per connection, each connection to whichever worker took it.
    for _ in range(3):
        with httpx.Client(base_url=server.base_url, timeout=10.0, trust_env=False) as c:
            for _ in range(5):
                assert c.get("/health").status_code == 200
                sent += 1
    deadline = time.monotonic() + 30
    while True:  # until both workers have answered some of them (bounded)
        ok = burst(20)
        assert ok == 20, "a /health request failed"
        sent += ok
        by_worker = per_worker_requests(server.metrics_dir, HEALTH)
        if len([c for c in by_worker.values() if c > 0]) >= 2:
            break
        if time.monotonic() > deadline or sent > 1000:
            pytest.fail(f"after {sent} requests only one worker answered: {by_worker}")
    assert sum(by_worker.values()) == sent, f"worker files say {by_worker}, {sent} were sent"
    assert all(c < sent for c in by_worker.values())  # so no single worker's own count is the answer

    scrapes = 0
    answered_by: dict[str, float] = {}
    deadline = time.monotonic() + 30
    while scrapes < 2 or len(answered_by) < 2:  # at least twice, and until each worker has answered one
        with httpx.Client(base_url=server.base_url, timeout=10.0, trust_env=False) as c:
            r = c.get("/metrics", headers={"Connection": "close"})
        assert r.status_code == 200, r.text[:300]
        scrapes += 1
        assert exposed(r.text, "http_requests_total", endpoint="/health") == sent, (
            f"scrape {scrapes}: /health counted {exposed(r.text, 'http_requests_total', endpoint='/health')}, "
            f"{sent} were sent (per worker: {by_worker})")
        assert exposed(r.text, "http_requests_total", **HEALTH) == sent
        assert exposed(r.text, "http_request_duration_seconds_count", endpoint="/health") == sent
        assert exposed(r.text, "http_request_duration_seconds_bucket", endpoint="/health", le="+Inf") == sent
        answered_by = {pid: n for pid, n in per_worker_requests(server.metrics_dir, SCRAPE).items() if n > 0}
        if time.monotonic() > deadline:
            pytest.fail(f"{scrapes} scrapes were all answered by the same worker: {answered_by}")
    assert sum(answered_by.values()) == scrapes
    measure("serve --workers 2 aggregation", f"{sent} /health requests, {scrapes} scrapes, split {by_worker}")

    # Each worker also wrote its access lines to the shared output, one per request.
    deadline = time.monotonic() + LOG_WAIT
    while True:
        health_lines = [r for r in access_lines(server.log_path) if r.get("endpoint") == "/health"]
        if len(health_lines) >= sent or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(health_lines) == sent
    assert {line["status"] for line in health_lines} == {200}
    assert len({line["request_id"] for line in health_lines}) == sent
    started = [r["message"] for r in read_log(server.log_path) if r["message"].startswith("Started server process")]
    assert len(set(started)) >= 2, started
