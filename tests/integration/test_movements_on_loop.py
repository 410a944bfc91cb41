"""POST /api/inventory/{sku}/movements recorded on the event loop (stock/movement_on_loop.py, PostgreSQL): the
same answer, rows, audit, metrics and cache bumps as the route, the same refusals (left to the route, with
nothing written), idempotency and the never-oversell rule under concurrency. On SQLite the route records every
movement, and each test checks the same outcome there."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from minimarket.accounts.models import AuditEntry
from minimarket.apps import create_app
from minimarket.platform.idempotency import IdempotencyRecord
from minimarket.stock.models import Movement, ProductStock
from tests.helpers import REDIS_URL, make_settings, need_redis
from tests.integration.helpers import (assert_ledger_clean, create_product, error_of, metric_value, movement_rows,
                                       total_stock)
from tests.integration.test_rate_limit_redis import new_key

URL = "/api/inventory/{}/movements"


@pytest.fixture
def store(database_url: str) -> Iterator[tuple[TestClient, dict[str, str]]]:
    app = create_app("all", make_settings(database_url, rate_limit_per_key=1_000_000))
    with TestClient(app) as client:
        yield client, {"X-API-Key": new_key(app)}
    app.state.db.dispose()


def _on_loop(client: TestClient) -> tuple[float, float]:
    text = client.get("/metrics").text
    return (metric_value(text, "minimarket_stock_movements_on_loop_total", outcome="recorded"),
            metric_value(text, "minimarket_stock_movements_on_loop_total", outcome="route"))


def _postgres(client: TestClient) -> bool:
    return client.app.state.db.aio_writes is not None


def _count(client: TestClient, statement) -> int:  # noqa: ANN001
    with client.app.state.db.read() as session:
        return session.scalar(statement)


def _without_loop(client: TestClient):  # noqa: ANN202
    """The route alone records movements (the gate's write is skipped), to compare with."""
    class Off:
        def __enter__(self):  # noqa: ANN204
            self.saved = client.app.state.db.aio_writes
            client.app.state.db.aio_writes = None

        def __exit__(self, *exc):  # noqa: ANN002, ANN204
            client.app.state.db.aio_writes = self.saved

    return Off()


def test_a_movement_is_answered_and_recorded_as_the_route_does_it(store) -> None:  # noqa: ANN001
    client, admin = store
    for sku in ("LOOP-A", "LOOP-B"):
        create_product(client, admin, sku, cost="100.00", price="150.00", min_stock=4, initial_stock=10)
    body = {"type": "venta", "quantity": 7, "reason": "mostrador", "reference": "T-1"}
    recorded, _ = _on_loop(client)
    moved_before = metric_value(client.get("/metrics").text, "minimarket_stock_movements_total", type="venta")
    fast = client.post(URL.format("loop-a"), headers={**admin, "Idempotency-Key": "k-loop-a"}, json=body)
    assert fast.status_code == 201, fast.text
    assert _on_loop(client)[0] == recorded + (1 if _postgres(client) else 0)
    with _without_loop(client):
        routed = client.post(URL.format("loop-b"), headers={**admin, "Idempotency-Key": "k-loop-b"}, json=body)
    assert routed.status_code == 201, routed.text
    assert fast.headers["content-type"] == routed.headers["content-type"] == "application/json"
    mine, theirs = fast.json(), routed.json()
    assert mine.keys() == theirs.keys()
    different = {"id", "sku", "operation_id", "created_at"}
    assert {k: v for k, v in mine.items() if k not in different} == {k: v for k, v in theirs.items() if k not in different}
    assert mine["sku"] == "LOOP-A" and mine["balance_after"] == "3.000" and mine["unit_price"] == "150.00"
    assert mine["unit_cost"] == "100.00" and mine["actor"] == theirs["actor"]
    text = client.get("/metrics").text
    assert metric_value(text, "minimarket_stock_movements_total", type="venta") == moved_before + 2

    with client.app.state.db.read() as session:
        for answer in (mine, theirs):
            row = session.get(Movement, answer["id"])
            assert row.operation_id == answer["operation_id"] and row.quantity == Decimal("-7")
            audit = session.scalars(select(AuditEntry).where(AuditEntry.entity_id == answer["operation_id"])).one()
            assert audit.action == "stock.movements" and audit.entity == "operacion"
            assert audit.after == {"lines": [{"sku": answer["sku"], "location": answer["location"], "type": "venta",
                                              "quantity": "-7.000", "balance_after": "3.000"}]}
            assert audit.request_id  # the request's id, as the route writes it
        totals = session.scalars(select(ProductStock).order_by(ProductStock.product_id)).all()
        assert [(t.quantity, t.low) for t in totals[-2:]] == [(Decimal("3.000"), True)] * 2  # 3 <= 4: low
        stored = session.scalars(select(IdempotencyRecord).where(IdempotencyRecord.key.like("k:%"))).all()
        assert sorted(r.status_code for r in stored) == [201, 201]
        assert sorted((json.loads(r.response) for r in stored), key=lambda a: a["id"]) == sorted(
            [mine, theirs], key=lambda a: a["id"])  # the answers as sent
    replay = client.post(URL.format("loop-a"), headers={**admin, "Idempotency-Key": "k-loop-a"}, json=body)
    assert replay.status_code == 201 and replay.json() == mine
    assert replay.headers["idempotent-replayed"] == "true"
    assert total_stock(client, admin, "LOOP-A") == 3
    assert_ledger_clean(client.app)


def test_the_same_key_with_another_body_is_refused_and_concurrent_twins_record_once(store) -> None:  # noqa: ANN001
    client, admin = store
    create_product(client, admin, "LOOP-KEY", initial_stock=50)
    headers = {**admin, "Idempotency-Key": "twin-key"}
    answers: list = []

    def send() -> None:
        answers.append(client.post(URL.format("LOOP-KEY"), headers=headers, json={"type": "venta", "quantity": 3}))

    threads = [threading.Thread(target=send) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    assert len({a.text for a in answers}) == 1  # every twin got the one stored answer
    assert _count(client, select(func.count()).select_from(Movement).where(Movement.idempotency_key == "twin-key")) == 1
    assert total_stock(client, admin, "LOOP-KEY") == 47
    other = client.post(URL.format("LOOP-KEY"), headers=headers, json={"type": "venta", "quantity": 4})
    error_of(other, 409, mentions=("twin-key", "otro contenido"))
    healthy = client.post(URL.format("LOOP-KEY"), headers={**admin, "Idempotency-Key": "another-key"},
                          json={"type": "venta", "quantity": 4})
    assert healthy.status_code == 201, healthy.text
    assert total_stock(client, admin, "LOOP-KEY") == 43
    assert_ledger_clean(client.app)


def test_concurrent_sales_of_one_product_never_oversell(store) -> None:  # noqa: ANN001
    client, admin = store
    create_product(client, admin, "LOOP-HOT", initial_stock=10)
    answers: list = []

    def sell(i: int) -> None:
        answers.append(client.post(URL.format("LOOP-HOT"), headers={**admin, "Idempotency-Key": f"hot-{i}"},
                                   json={"type": "venta", "quantity": 1}))

    threads = [threading.Thread(target=sell, args=(i,)) for i in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] * 10 + [409] * 20, statuses
    for refused in (a for a in answers if a.status_code == 409):
        error_of(refused, 409, code="stock_insuficiente", mentions="Stock insuficiente de 'LOOP-HOT'")
    assert total_stock(client, admin, "LOOP-HOT") == 0
    # Each refused key left nothing: it can be used again once there is stock.
    assert _count(client, select(func.count()).select_from(IdempotencyRecord)
                  .where(IdempotencyRecord.key.like("k:%"))) == 10
    client.post(URL.format("LOOP-HOT"), headers=admin, json={"type": "entrada", "quantity": 5})
    refused_key = next(a.request.headers["idempotency-key"] for a in answers if a.status_code == 409)
    retried = client.post(URL.format("LOOP-HOT"), headers={**admin, "Idempotency-Key": refused_key},
                          json={"type": "venta", "quantity": 1})
    assert retried.status_code == 201, retried.text
    assert total_stock(client, admin, "LOOP-HOT") == 4
    assert_ledger_clean(client.app)


def test_movements_in_both_directions_on_a_hot_product_lose_nothing(store) -> None:  # noqa: ANN001
    client, admin = store
    create_product(client, admin, "LOOP-MIX", initial_stock=100)
    answers: list = []

    def move(i: int) -> None:
        body = {"type": "entrada", "quantity": 2} if i % 2 else {"type": "venta", "quantity": 3}
        answers.append(client.post(URL.format("LOOP-MIX"), headers=admin, json=body))

    threads = [threading.Thread(target=move, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers if a.status_code != 201]
    assert total_stock(client, admin, "LOOP-MIX") == 100 + 20 * 2 - 20 * 3
    # In the ledger's order each answer's balance is the one before plus its own change: no update was lost.
    balance = Decimal(100)
    for moved in sorted((a.json() for a in answers), key=lambda m: m["id"]):
        balance += Decimal(moved["quantity"])
        assert Decimal(moved["balance_after"]) == balance, moved
    assert_ledger_clean(client.app)


@pytest.mark.parametrize("path, body, status, mentions", [
    ("LOOP-U", {"type": "venta", "quantity": "1.5"}, 422, "se vende por unidad"),
    ("LOOP-U", {"type": "venta", "quantity": 99}, 409, "Stock insuficiente"),
    ("LOOP-U", {"type": "venta", "quantity": 1, "location": "NOPE"}, 422, "location"),
    ("NO-EXISTE", {"type": "venta", "quantity": 1}, 404, "NO-EXISTE"),
    ("LOOP-U", '{"type": "venta", "quantity": 1e3}', 422, "quantity"),
    ("LOOP-U", {"type": "regalo", "quantity": 1}, 422, "type"),
    ("LOOP-U", {"type": "venta", "quantity": 1, "extra": 1}, 422, "extra"),
    ("LOOP-U", {"type": "ajuste", "quantity": 0}, 422, "ajuste"),
])
def test_a_refused_movement_writes_nothing_and_says_what_the_route_says(store, path, body, status, mentions) -> None:  # noqa: ANN001
    client, admin = store
    create_product(client, admin, "LOOP-U", initial_stock=5)
    rows, audits = movement_rows(client.app), _count(client, select(func.count()).select_from(AuditEntry))
    sent = {"content": body, "headers": {**admin, "Content-Type": "application/json"}} if isinstance(body, str) else {
        "json": body, "headers": admin}
    refused = client.post(URL.format(path), **{**sent, "headers": {**sent["headers"], "Idempotency-Key": "refused"}})
    error_of(refused, status, mentions=mentions)
    with _without_loop(client):
        routed = client.post(URL.format(path), **{**sent, "headers": {**sent["headers"], "Idempotency-Key": "refused-2"}})
    assert (routed.status_code, routed.json()) == (refused.status_code, refused.json())
    assert movement_rows(client.app) == rows
    assert _count(client, select(func.count()).select_from(AuditEntry)) == audits
    assert _count(client, select(func.count()).select_from(IdempotencyRecord)
                  .where(IdempotencyRecord.key.like("k:%"))) == 0
    healthy = client.post(URL.format("LOOP-U"), headers={**admin, "Idempotency-Key": "refused"},
                          json={"type": "venta", "quantity": 2})
    assert healthy.status_code == 201, healthy.text  # the refused key was never stored
    assert total_stock(client, admin, "LOOP-U") == 3
    assert_ledger_clean(client.app)


def test_a_caller_without_the_role_is_refused_before_anything_is_read(store) -> None:  # noqa: ANN001
    client, admin = store
    create_product(client, admin, "LOOP-ROLE", initial_stock=5)
    reader = {"X-API-Key": new_key(client.app, "lectura")}
    recorded, _ = _on_loop(client)
    refused = client.post(URL.format("LOOP-ROLE"), headers=reader, json={"type": "venta", "quantity": 1})
    error_of(refused, 403, mentions="lectura")
    assert _on_loop(client)[0] == recorded
    allowed = client.post(URL.format("LOOP-ROLE"), headers=admin, json={"type": "venta", "quantity": 1})
    assert allowed.status_code == 201, allowed.text
    assert total_stock(client, admin, "LOOP-ROLE") == 4


def test_a_first_movement_at_a_location_and_a_barcode_go_to_the_route(store) -> None:  # noqa: ANN001
    client, admin = store
    create_product(client, admin, "LOOP-NEW", barcode="7790387000016")
    recorded, routed = _on_loop(client)
    first = client.post(URL.format("LOOP-NEW"), headers=admin, json={"type": "entrada", "quantity": 4, "location": "SAL"})
    assert first.status_code == 201 and first.json()["balance_after"] == "4.000", first.text
    by_code = client.post(URL.format("7790387000016"), headers=admin, json={"type": "venta", "quantity": 1,
                                                                             "location": "SAL"})
    assert by_code.status_code == 201 and by_code.json()["sku"] == "LOOP-NEW", by_code.text
    again = client.post(URL.format("LOOP-NEW"), headers=admin, json={"type": "entrada", "quantity": 1, "location": "SAL"})
    assert again.status_code == 201 and again.json()["balance_after"] == "4.000", again.text
    if _postgres(client):  # the first (no balance row there yet) went to the route; the barcode too; the third not
        assert _on_loop(client) == (recorded + 1, routed + 2)
    assert_ledger_clean(client.app)


@pytest.fixture
def replicas(database_url: str) -> Iterator[tuple[TestClient, TestClient, dict[str, str]]]:
    need_redis()
    settings = make_settings(database_url, redis_url=REDIS_URL, rate_limit_per_key=1_000_000)
    apps = [create_app("all", settings), create_app("all", settings)]
    with TestClient(apps[0]) as first, TestClient(apps[1]) as second:
        yield first, second, {"X-API-Key": new_key(apps[0])}
    for app in apps:
        app.state.db.dispose()


@pytest.mark.redis
def test_a_movement_on_one_replica_is_read_at_once_on_the_other(replicas) -> None:  # noqa: ANN001
    a, b, admin = replicas
    create_product(a, admin, "LOOP-FRESH", min_stock=5, initial_stock=8)
    assert total_stock(b, admin, "LOOP-FRESH") == 8
    assert total_stock(b, admin, "LOOP-FRESH") == 8  # kept by b now
    low = b.get("/api/inventory?low_stock=true", headers=admin).json()["items"]
    assert "LOOP-FRESH" not in [p["sku"] for p in low]
    recorded, _ = _on_loop(a)
    sold = a.post(URL.format("LOOP-FRESH"), headers=admin, json={"type": "venta", "quantity": 4})
    assert sold.status_code == 201, sold.text
    assert _on_loop(a)[0] == recorded + (1 if _postgres(a) else 0)
    assert total_stock(b, admin, "LOOP-FRESH") == 4  # b's kept answer was dropped by the bump
    low = b.get("/api/inventory?low_stock=true", headers=admin).json()["items"]
    assert "LOOP-FRESH" in [p["sku"] for p in low]  # and its kept page: the product went below its minimum


def _prepared_on_next_connection(client: TestClient, drop: str | None = None) -> list[str]:
    """The movement's named statements held by the write connection the next movement takes (the pool's most
    recently used); `drop`: one of them deallocated first, as a pooler resetting the session would."""
    async def names() -> list[str]:
        async with client.app.state.db.aio_writes.connection() as conn:
            if drop:
                await conn.execute(f"DEALLOCATE {drop}")
            cursor = await conn.execute("SELECT name FROM pg_prepared_statements WHERE name LIKE 'mm_movement_%' "
                                        "ORDER BY name")
            return [row[0] for row in await cursor.fetchall()]

    return client.portal.call(names)


def test_each_connection_prepares_the_statements_once_and_one_that_lost_them_is_replaced(store) -> None:  # noqa: ANN001
    client, admin = store
    create_product(client, admin, "LOOP-NAMED", initial_stock=10)
    recorded, routed = _on_loop(client)
    for n in range(4):  # one at a time: the same connection every time
        moved = client.post(URL.format("LOOP-NAMED"), headers=admin, json={"type": "venta", "quantity": 1})
        assert moved.status_code == 201 and moved.json()["balance_after"] == f"{9 - n}.000", moved.text
    if _postgres(client):
        assert _on_loop(client) == (recorded + 4, routed)  # prepared by the first, reused by the others
        names = ["mm_movement_" + k for k in ("answer", "audit", "claim", "low", "start", "add")]
        assert _prepared_on_next_connection(client) == sorted(names)
        # A statement gone from the connection: that movement is recorded by the route (nothing half done), the
        # connection is closed, and the next movement prepares a new one.
        assert "mm_movement_start" not in _prepared_on_next_connection(client, drop="mm_movement_start")
        routed_once = client.post(URL.format("LOOP-NAMED"), headers=admin, json={"type": "venta", "quantity": 1})
        assert routed_once.status_code == 201 and routed_once.json()["balance_after"] == "5.000", routed_once.text
        assert _on_loop(client) == (recorded + 4, routed + 1)
        again = client.post(URL.format("LOOP-NAMED"), headers=admin, json={"type": "venta", "quantity": 1})
        assert again.status_code == 201 and again.json()["balance_after"] == "4.000", again.text
        assert _on_loop(client) == (recorded + 5, routed + 1)
        assert _prepared_on_next_connection(client) == sorted(names)
    assert_ledger_clean(client.app)
