"""Rate limiting with Redis: replicas share one window, Redis never holds an API key, and a Redis
outage falls back to each process's memory (limits still hold), says so, and recovers."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from minimarket.accounts.audit import Context
from minimarket.accounts.keys import create_api_key
from minimarket.apps import create_app
from minimarket.platform.limiter import PREFIX, FallbackLimiter, RedisLimiter
from tests.e2e.servers import TcpProxy
from tests.helpers import REDIS_URL, make_settings, need_redis
from tests.integration.helpers import error_of, metric_value

pytestmark = pytest.mark.redis
PER_KEY = 4
PER_IP = 3


def _clear(client: redis.Redis) -> None:
    for name in list(client.scan_iter(match=PREFIX + "*", count=500)):
        client.delete(name)


@pytest.fixture
def store() -> Iterator[redis.Redis]:
    need_redis()
    client = redis.Redis.from_url(REDIS_URL)
    _clear(client)  # the IP window of "testclient" is shared by every test: start each one empty
    yield client
    _clear(client)
    client.close()


@pytest.fixture
def replicas(database_url: str, store: redis.Redis) -> Iterator[tuple]:  # noqa: ARG001
    """Two app instances on one database and one Redis, as two replicas behind nginx."""
    settings = make_settings(database_url, redis_url=REDIS_URL, rate_limit_per_key=PER_KEY, rate_limit_per_ip=PER_IP)
    apps = [create_app("all", settings), create_app("all", settings)]
    yield tuple(apps)
    for app in apps:
        app.state.db.dispose()


def new_key(app, role: str = "admin") -> str:  # noqa: ANN001
    with app.state.db.write() as session:
        _, plaintext = create_api_key(session, Context(actor="test"), name=f"rl-{role}", role=role)
    return plaintext


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_replicas_share_the_key_window(replicas):  # noqa: ANN001
    first, second = replicas
    headers = {"X-API-Key": new_key(first)}
    with TestClient(first) as one, TestClient(second) as two:
        for i in range(PER_KEY - 1):
            assert one.get("/api/inventory", headers=headers).status_code == 200, i
        assert two.get("/api/inventory", headers=headers).status_code == 200  # the last one left
        over = two.get("/api/inventory", headers=headers)
        error = error_of(over, 429, code="demasiadas_solicitudes")
        assert error["details"] == {"limit": PER_KEY, "window_seconds": 60}
        assert 1 <= int(over.headers["retry-after"]) <= 60
        assert one.get("/api/inventory", headers=headers).status_code == 429


def test_replicas_share_the_ip_window_against_guessing(replicas):  # noqa: ANN001
    first, second = replicas
    with TestClient(first) as one, TestClient(second) as two:
        for i in range(PER_IP):
            client = one if i % 2 else two
            assert client.get("/api/inventory", headers={"X-API-Key": f"mm_beef{i:04d}.adivinanza"}).status_code == 401
        assert one.get("/api/inventory", headers={"X-API-Key": "mm_beef9999.otra"}).status_code == 429
        assert two.get("/api/inventory").status_code == 429


def test_redis_keeps_no_api_key_and_every_window_expires(replicas, store):  # noqa: ANN001
    first, _ = replicas
    key = new_key(first)
    secret = key.split(".", 1)[1]
    with TestClient(first) as client:
        assert client.get("/api/inventory", headers={"X-API-Key": key}).status_code == 200
        assert client.get("/api/inventory", headers={"X-API-Key": key + "x"}).status_code == 401
    names = [name.decode() for name in store.scan_iter(match=PREFIX + "*", count=500)]
    assert any(name.startswith(PREFIX + "key:") for name in names), names
    assert PREFIX + "ip:testclient" in names, names
    for name in names:
        assert secret not in name and key not in name, name
        assert store.get(name).isdigit()
        assert 0 < store.pttl(name) <= 60_000, (name, store.pttl(name))  # never a counter without expiry


def backend_metrics(client) -> dict[str, float]:  # noqa: ANN001
    text = client.get("/metrics").text
    return {"redis": metric_value(text, "minimarket_ratelimit_backend", backend="redis"),
            "memory": metric_value(text, "minimarket_ratelimit_backend", backend="memory"),
            "degraded": metric_value(text, "minimarket_ratelimit_degraded"),
            "fallback_hits": metric_value(text, "minimarket_ratelimit_backend_errors_total")}


def assert_limits_hold(client, key: dict[str, str], label: str) -> None:  # noqa: ANN001
    for i in range(PER_KEY):
        assert client.get("/api/inventory", headers=key).status_code == 200, (label, i)
    assert client.get("/api/inventory", headers=key).status_code == 429, label
    for i in range(PER_IP):
        assert client.get("/api/inventory", headers={"X-API-Key": f"mm_f00d{i:04d}.x"}).status_code == 401, (label, i)
    assert client.get("/api/inventory").status_code == 429, label


def test_redis_unreachable_from_the_start_still_limits_in_memory(database_url):  # noqa: ANN001
    settings = make_settings(database_url, redis_url=f"redis://127.0.0.1:{closed_port()}/0",
                             rate_limit_per_key=PER_KEY, rate_limit_per_ip=PER_IP)
    app = create_app("all", settings)
    try:
        with TestClient(app) as client:
            assert_limits_hold(client, {"X-API-Key": new_key(app)}, "sin Redis")
            metrics = backend_metrics(client)
            health = client.get("/health").json()
    finally:
        app.state.db.dispose()
    assert metrics["memory"] == 1 and metrics["redis"] == 0 and metrics["degraded"] == 1, metrics
    assert metrics["fallback_hits"] >= 1, metrics
    assert health["checks"]["ratelimit"]["status"] == "degraded", health
    assert health["checks"]["ratelimit"]["backend"] == "memory"
    assert "ratelimit" in health["degraded"] and "ratelimit" not in health.get("failing", []), health


def test_a_redis_outage_falls_back_to_memory_and_recovers(database_url, store):  # noqa: ANN001
    proxy = TcpProxy(("127.0.0.1", store.connection_pool.connection_kwargs.get("port", 6379)))
    proxy.start()
    db_index = store.connection_pool.connection_kwargs.get("db", 0)
    settings = make_settings(database_url, redis_url=f"redis://127.0.0.1:{proxy.port}/{db_index}",
                             rate_limit_per_key=PER_KEY, rate_limit_per_ip=PER_IP)
    app = create_app("all", settings)
    try:
        with TestClient(app, client=("192.0.2.90", 40000)) as client:
            key = {"X-API-Key": new_key(app)}
            assert client.get("/api/inventory", headers=key).status_code == 200
            assert backend_metrics(client)["redis"] == 1
            assert client.get("/health").json()["checks"]["ratelimit"] == {"status": "ok", "backend": "redis"}
            assert any(store.scan_iter(match=PREFIX + "ip:*", count=500)) is False  # nothing failed yet

            proxy.stop()  # Redis itself keeps running for everybody else
            _clear(store)
            other = {"X-API-Key": new_key(app)}
            assert_limits_hold(client, other, "durante el corte")
            during = backend_metrics(client)
            assert during["memory"] == 1 and during["degraded"] == 1, during
            health = client.get("/health").json()
            assert health["checks"]["ratelimit"]["status"] == "degraded", health
            assert not list(store.scan_iter(match=PREFIX + "*", count=500))  # counted in memory only

            proxy.start()
            time.sleep(FallbackLimiter.RETRY_SECONDS + 0.2)
            third = {"X-API-Key": new_key(app)}
            assert client.get("/api/inventory", headers=third).status_code == 200
            after = backend_metrics(client)
            assert after["redis"] == 1 and after["memory"] == 0 and after["degraded"] == 0, after
            assert client.get("/health").json()["checks"]["ratelimit"] == {"status": "ok", "backend": "redis"}
            assert list(store.scan_iter(match=PREFIX + "key:*", count=500))  # counting in Redis again
    finally:
        proxy.stop()
        app.state.db.dispose()


def test_the_redis_window_is_atomic_under_concurrency(store):  # noqa: ANN001, ARG001
    limiter = RedisLimiter(REDIS_URL, timeout=5.0)  # 50 connections at once on a loaded machine

    async def burst() -> list[int]:
        try:
            results = await asyncio.gather(*(limiter.hit("key:concurrente", 60) for _ in range(50)))
            return sorted(window.count for window in results)
        finally:
            await limiter.close()

    assert asyncio.run(burst()) == list(range(1, 51))  # every request saw its own count
