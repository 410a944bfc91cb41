"""Cached reads (verified API keys, product answers) are never stale after a committed write: with two
replicas sharing one Redis, in one process without Redis, and through a Redis outage and its recovery."""

from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal

import pytest
import redis
import structlog.testing
from fastapi.testclient import TestClient
from sqlalchemy import event

from minimarket.accounts.audit import Context
from minimarket.accounts.keys import revoke_api_key
from minimarket.api.gate import Caller
from minimarket.apps import create_app
from minimarket.platform.cache import RedisCache
from minimarket.platform.limiter import FallbackLimiter
from tests.e2e.servers import TcpProxy, free_port
from tests.helpers import REDIS_URL, make_settings, need_redis
from tests.integration.helpers import assert_ledger_clean, create_product, metric_value
from tests.integration.test_rate_limit_redis import new_key
from tests.integration.test_redis_batch import sizes_of


def _product(client: TestClient, key: str, sku: str) -> dict:
    response = client.get(f"/api/inventory/{sku}", headers={"X-API-Key": key})
    assert response.status_code == 200, response.text
    return response.json()


def _move(client: TestClient, key: str, sku: str, quantity: int) -> None:
    response = client.post(f"/api/inventory/{sku}/movements", headers={"X-API-Key": key},
                           json={"type": "entrada", "quantity": quantity, "reason": "prueba"})
    assert response.status_code == 201, response.text


def _hits(client: TestClient, name: str = "minimarket_cache_hits_total") -> float:
    text = client.get("/metrics").text
    return sum(metric_value(text, name, backend=b) for b in ("memory", "redis") if f'backend="{b}"' in text)


def _misses(client: TestClient) -> float:
    return _hits(client, "minimarket_cache_misses_total")


def _loop_reads(app) -> list[str] | None:  # noqa: ANN001
    """Record the references the caller gate reads from PostgreSQL on the event loop (db_async); None on
    SQLite, whose misses the route reads in a worker thread."""
    reads = app.state.db.aio
    if reads is None:
        return None
    seen: list[str] = []
    real = reads.mappings

    async def recording(statement, params):  # noqa: ANN001, ANN202
        seen.extend(params["refs"] if "refs" in params else [params["ref"]])  # a turn's misses, or one alone
        return await real(statement, params)

    reads.mappings = recording
    return seen


@pytest.mark.redis
def test_a_write_on_one_replica_is_read_at_once_on_the_other(replicas) -> None:  # noqa: ANN001
    a, b = replicas
    key = new_key(a.app)
    create_product(a, {"X-API-Key": key}, "YERBA-CACHE", price="1000.00", initial_stock=5)
    loop_reads = _loop_reads(b.app)
    assert Decimal(_product(b, key, "YERBA-CACHE")["stock"]) == 5
    before = _hits(b)
    assert Decimal(_product(b, key, "yerba-cache")["stock"]) == 5  # kept: nothing changed
    assert _hits(b) > before, "the second read of an unchanged product is a cache hit"

    _move(a, key, "YERBA-CACHE", 3)  # a stock movement bumps that product's version
    assert Decimal(_product(b, key, "YERBA-CACHE")["stock"]) == 8
    changed = a.patch("/api/inventory/YERBA-CACHE", headers={"X-API-Key": key}, json={"price": "1250.00"})
    assert changed.status_code == 200, changed.text  # any other write bumps the catalogue's version
    assert _product(b, key, "YERBA-CACHE")["price"] == "1250.00"
    if loop_reads is not None:  # PostgreSQL: b read each miss on its event loop (after a's two writes too)
        assert loop_reads == ["YERBA-CACHE", "YERBA-CACHE", "YERBA-CACHE"], loop_reads
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


def _reading(client: TestClient, threads: int, read) -> tuple[threading.Event, list[threading.Thread]]:  # noqa: ANN001
    """`threads` threads calling read() in a loop until the event is set: concurrent requests on one
    replica's event loop, so they share Redis batches."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            read()

    workers = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    return stop, workers


def _stop(stop: threading.Event, workers: list[threading.Thread]) -> None:
    stop.set()
    for worker in workers:
        worker.join(timeout=60)


def _listed(client: TestClient, key: str, sku: str) -> dict:
    response = client.get("/api/inventory", headers={"X-API-Key": key}, params={"q": sku.lower(), "limit": 5})
    assert response.status_code == 200, response.text
    return next(item for item in response.json()["items"] if item["sku"] == sku)


@pytest.mark.redis
@pytest.mark.parametrize("reader", [_product, _listed], ids=["product", "page"])
def test_concurrent_reads_never_see_a_movement_older_than_its_answer(replicas, reader) -> None:  # noqa: ANN001
    """Movements one after another on replica a, six readers at once on replica b (of the product, or of a
    page of the list that shows it): every read that starts after a movement's answer went out shows at
    least that stock, batched or not."""
    a, b = replicas
    key = new_key(a.app)
    create_product(a, {"X-API-Key": key}, "MATE-LOTE", initial_stock=0)
    answered = [Decimal(0)]  # the stock after the last movement whose answer went out
    stale: list[tuple[Decimal, Decimal]] = []
    reads = [0]
    batches = sizes_of(b.app.state.cache.batcher)
    loop_reads = _loop_reads(b.app)
    hits_before = _hits(b)

    def read() -> None:
        floor = answered[0]  # read before the request starts
        seen = Decimal(reader(b, key, "MATE-LOTE")["stock"])
        reads[0] += 1
        if seen < floor:
            stale.append((floor, seen))

    stop, workers = _reading(b, 6, read)
    try:
        for moved in range(1, 31):
            _move(a, key, "MATE-LOTE", 1)
            answered[0] = Decimal(moved)
            time.sleep(0.01)  # a few reads between movements, some of them hits
    finally:
        _stop(stop, workers)
    assert not stale, f"{len(stale)} reads older than an answered movement, e.g. {stale[:3]}"
    assert reads[0] > 60, reads
    assert max(batches) > 1, batches  # reads did share round trips
    assert _hits(b) > hits_before  # and some were answered from what b kept
    if loop_reads is not None and reader is _product:  # PostgreSQL: the misses after movements, on b's event loop
        assert len(loop_reads) >= 10, loop_reads
    assert Decimal(reader(b, key, "MATE-LOTE")["stock"]) == 30
    assert_ledger_clean(a.app)


@pytest.mark.redis
def test_no_request_started_after_a_revocation_passes_on_the_other_replica(replicas) -> None:  # noqa: ANN001
    a, b = replicas
    admin = new_key(a.app)
    create_product(a, {"X-API-Key": admin}, "TE-CLAVE", initial_stock=1)
    doomed = new_key(a.app, "lectura")
    revoked = threading.Event()
    late: list[int] = []
    refused = [0]

    def read() -> None:
        after = revoked.is_set()  # the revocation's answer went out before this request started
        status = b.get("/api/inventory/TE-CLAVE", headers={"X-API-Key": doomed}).status_code
        if after and status != 401:
            late.append(status)
        refused[0] += after and status == 401

    stop, workers = _reading(b, 6, read)
    try:
        time.sleep(0.5)  # b verifies and keeps the key, and the product
        with a.app.state.db.write() as session:  # as Configuración › Claves does it on replica a
            revoke_api_key(session, Context(actor="test"), ref="rl-lectura")
        revoked.set()
        deadline = time.monotonic() + 60  # the first refusal builds the OpenAPI table of route templates
        while refused[0] < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        _stop(stop, workers)
    assert not late, f"{len(late)} requests passed after the revocation: {late[:5]}"
    assert refused[0] >= 10, refused


@pytest.mark.redis
def test_a_kept_product_is_answered_before_the_router_like_the_route_answers_it(replicas) -> None:  # noqa: ANN001
    """The caller gate serves a hit: same status, headers and bytes as the route's answer, no database
    work, the metrics and the log line named by the route template, the caller in the log."""
    a, _ = replicas
    key = new_key(a.app, "lectura")
    create_product(a, {"X-API-Key": new_key(a.app)}, "YERBA-GATE", initial_stock=3)
    checkouts: list[int] = []
    event.listen(a.app.state.db.engine, "checkout", lambda *_: checkouts.append(1))
    miss = a.get("/api/inventory/YERBA-GATE", headers={"X-API-Key": key})  # read (on PostgreSQL by the gate), kept
    kept_before = _hits(a)
    checkouts.clear()
    loop_reads = _loop_reads(a.app)
    with structlog.testing.capture_logs() as logs:
        hit = a.get("/api/inventory/yerba-gate", headers={"X-API-Key": key})
    assert checkouts == [] and not loop_reads, "a kept answer needs no database connection"
    assert _hits(a) >= kept_before + 2  # the key and the product, both from what this process kept (/metrics may add its own)
    assert hit.status_code == miss.status_code == 200
    assert hit.content == miss.content
    assert sorted(hit.headers.keys()) == sorted(miss.headers.keys())
    for name in ("content-type", "cache-control", "content-security-policy", "x-content-type-options"):
        assert hit.headers[name] == miss.headers[name], name
    line = next(entry for entry in logs if entry["event"] == "request")
    assert line["endpoint"] == "/api/inventory/{sku}" and line["status"] == 200, line
    assert line["actor"] == "apikey:rl-lectura", line
    metrics = a.get("/metrics").text
    assert metric_value(metrics, "http_requests_total", service="all", method="GET", endpoint="/api/inventory/{sku}",
                        status="200") >= 2
    # The route is still the documented one; a HEAD, a barcode and an unknown SKU go through it.
    assert "get" in a.get("/openapi.json").json()["paths"]["/api/inventory/{sku}"]
    assert a.head("/api/inventory/YERBA-GATE", headers={"X-API-Key": key}).status_code in (200, 405)
    assert a.get("/api/inventory/NO-EXISTE-GATE", headers={"X-API-Key": key}).status_code == 404
    assert a.get("/api/inventory/YERBA-GATE", headers={"X-API-Key": "mm_00000000.mala"}).status_code == 401


@pytest.mark.redis
def test_a_miss_is_read_on_the_event_loop_on_postgresql_exactly_as_the_route_reads_it(replicas) -> None:  # noqa: ANN001
    """PostgreSQL: the gate reads a miss with the route's statement through psycopg's async API, without a
    pooled sync connection, answers the bytes the route's own read gives and keeps them; a barcode is read
    each time, an unknown reference gets the route's 404. SQLite: the route reads the miss in a thread."""
    from minimarket.stock.inventory import product_detail_by_ref

    a, _ = replicas
    key = {"X-API-Key": new_key(a.app, "lectura")}
    create_product(a, {"X-API-Key": new_key(a.app)}, "YERBA-LOOP", barcode="7790387000016", brand="Playadito",
                   category="Almacén", initial_stock=3)
    assert a.get("/api/locations", headers=key).status_code == 200  # the key, verified and kept
    loop_reads = _loop_reads(a.app)
    checkouts: list[int] = []
    event.listen(a.app.state.db.engine, "checkout", lambda *_: checkouts.append(1))
    with structlog.testing.capture_logs() as logs:
        miss = a.get("/api/inventory/yerba-loop", headers=key)
    if loop_reads is None:
        assert checkouts, "SQLite: the route reads a miss with a pooled connection"
        return
    assert loop_reads == ["yerba-loop"] and checkouts == [], (loop_reads, checkouts)
    with a.app.state.db.lookup() as session:  # what the route's own read answers
        assert miss.content == product_detail_by_ref(session, "yerba-loop").model_dump_json().encode()
    line = next(entry for entry in logs if entry["event"] == "request")
    assert (line["endpoint"], line["status"], line["actor"]) == ("/api/inventory/{sku}", 200, "apikey:rl-lectura")
    hit = a.get("/api/inventory/YERBA-LOOP", headers=key)  # kept under the versions read before the miss
    assert loop_reads == ["yerba-loop"] and hit.content == miss.content
    assert sorted(hit.headers.keys()) == sorted(miss.headers.keys())
    assert hit.headers["content-type"] == miss.headers["content-type"] == "application/json"
    by_barcode = a.get("/api/inventory/7790387000016", headers=key)
    assert by_barcode.content == miss.content and loop_reads[-1] == "7790387000016"
    missing = a.get("/api/inventory/NO-EXISTE-LOOP", headers=key)
    assert missing.status_code == 404 and "NO-EXISTE-LOOP" in missing.json()["error"]["message"]
    assert checkouts, "the 404 is the route's own answer"


@pytest.mark.redis
def test_the_kept_product_is_never_served_to_a_caller_without_the_routes_role(replicas) -> None:  # noqa: ANN001
    from minimarket.stock.inventory_api import kept_product

    a, _ = replicas
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/api/inventory/X", "app": a.app, "state": {}}
    assert kept_product.depends_on(scope) is not None
    outsider = Caller(actor="webhook:alertmanager", principal_id="webhook", role=None)
    assert asyncio.run(kept_product.serve(scope, send, outsider)) is False
    assert sent == []
    for path, method in [("/api/inventory/X/movements", "GET"), ("/api/inventory/", "GET"),
                         ("/api/inventory/X", "PATCH"), ("/api/inventory/" + "X" * 61, "GET")]:
        assert kept_product.depends_on({**scope, "path": path, "method": method}) is None, (path, method)


def test_a_product_is_serialized_exactly_as_the_validated_schema(client, admin) -> None:  # noqa: ANN001
    """The answer is written from the statement's rows without building a ProductDetail (product_reads.detail_body):
    the same bytes as the validated model, for every shape a product's row takes, and what the route answers."""
    from minimarket.stock.inventory import PRODUCT_BY_REF, detail_fields, ref_params
    from minimarket.stock.product_reads import detail_body
    from minimarket.stock.schemas import ProductDetail

    create_product(client, admin, "MATE-SER", name='Mate "Imperial" \\ calabaza ñandú ☕', brand="Pampa",
                   barcode="7790387000016", category="Bazar", supplier="Distribuidora Sur", cost="2500.5",
                   price="4200", vat_rate="10.5", min_stock="2.5", max_stock=40, unit="kg", initial_stock="10.25")
    _move(client, admin["X-API-Key"], "MATE-SER", 3)
    moved = client.post("/api/inventory/MATE-SER/movements", headers=admin,
                        json={"type": "entrada", "quantity": "1.5", "location": "SAL"})
    assert moved.status_code == 201, moved.text
    create_product(client, admin, "NADA-SER")  # no barcode, brand, category, supplier, maximum nor stock
    with client.app.state.db.lookup() as session:
        for ref in ["MATE-SER", "mate-ser ", "7790387000016", "NADA-SER"]:
            rows = session.execute(PRODUCT_BY_REF, ref_params(ref)).mappings().all()
            validated = ProductDetail.model_validate(detail_fields(rows, ref)).model_dump_json().encode()
            assert detail_body(detail_fields(rows, ref)) == validated, ref
            answered = client.get(f"/api/inventory/{ref}", headers=admin)
            assert answered.status_code == 200 and answered.content == validated, ref
    mate = ProductDetail.model_validate_json(client.get("/api/inventory/MATE-SER", headers=admin).content)
    assert [(x.location, x.quantity) for x in mate.locations] == [("DEP", Decimal("13.25")), ("SAL", Decimal("1.5"))]
    assert (mate.stock, mate.vat_rate, str(mate.cost)) == (Decimal("14.750"), Decimal("10.5"), "2500.50")


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

            assert Decimal(_product(a, key, "FIDEOS-CACHE")["stock"]) == 4  # kept by a
            proxy.stop()
            _move(a, key, "FIDEOS-CACHE", 6)  # committed; its bump cannot reach Redis yet
            hits, misses = _hits(a), _misses(a)
            for _ in range(3):
                assert Decimal(_product(a, key, "FIDEOS-CACHE")["stock"]) == 10  # from the database
            assert _hits(a) == hits and _misses(a) >= misses + 3  # nothing served from what a kept
            health = a.get("/health")
            assert health.status_code == 503 and health.json()["failing"] == ["cache"], health.text

            proxy.start()
            assert a.get("/health").status_code == 200
            # a's first use of Redis sends the bump it owes; from then on every replica reads the write.
            assert Decimal(_product(a, key, "FIDEOS-CACHE")["stock"]) == 10
            assert Decimal(_product(b, key, "FIDEOS-CACHE")["stock"]) == 10
            hits = _hits(a)
            time.sleep(FallbackLimiter.RETRY_SECONDS + 0.2)  # past the pauses after a failure: a reads versions again
            assert Decimal(_product(a, key, "FIDEOS-CACHE")["stock"]) == 10
            assert Decimal(_product(a, key, "FIDEOS-CACHE")["stock"]) == 10
            assert _hits(a) > hits, "a keeps and serves again once Redis answers"
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
