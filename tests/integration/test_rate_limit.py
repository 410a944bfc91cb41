"""Rate limiting of /api with the in-memory backend, on SQLite and PostgreSQL: 429 past the
window's limit, per key and per IP (failed authentication only: a valid key is never refused on
the IP's account), never on /health or /metrics, off by setting; the key is checked before the body."""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from minimarket.apps import create_app
from minimarket.config import ConfigError
from minimarket.platform.limiter import MemoryLimiter
from tests.helpers import make_settings
from tests.integration.helpers import error_of, metric_value

PER_KEY = 5
PER_IP = 3
GUESS = "mm_dead{:04d}.esta-clave-no-existe"


@pytest.fixture
def settings(database_url: str):  # noqa: ANN201 - overrides conftest's: small limits, memory backend
    return make_settings(database_url, rate_limit_per_key=PER_KEY, rate_limit_per_ip=PER_IP)


@contextmanager
def client_from(app, ip: str):  # noqa: ANN001, ANN201
    with TestClient(app, client=(ip, 40000)) as client:
        yield client


def rejected(client, scope: str) -> float:  # noqa: ANN001
    return metric_value(client.get("/metrics").text, "minimarket_ratelimit_rejected_total", scope=scope)


def assert_limited(response, *, limit: int, window: int = 60, mentions: str) -> None:  # noqa: ANN001
    error = error_of(response, 429, code="demasiadas_solicitudes", mentions=mentions)
    assert error["details"] == {"limit": limit, "window_seconds": window}
    assert 1 <= int(response.headers["retry-after"]) <= window, response.headers["retry-after"]


def test_the_request_past_the_key_limit_gets_429_with_retry_after(client, admin):  # noqa: ANN001
    before = rejected(client, "key")
    for i in range(PER_KEY):
        assert client.get("/api/inventory", headers=admin).status_code == 200, i
    over = client.get("/api/inventory", headers=admin)
    assert_limited(over, limit=PER_KEY, mentions="clave de API")
    assert rejected(client, "key") == before + 1
    # A POST is refused the same way (the limit is per key, not per route).
    assert client.post("/api/inventory", json={"sku": "RL-1", "name": "x"}, headers=admin).status_code == 429


def test_a_refused_request_never_reaches_the_database(app, client, admin, make_key, monkeypatch):  # noqa: ANN001
    other = {"X-API-Key": make_key("lectura")}
    for _ in range(PER_KEY):
        assert client.get("/api/locations", headers=admin).status_code == 200
    opened = []
    real_read = app.state.db.read

    def counting_read():  # noqa: ANN202
        opened.append(1)
        return real_read()

    monkeypatch.setattr(app.state.db, "read", counting_read)
    assert client.get("/api/locations", headers=admin).status_code == 429
    assert opened == []
    assert client.get("/api/locations", headers=other).status_code == 200 and opened  # the probe does reach it


def test_each_key_has_its_own_window(client, make_key):  # noqa: ANN001
    first, second = {"X-API-Key": make_key("admin", "caja-1")}, {"X-API-Key": make_key("lectura", "caja-2")}
    for _ in range(PER_KEY):
        assert client.get("/api/inventory", headers=first).status_code == 200
    assert client.get("/api/inventory", headers=first).status_code == 429
    for i in range(PER_KEY):
        assert client.get("/api/inventory", headers=second).status_code == 200, i
    assert client.get("/api/inventory", headers=second).status_code == 429


def test_guessing_keys_from_one_ip_is_stopped_by_the_ip_limit(app, admin):  # noqa: ANN001
    with client_from(app, "192.0.2.10") as guesser:
        before = rejected(guesser, "ip")
        # Every guess is a new key (its own, empty key window): only the IP window can stop them.
        for i in range(PER_IP):
            assert guesser.get("/api/inventory", headers={"X-API-Key": GUESS.format(i)}).status_code == 401, i
        assert_limited(guesser.get("/api/inventory", headers={"X-API-Key": GUESS.format(99)}),
                       limit=PER_IP, mentions="IP")
        assert guesser.get("/api/inventory").status_code == 429  # nor without a key
        assert rejected(guesser, "ip") == before + 2
    with client_from(app, "192.0.2.11") as neighbour:
        assert neighbour.get("/api/inventory", headers=admin).status_code == 200
        assert neighbour.get("/api/inventory", headers={"X-API-Key": GUESS.format(0)}).status_code == 401


def test_a_full_ip_window_never_refuses_a_valid_key(app, make_key):  # noqa: ANN001
    # Every till of the store behind one NAT address: one misconfigured till fills the IP's window...
    tills = [{"X-API-Key": make_key("deposito", f"caja-{n}")} for n in range(3)]
    with client_from(app, "198.51.100.77") as nat:
        for i in range(PER_IP + 3):
            nat.get("/api/inventory", headers={"X-API-Key": GUESS.format(i)})
        assert nat.get("/api/inventory", headers={"X-API-Key": GUESS.format(50)}).status_code == 429
        assert nat.get("/api/inventory").status_code == 429
        # ...and the good tills keep selling, each up to its own key limit.
        for till in tills:
            for i in range(PER_KEY):
                assert nat.get("/api/inventory", headers=till).status_code == 200, i
            assert_limited(nat.get("/api/inventory", headers=till), limit=PER_KEY, mentions="clave de API")
        # A valid key whose role does not allow the route is a 403, not a failure counted against the IP.
        reader = {"X-API-Key": make_key("lectura", "pantalla")}
        assert nat.post("/api/inventory", json={"sku": "RL-2", "name": "x"}, headers=reader).status_code == 403


def test_requests_without_a_key_count_against_the_ip(app):  # noqa: ANN001
    with client_from(app, "192.0.2.20") as anonymous:
        for i in range(PER_IP):
            assert anonymous.get("/api/categories").status_code == 401, i
        assert_limited(anonymous.get("/api/categories"), limit=PER_IP, mentions="IP")


def test_a_good_key_does_not_spend_the_ip_window(app, admin, make_key):  # noqa: ANN001
    with client_from(app, "192.0.2.30") as till:
        for _ in range(PER_KEY):
            assert till.get("/api/inventory", headers=admin).status_code == 200
        # PER_KEY > PER_IP successful requests left the IP window empty: a typo still gets its 401.
        assert till.get("/api/inventory", headers={"X-API-Key": GUESS.format(1)}).status_code == 401
        reader = {"X-API-Key": make_key("lectura", "pantalla")}
        for _ in range(PER_IP + 1):  # refused by role: the key is valid, so the IP's window is not spent
            assert till.post("/api/inventory", json={"sku": "RL-3", "name": "x"}, headers=reader).status_code == 403
        assert till.get("/api/inventory", headers={"X-API-Key": GUESS.format(2)}).status_code == 401


@contextmanager
def app_with(database_url: str, **overrides):  # noqa: ANN003, ANN201
    app = create_app("all", make_settings(database_url, rate_limit_per_key=PER_KEY, rate_limit_per_ip=PER_IP,
                                          **overrides))
    try:
        yield app
    finally:
        app.state.db.dispose()


def test_forwarded_for_is_ignored_unless_a_proxy_is_named(app):  # noqa: ANN001
    # TRUSTED_PROXIES is empty by default: a local process cannot pose as many clients.
    with client_from(app, "127.0.0.1") as local:
        for i in range(PER_IP):
            r = local.get("/api/inventory", headers={"X-Forwarded-For": f"203.0.113.{i}"})
            assert r.status_code == 401, i
        assert local.get("/api/inventory", headers={"X-Forwarded-For": "203.0.113.99"}).status_code == 429


def test_a_proxy_named_by_host_name_is_trusted_once_it_resolves(database_url):  # noqa: ANN001
    with app_with(database_url, trusted_proxies="localhost") as app, client_from(app, "127.0.0.1") as proxy:
        for i in range(PER_IP):
            assert proxy.get("/api/inventory", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 401, i
        assert proxy.get("/api/inventory", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 429
        assert proxy.get("/api/inventory", headers={"X-Forwarded-For": "203.0.113.8"}).status_code == 401
    # A name that does not resolve trusts nobody (and the app keeps answering).
    with app_with(database_url, trusted_proxies="proxy-que-no-existe.invalid") as app, \
            client_from(app, "127.0.0.1") as local:
        for i in range(PER_IP):
            assert local.get("/api/inventory", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code == 401
        assert local.get("/api/inventory", headers={"X-Forwarded-For": "203.0.113.50"}).status_code == 429


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(database_url):  # noqa: ANN001
    with app_with(database_url, trusted_proxies="127.0.0.1") as app:
        _believed_only_from(app)


def _believed_only_from(app) -> None:  # noqa: ANN001
    with client_from(app, "127.0.0.1") as proxy:
        for i in range(PER_IP):
            r = proxy.get("/api/inventory", headers={"X-Forwarded-For": "203.0.113.7"})
            assert r.status_code == 401, i
        assert proxy.get("/api/inventory", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 429
        # Another shopper behind the same proxy has a window of its own; a forged left part changes nothing.
        assert proxy.get("/api/inventory", headers={"X-Forwarded-For": "203.0.113.8"}).status_code == 401
        forged = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
        assert proxy.get("/api/inventory", headers=forged).status_code == 429
    with client_from(app, "192.0.2.40") as direct:  # not a proxy: its X-Forwarded-For is ignored
        for i in range(PER_IP):
            r = direct.get("/api/inventory", headers={"X-Forwarded-For": f"198.51.100.{i}"})
            assert r.status_code == 401, i
        assert direct.get("/api/inventory", headers={"X-Forwarded-For": "198.51.100.200"}).status_code == 429


def test_health_metrics_and_docs_are_never_limited(client, admin):  # noqa: ANN001
    for _ in range(PER_KEY + PER_IP + 2):
        assert client.get("/health").status_code == 200
        assert client.get("/health/live", headers=admin).status_code == 200
        assert client.get("/metrics").status_code == 200
        assert client.get("/openapi.json", headers={"X-API-Key": GUESS.format(5)}).status_code == 200
    # They spent nothing: the key and the IP windows are still empty.
    assert client.get("/api/inventory", headers=admin).status_code == 200
    assert client.get("/api/inventory").status_code == 401


def test_the_window_resets(database_url):  # noqa: ANN001
    app = create_app("all", make_settings(database_url, rate_limit_per_ip=2, rate_limit_window_seconds=1))
    try:
        with TestClient(app) as client:
            for _attempt in range(5):  # three requests inside one 1 s window; a very slow machine retries
                statuses = [client.get("/api/locations").status_code for _ in range(3)]
                if statuses == [401, 401, 429]:
                    break
                time.sleep(1.1)
            assert statuses == [401, 401, 429], statuses
            deadline = time.monotonic() + 10
            while (r := client.get("/api/locations")).status_code == 429:
                assert r.headers["retry-after"] == "1"
                assert time.monotonic() < deadline, "the window never reset"
                time.sleep(0.1)
            assert r.status_code == 401
    finally:
        app.state.db.dispose()


def test_disabled_by_setting(database_url):  # noqa: ANN001
    app = create_app("all", make_settings(database_url, rate_limit_enabled=False, rate_limit_per_key=1,
                                          rate_limit_per_ip=1))
    try:
        with TestClient(app) as client:
            for i in range(5):
                assert client.get("/api/inventory").status_code == 401, i
                assert client.get("/api/inventory", headers={"X-API-Key": GUESS.format(i)}).status_code == 401
    finally:
        app.state.db.dispose()


def test_malformed_trusted_proxies_are_refused_at_start(database_url):  # noqa: ANN001
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        create_app("all", make_settings(database_url, trusted_proxies="127.0.0.1,nginx/24"))


def test_the_memory_backend_is_bounded_and_counts_exactly_under_threads():
    limiter = MemoryLimiter(max_buckets=100)

    async def many(names: range) -> None:
        for n in names:
            await limiter.hit(f"key:{n}", 60)

    asyncio.run(many(range(1000)))
    assert len(limiter._buckets) == 100  # noqa: SLF001 - the bound is the point of the test

    def worker() -> None:
        asyncio.run(_hammer(limiter, 250))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    counted = asyncio.run(limiter.hit("shared", 60))
    assert counted.count == 8 * 250 + 1


async def _hammer(limiter: MemoryLimiter, times: int) -> None:
    for _ in range(times):
        await limiter.hit("shared", 60)


def test_a_chain_of_trusted_proxies_is_walked_back_to_the_client(database_url):  # noqa: ANN001
    settings = make_settings(database_url, rate_limit_per_ip=PER_IP, trusted_proxies="127.0.0.1, 10.0.0.0/8")
    app = create_app("all", settings)
    try:
        with client_from(app, "127.0.0.1") as edge:
            # One shopper through either of two inner proxies: one window, named by the shopper's IP.
            for i in range(PER_IP):
                hops = f"203.0.113.9, 10.0.0.{2 + i % 2}"
                assert edge.get("/api/inventory", headers={"X-Forwarded-For": hops}).status_code == 401, i
            assert edge.get("/api/inventory", headers={"X-Forwarded-For": "203.0.113.9, 10.0.0.2"}).status_code == 429
            assert edge.get("/api/inventory", headers={"X-Forwarded-For": "203.0.113.10, 10.0.0.2"}).status_code == 401
    finally:
        app.state.db.dispose()


def test_unauthenticated_bodies_are_never_parsed_and_count_against_the_ip(app, admin):  # noqa: ANN001
    big = b'{"sku": "' + b"x" * 880_000 + b'", "name": '  # 0.84 MB of broken JSON
    json_type = {"Content-Type": "application/json"}
    with client_from(app, "192.0.2.60") as flooder:
        before = metric_value(flooder.get("/metrics").text, "minimarket_auth_failures_total", reason="missing")
        for i in range(PER_IP):
            error_of(flooder.post("/api/inventory", content=big, headers=json_type), 401, code="no_autenticado")
        assert_limited(flooder.post("/api/inventory", content=big, headers=json_type), limit=PER_IP, mentions="IP")
        with_guess = {**json_type, "X-API-Key": GUESS.format(7)}
        assert flooder.post("/api/movements", content=big, headers=with_guess).status_code == 429
        after = metric_value(flooder.get("/metrics").text, "minimarket_auth_failures_total", reason="missing")
        assert after == before + PER_IP + 1
        # Only an authenticated caller gets its body read (and its broken JSON explained).
        error_of(flooder.post("/api/inventory", content=big, headers={**json_type, **admin}), 400, code="json_invalido")
    with client_from(app, "192.0.2.61") as guesser:
        for i in range(PER_IP):
            r = guesser.post("/api/inventory", content=big, headers={**json_type, "X-API-Key": GUESS.format(i)})
            error_of(r, 401, code="no_autenticado")
        assert guesser.post("/api/inventory", content=big, headers=json_type).status_code == 429


def test_unknown_api_routes_ask_for_a_key_first(client, admin):  # noqa: ANN001
    error_of(client.get("/api/no-existe"), 401, code="no_autenticado")
    error_of(client.get("/api/no-existe", headers=admin), 404, code="ruta_inexistente")
