"""Cached reads (verified API keys, product answers) are never stale after a committed write: with two
replicas sharing one Redis, in one process without Redis, and through a Redis outage and its recovery."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
import redis
from fastapi.testclient import TestClient

from minimarket.accounts.audit import Context
from minimarket.accounts.keys import revoke_api_key
from minimarket.apps import create_app
from minimarket.platform.cache import RedisCache
from tests.e2e.servers import TcpProxy, free_port
from tests.helpers import REDIS_URL, make_settings, need_redis
from tests.integration.helpers import assert_ledger_clean, create_product, metric_value
from tests.integration.test_rate_limit_redis import new_key


def _product(client: TestClient, key: str, sku: str) -> dict:
    response = client.get(f"/api/inventory/{sku}", headers={"X-API-Key": key})
    assert response.status_code == 200, response.text
    return response.json()


def _move(client: TestClient, key: str, sku: str, quantity: int) -> None:
    response = client.post(f"/api/inventory/{sku}/movements", headers={"X-API-Key": key},
                           json={"type": "entrada", "quantity": quantity, "reason": "prueba"})
    assert response.status_code == 201, response.text


def _hits(client: TestClient) -> float:
    text = client.get("/metrics").text
    return sum(metric_value(text, "minimarket_cache_hits_total", backend=b) for b in ("memory", "redis")
               if f'backend="{b}"' in text)


@pytest.fixture
def replicas(database_url: str) -> Iterator[tuple[TestClient, TestClient]]:
    """Two app instances (each its own in-process cache) on one database and one Redis."""
    need_redis()
    settings = make_settings(database_url, redis_url=REDIS_URL)
    apps = [create_app("all", settings), create_app("all", settings)]
    with TestClient(apps[0]) as first, TestClient(apps[1]) as second:
        yield first, second
    for app in apps:
        app.state.db.dispose()


@pytest.mark.redis
def test_a_write_on_one_replica_is_read_at_once_on_the_other(replicas) -> None:  # noqa: ANN001
    a, b = replicas
    key = new_key(a.app)
    create_product(a, {"X-API-Key": key}, "YERBA-CACHE", price="1000.00", initial_stock=5)
    assert Decimal(_product(b, key, "YERBA-CACHE")["stock"]) == 5
    before = _hits(b)
    assert Decimal(_product(b, key, "yerba-cache")["stock"]) == 5  # kept: nothing changed
    assert _hits(b) > before, "the second read of an unchanged product is a cache hit"

    _move(a, key, "YERBA-CACHE", 3)  # a stock movement bumps that product's version
    assert Decimal(_product(b, key, "YERBA-CACHE")["stock"]) == 8
    changed = a.patch("/api/inventory/YERBA-CACHE", headers={"X-API-Key": key}, json={"price": "1250.00"})
    assert changed.status_code == 200, changed.text  # any other write bumps the catalogue's version
    assert _product(b, key, "YERBA-CACHE")["price"] == "1250.00"
    assert_ledger_clean(a.app)


@pytest.mark.redis
def test_a_key_revoked_on_one_replica_is_refused_by_the_other_at_once(replicas) -> None:  # noqa: ANN001
    a, b = replicas
    doomed = new_key(a.app, "lectura")
    assert b.get("/api/inventory", headers={"X-API-Key": doomed}).status_code == 200  # verified and kept by b
    assert b.get("/api/inventory", headers={"X-API-Key": doomed}).status_code == 200
    with a.app.state.db.write() as session:  # as Configuración › Claves does it on replica a
        revoke_api_key(session, Context(actor="test"), ref="rl-lectura")
    refused = b.get("/api/inventory", headers={"X-API-Key": doomed})
    assert refused.status_code == 401, refused.text


def test_one_process_without_redis_keeps_nothing_and_reads_fresh(client, admin) -> None:  # noqa: ANN001
    """Without Redis no other process (the CLI, another service) could say what it changed: no cache."""
    key = admin["X-API-Key"]
    assert not client.app.state.key_cache.enabled and not client.app.state.product_cache.enabled
    create_product(client, admin, "ARROZ-CACHE", initial_stock=2)
    assert Decimal(_product(client, key, "ARROZ-CACHE")["stock"]) == 2
    _move(client, key, "ARROZ-CACHE", 1)
    assert Decimal(_product(client, key, "ARROZ-CACHE")["stock"]) == 3
    assert client.patch("/api/inventory/ARROZ-CACHE", headers=admin, json={"name": "Arroz largo fino"}).status_code == 200
    assert _product(client, key, "ARROZ-CACHE")["name"] == "Arroz largo fino"


@pytest.mark.redis
def test_a_redis_outage_serves_from_the_database_and_recovers(database_url: str) -> None:
    need_redis()
    store = redis.Redis.from_url(REDIS_URL)
    port = store.connection_pool.connection_kwargs.get("port", 6379)
    db_index = store.connection_pool.connection_kwargs.get("db", 0)
    store.close()
    proxy = TcpProxy(("127.0.0.1", port))
    proxy.start()
    through_proxy = make_settings(database_url, redis_url=f"redis://127.0.0.1:{proxy.port}/{db_index}",
                                  health_cache_seconds=0)
    apps = [create_app("all", through_proxy), create_app("all", make_settings(database_url, redis_url=REDIS_URL))]
    try:
        with TestClient(apps[0]) as a, TestClient(apps[1]) as b:
            key = new_key(a.app)
            create_product(a, {"X-API-Key": key}, "FIDEOS-CACHE", initial_stock=4)
            assert Decimal(_product(a, key, "FIDEOS-CACHE")["stock"]) == 4
            assert Decimal(_product(b, key, "FIDEOS-CACHE")["stock"]) == 4  # b keeps it; b never loses Redis

            proxy.stop()
            _move(a, key, "FIDEOS-CACHE", 6)  # committed; its bump cannot reach Redis yet
            assert Decimal(_product(a, key, "FIDEOS-CACHE")["stock"]) == 10  # from the database
            health = a.get("/health")
            assert health.status_code == 503 and health.json()["failing"] == ["cache"], health.text

            proxy.start()
            assert a.get("/health").status_code == 200
            # a's first use of Redis sends the bump it owes; from then on every replica reads the write.
            assert Decimal(_product(a, key, "FIDEOS-CACHE")["stock"]) == 10
            assert Decimal(_product(b, key, "FIDEOS-CACHE")["stock"]) == 10
    finally:
        proxy.stop()
        for app in apps:
            app.state.db.dispose()


@pytest.mark.parametrize("seconds, second_status", [(30, 200), (0, 503)])
def test_health_answers_from_its_last_check_for_health_cache_seconds(database_url: str, seconds: float,
                                                                     second_status: int) -> None:
    app = create_app("all", make_settings(database_url, health_cache_seconds=seconds))
    try:
        with TestClient(app) as client:
            assert client.get("/health").status_code == 200
            app.state.cache = RedisCache(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
            assert client.get("/health").status_code == second_status
    finally:
        app.state.db.dispose()
