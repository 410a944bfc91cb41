"""/health against real dependencies and real faults, on a running server.

The database outage is faked with a TCP proxy between the app and the shared
PostgreSQL (the server itself is never stopped): stopping the proxy closes its
listener and every open connection; starting it again on the same port must bring
the app back by itself, without a restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

from tests.helpers import REDIS_URL, create_pg_database, drop_pg_database, need_postgres, need_redis
from tests.e2e.servers import Server, StartServer, TcpProxy, free_port, measure, pg_upstream, via_proxy

pytestmark = pytest.mark.timeout(120)

OUTAGE_DETECTED_WITHIN = 5.0
RECOVERED_WITHIN = 10.0


METRICS_TOKEN = "token-de-metricas-de-prueba-0123456789"
OPERATOR = {"Authorization": f"Bearer {METRICS_TOKEN}"}  # sees /health's error details


def get(server: Server, path: str, key: str | None = None, timeout: float = 10.0,
        extra: dict[str, str] | None = None) -> tuple[httpx.Response, float]:
    """One request on a new connection (an error answer must not poison the next request); returns the time too."""
    headers = {"X-API-Key": key, "Connection": "close"} if key else {"Connection": "close"}
    headers.update(extra or {})
    start = time.perf_counter()
    with httpx.Client(base_url=server.base_url, timeout=timeout, trust_env=False) as client:
        response = client.get(path, headers=headers)
    return response, time.perf_counter() - start


def poll_until(server: Server, path: str, accept: Callable[[httpx.Response], bool], within: float) -> tuple[httpx.Response, float]:
    """GET `path` every 0.2 s until `accept(response)`, at most `within` seconds; returns the answer and the wait."""
    start = time.monotonic()
    deadline = start + within
    last: httpx.Response | None = None
    while True:
        try:
            last, _ = get(server, path, timeout=max(0.5, min(5.0, deadline - time.monotonic())))
            if accept(last):
                return last, time.monotonic() - start
        except httpx.HTTPError:
            pass
        if time.monotonic() >= deadline:
            detail = f"{last.status_code} {last.text[:500]}" if last is not None else "no answer"
            raise AssertionError(f"{path} did not reach the expected state within {within} s; last: {detail}")
        time.sleep(0.2)


def assert_error_shape(body: dict) -> None:
    assert set(body) == {"error"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def test_health_reports_database_and_cache(server: Server) -> None:
    response, _ = get(server, "/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok" and body["service"] == "all" and "failing" not in body
    backend = "sqlite" if server.database_url.startswith("sqlite") else "postgresql"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["database"]["backend"] == backend
    assert body["checks"]["cache"]["status"] == "ok" and body["checks"]["cache"]["backend"] == "memory"
    live, _ = get(server, "/health/live")
    assert live.status_code == 200 and live.json() == {"status": "ok", "service": "all"}


def test_database_outage_is_reported_and_recovers_without_restart(start_server: StartServer, pg_database: str,
                                                                   pg_proxy: TcpProxy) -> None:
    server = start_server(via_proxy(pg_database, pg_proxy), METRICS_TOKEN=METRICS_TOKEN)
    key = server.create_key("outage")
    unseen = server.create_key("never-used")  # valid, but the app never verified it
    pid = server.process.pid
    ok, _ = get(server, "/api/inventory", key)
    assert ok.status_code == 200, ok.text
    assert pg_proxy.open_connections >= 1  # the app's pool really goes through the proxy

    pg_proxy.stop()
    down, detected = poll_until(server, "/health", lambda r: r.status_code == 503, OUTAGE_DETECTED_WITHIN)
    body = down.json()
    assert body["status"] == "fail"
    assert "database" in body["failing"] and "cache" not in body["failing"]
    # Anybody may see that the database fails; only the operator sees where it lives.
    assert "error" not in body["checks"]["database"] and str(pg_proxy.port) not in down.text, down.text
    assert "127.0.0.1" not in down.text and body["detail"]
    detailed, _ = get(server, "/health", extra=OPERATOR)
    assert detailed.status_code == 503 and detailed.json()["checks"]["database"]["error"]
    assert str(pg_proxy.port) in detailed.text  # the driver names host and port: what the operator needs
    # A key cannot be checked while the database is down (without Redis the app keeps no verified key,
    # seen moments ago or not): it gets the operator-free answer, never a 500.
    for caller in (unseen, key):
        answer, _ = get(server, "/health", caller)
        assert answer.status_code == 503 and "error" not in answer.json()["checks"]["database"]
    live, _ = get(server, "/health/live")
    assert live.status_code == 200  # the process is up; only its dependency is down

    pg_proxy.start()  # same port
    up, recovered = poll_until(server, "/health", lambda r: r.status_code == 200, RECOVERED_WITHIN)
    assert up.json()["checks"]["database"]["status"] == "ok"
    again, _ = get(server, "/api/inventory", key)
    assert again.status_code == 200, again.text
    assert server.process.poll() is None and server.process.pid == pid  # never restarted
    measure("database outage via proxy", f"/health 503 after {detected:.2f} s, 200 again {recovered:.2f} s after "
                                         "the proxy came back")


def test_api_during_database_outage_answers_503_quickly(start_server: StartServer, pg_database: str,
                                                        pg_proxy: TcpProxy) -> None:
    """With the database gone, API calls must fail fast with the error shape and 503 (retry later),
    not hang, not a 500 "internal error, tell support", and not break the client's keep-alive connection."""
    server = start_server(via_proxy(pg_database, pg_proxy))
    key = server.create_key("outage-api")
    assert get(server, "/api/inventory", key)[0].status_code == 200
    pg_proxy.stop()
    poll_until(server, "/health", lambda r: r.status_code == 503, OUTAGE_DETECTED_WITHIN)

    read, read_seconds = get(server, "/api/inventory", key)
    start = time.perf_counter()
    with httpx.Client(base_url=server.base_url, timeout=10, trust_env=False) as client:
        write = client.post("/api/inventory", json={"sku": "OUT-1", "name": "Durante el corte"},
                            headers={"X-API-Key": key, "Connection": "close"})
    write_seconds = time.perf_counter() - start
    # A keep-alive client (a POS polling the stock) sends its next request right after the error answer.
    transport_errors = []
    with server.client(key, timeout=10) as client:
        for _ in range(3):
            try:
                client.get("/api/inventory")
            except httpx.TransportError as exc:
                transport_errors.append(f"{type(exc).__name__}: {exc}")
    measure("API during database outage",
            f"GET /api/inventory -> {read.status_code} {read.json().get('error', {}).get('code')} in "
            f"{read_seconds:.3f} s; POST /api/inventory -> {write.status_code} "
            f"{write.json().get('error', {}).get('code')} in {write_seconds:.3f} s; "
            f"keep-alive transport errors: {len(transport_errors)}/3")

    problems = []
    for name, response, seconds in (("GET", read, read_seconds), ("POST", write, write_seconds)):
        assert seconds < 5.0, f"{name} took {seconds:.1f} s"  # a hang is the worst answer
        assert response.headers["content-type"].startswith("application/json")
        assert_error_shape(response.json())
        if response.status_code != 503:
            problems.append(f"{name} /api/inventory answered {response.status_code} {response.json()['error']}, "
                            "expected 503")
        if "x-request-id" not in response.headers:
            problems.append(f"{name} /api/inventory answer has no X-Request-ID header")
    if transport_errors:
        problems.append(f"keep-alive connection broken after the error answer: {transport_errors}")
    assert not problems, "\n".join(problems)

    pg_proxy.start()
    poll_until(server, "/health", lambda r: r.status_code == 200, RECOVERED_WITHIN)
    assert get(server, "/api/inventory", key)[0].status_code == 200


def test_unreachable_redis_fails_health_naming_cache(start_server: StartServer, sqlite_database: str) -> None:
    closed = free_port()  # nothing listens there
    server = start_server(sqlite_database, ready="/health/live", REDIS_URL=f"redis://127.0.0.1:{closed}/0",
                          METRICS_TOKEN=METRICS_TOKEN)
    anonymous, _ = get(server, "/health")
    assert anonymous.status_code == 503 and str(closed) not in anonymous.text, anonymous.text
    response, seconds = get(server, "/health", key=server.create_key("operador", "lectura"))
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["status"] == "fail" and body["failing"] == ["cache"]
    assert body["checks"]["cache"]["status"] == "fail" and body["checks"]["cache"]["error"]
    assert body["checks"]["database"]["status"] == "ok"
    # What matters is that /health answers instead of hanging: the cache check is bounded by the client's
    # 0.5 s connect timeout, and the margin is for a loaded 2-core CI machine (the request gives up at 10 s).
    assert seconds < 8.0, f"/health took {seconds:.1f} s with Redis down"
    measure("/health with Redis on a closed port", f"503 in {seconds:.3f} s")


def test_real_redis_is_reported_as_cache_backend(start_server: StartServer, sqlite_database: str) -> None:
    need_redis()
    server = start_server(sqlite_database, REDIS_URL=REDIS_URL)
    response, _ = get(server, "/health")
    assert response.status_code == 200, response.text
    cache = response.json()["checks"]["cache"]
    assert cache["status"] == "ok" and cache["backend"] == "redis"


def test_serve_starts_without_the_database_and_recovers_when_it_appears(start_server: StartServer,
                                                                         pg_database: str) -> None:
    """PostgreSQL unreachable when `serve` starts (the proxy is not listening yet): the process stays up,
    /health answers 503 naming the database, and when the database appears it recovers by itself."""
    proxy = TcpProxy(pg_upstream())  # its port is reserved, nothing listens there yet
    try:
        server = start_server(via_proxy(pg_database, proxy), ready="/health/live")
        down, _ = get(server, "/health")
        assert down.status_code == 503, down.text
        assert down.json()["failing"] == ["database"]
        assert down.json()["checks"]["database"]["status"] == "fail"
        log = server.log_tail(200)
        assert "Traceback" not in log and "La base de datos no responde" in log, log

        proxy.start()
        up, recovered = poll_until(server, "/health", lambda r: r.status_code == 200, RECOVERED_WITHIN)
        assert up.json()["checks"]["database"]["status"] == "ok"
        key = server.create_key("despues-del-arranque")
        listed, _ = get(server, "/api/inventory", key)
        assert listed.status_code == 200, listed.text
        assert server.process.poll() is None
        measure("serve started without its database", f"/health 200 {recovered:.2f} s after the database appeared")
    finally:
        proxy.stop()


def test_a_database_that_appears_unmigrated_keeps_health_red_with_the_fix(start_server: StartServer,
                                                                          tmp_path) -> None:  # noqa: ANN001
    """Started without its database, the server checks the revision when the database appears:
    an empty one is not 'healthy', and /health says what to run."""
    need_postgres()
    url = create_pg_database()  # never migrated
    proxy = TcpProxy(pg_upstream())
    try:
        server = start_server(via_proxy(url, proxy), ready="/health/live")
        assert get(server, "/health")[0].status_code == 503
        proxy.start()
        red, _ = poll_until(server, "/health", lambda r: "vacía" in r.text, RECOVERED_WITHIN)
        assert red.status_code == 503 and red.json()["failing"] == ["database"]
        assert "minimarket db upgrade" in red.json()["checks"]["database"]["error"]
        migrated = server.cli("db", "upgrade")
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        poll_until(server, "/health", lambda r: r.status_code == 200, RECOVERED_WITHIN)
    finally:
        proxy.stop()
        drop_pg_database(url)
