"""Rate limiting with Redis: replicas share one window, a Redis outage fails open, and Redis
never holds an API key."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from minimarket.accounts.audit import Context
from minimarket.accounts.keys import create_api_key
from minimarket.apps import create_app
from minimarket.platform.ratelimit import PREFIX, RedisLimiter
from tests.conftest import REDIS_URL, make_settings, need_redis
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


def test_redis_down_fails_open_and_counts_the_error(database_url):  # noqa: ANN001
    settings = make_settings(database_url, redis_url=f"redis://127.0.0.1:{closed_port()}/0",
                             rate_limit_per_key=1, rate_limit_per_ip=1)
    app = create_app("all", settings)
    try:
        with TestClient(app) as client:
            before = metric_value(client.get("/metrics").text, "minimarket_ratelimit_backend_errors_total")
            key = {"X-API-Key": new_key(app)}
            for i in range(3):  # three times the limit of one: served, because nothing can count them
                assert client.get("/api/inventory", headers=key).status_code == 200, i
                assert client.get("/api/inventory").status_code == 401, i
            after = metric_value(client.get("/metrics").text, "minimarket_ratelimit_backend_errors_total")
    finally:
        app.state.db.dispose()
    assert after >= before + 1, (before, after)


def test_the_redis_window_is_atomic_under_concurrency(store):  # noqa: ANN001, ARG001
    limiter = RedisLimiter(REDIS_URL)

    async def burst() -> list[int]:
        try:
            results = await asyncio.gather(*(limiter.hit("key:concurrente", 60) for _ in range(50)))
            return sorted(window.count for window, _ in results)
        finally:
            await limiter.close()

    assert asyncio.run(burst()) == list(range(1, 51))  # every request saw its own count
