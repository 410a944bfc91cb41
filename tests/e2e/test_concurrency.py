"""Concurrent writers against a real server over real HTTP: no oversell, no lost update, one effect per key.

Every scenario runs on PostgreSQL and on the embedded SQLite (`shared_server`, one per backend
for the module: each scenario writes and checks only its own products): PostgreSQL re-checks the conditional UPDATE after taking the row lock,
SQLite queues writers on BEGIN IMMEDIATE; either way the ledger and the balances agree
and `minimarket verify` exits 0.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.e2e.servers import Server, measure

pytestmark = pytest.mark.timeout(180)

CLIENTS = 50


@dataclass
class Answer:
    status: int
    body: Any
    headers: httpx.Headers
    started: float
    finished: float


def fire_together(server: Server, key: str, n: int, request: Callable[[httpx.Client, int], httpx.Response],
                  ) -> tuple[list[Answer], float]:
    """n threads, each with its own warmed-up keep-alive connection, released by one barrier.

    Returns the answers (in worker order) and the wall time from the first request
    sent to the last answer received.
    """
    barrier = threading.Barrier(n, timeout=30)

    def worker(i: int) -> Answer:
        with server.client(key, timeout=60) as client:
            assert client.get("/health/live").status_code == 200  # open the connection before the gate
            barrier.wait()
            started = time.perf_counter()
            response = request(client, i)
            finished = time.perf_counter()
            try:
                body = response.json()
            except ValueError:
                body = response.text
            return Answer(response.status_code, body, response.headers, started, finished)

    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = [pool.submit(worker, i) for i in range(n)]
        answers = [f.result(timeout=120) for f in futures]
    wall = max(a.finished for a in answers) - min(a.started for a in answers)
    return answers, wall


def backend_of(server: Server) -> str:
    return "sqlite" if server.database_url.startswith("sqlite") else "postgresql"


def create_product(client: httpx.Client, sku: str, stock: int | None, **extra: Any) -> dict:
    body = {"sku": sku, "name": f"Producto {sku}", "cost": "100", "price": "250", **extra}
    if stock is not None:
        body["initial_stock"] = stock
    r = client.post("/api/inventory", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def ledger(client: httpx.Client, sku: str) -> list[dict]:
    r = client.get("/api/movements", params={"sku": sku, "limit": 500})
    assert r.status_code == 200, r.text
    assert r.json()["next_cursor"] is None
    return r.json()["items"]


def stock_by_location(client: httpx.Client, sku: str) -> dict[str, Decimal]:
    r = client.get(f"/api/inventory/{sku}")
    assert r.status_code == 200, r.text
    return {loc["location"]: Decimal(loc["quantity"]) for loc in r.json()["locations"]}


def assert_verify_ok(server: Server) -> None:
    result = server.cli("verify")
    assert result.returncode == 0, f"minimarket verify failed:\n{result.stdout}\n{result.stderr}"
    assert "OK" in result.stdout


def assert_chained(rows: list[dict]) -> None:
    """Per location, in ledger order, every balance_after = previous + quantity and never < 0."""
    running: dict[str, Decimal] = defaultdict(Decimal)
    for row in sorted(rows, key=lambda m: m["id"]):
        running[row["location"]] += Decimal(row["quantity"])
        assert Decimal(row["balance_after"]) == running[row["location"]], row
        assert Decimal(row["balance_after"]) >= 0, row


def test_fifty_clients_cannot_oversell(shared_server: Server, shared_key: str) -> None:
    server, key = shared_server, shared_key
    sku = "OVER-1"
    with server.client(key) as client:
        create_product(client, sku, 20)

    def sell_one(client: httpx.Client, i: int) -> httpx.Response:
        return client.post(f"/api/inventory/{sku}/movements",
                           json={"type": "venta" if i % 2 else "salida", "quantity": 1})

    answers, wall = fire_together(server, key, CLIENTS, sell_one)
    statuses = Counter(a.status for a in answers)
    measure(f"oversell 50 concurrent POST movements [{backend_of(server)}]",
            f"{wall:.3f} s wall, statuses {dict(statuses)}")

    assert statuses == {201: 20, 409: 30}, [(a.status, a.body) for a in answers if a.status not in (201, 409)]
    for a in answers:
        if a.status == 409:
            assert a.body["error"]["code"] == "stock_insuficiente", a.body
            assert a.body["error"]["details"]["sku"] == sku
    accepted = sorted(Decimal(a.body["balance_after"]) for a in answers if a.status == 201)
    assert accepted == [Decimal(n) for n in range(20)]  # each unit sold exactly once: 19, 18, …, 0

    with server.client(key) as client:
        r = client.get(f"/api/inventory/{sku}")
        assert r.status_code == 200
        assert Decimal(r.json()["stock"]) == 0
        rows = ledger(client, sku)
    assert len(rows) == 21
    won = Counter(a.body["type"] for a in answers if a.status == 201)
    assert Counter(m["type"] for m in rows) == {"entrada": 1, **won}
    assert sorted(m["id"] for m in rows if m["type"] != "entrada") == sorted(
        a.body["id"] for a in answers if a.status == 201)
    assert_chained(rows)
    assert_verify_ok(server)


def test_concurrent_mixed_batches_keep_balances_exact(shared_server: Server, shared_key: str) -> None:
    server, key = shared_server, shared_key
    skus = ["MIX-1", "MIX-2", "MIX-3"]
    with server.client(key) as client:
        for sku in skus:
            create_product(client, sku, 5, location="DEP")
        r = client.post("/api/movements", json={"lines": [
            {"sku": sku, "type": "entrada", "quantity": 5, "location": "SAL"} for sku in skus]})
        assert r.status_code == 201, r.text
        initial = {sku: stock_by_location(client, sku) for sku in skus}
    assert all(initial[s] == {"DEP": 5, "SAL": 5} for s in skus)

    rng = random.Random(20261127)
    batches: list[list[dict]] = []
    for i in range(CLIENTS):
        lines = []
        for _ in range(rng.randint(1, 4)):
            kind = rng.choices(["entrada", "salida", "venta", "merma"], weights=[4, 3, 2, 1])[0]
            qty = rng.randint(1, 3) if kind == "entrada" else rng.randint(1, 4)
            lines.append({"sku": rng.choice(skus), "type": kind, "quantity": qty, "location": rng.choice(["DEP", "SAL"])})
        batches.append(lines)
    # At least one batch that must pass and one that must be refused, whatever the interleaving.
    batches[0] = [{"sku": s, "type": "entrada", "quantity": 2, "location": loc} for s in skus for loc in ("DEP", "SAL")]
    batches[1] = [{"sku": "MIX-1", "type": "entrada", "quantity": 1, "location": "SAL"},
                  {"sku": "MIX-2", "type": "salida", "quantity": 1000, "location": "DEP"}]

    answers, wall = fire_together(server, key, CLIENTS,
                                  lambda client, i: client.post("/api/movements", json={"lines": batches[i]}))
    statuses = Counter(a.status for a in answers)
    measure(f"mixed 50 concurrent batches [{backend_of(server)}]", f"{wall:.3f} s wall, statuses {dict(statuses)}")

    assert set(statuses) <= {201, 409}, [(a.status, a.body) for a in answers if a.status not in (201, 409)]
    assert answers[0].status == 201 and answers[1].status == 409
    assert statuses[201] >= 2 and statuses[409] >= 1

    expected = {sku: defaultdict(Decimal, initial[sku]) for sku in skus}
    accepted_rows: Counter[str] = Counter()
    for i, a in enumerate(answers):
        if a.status == 409:
            assert a.body["error"]["code"] == "stock_insuficiente", a.body
            continue
        movements = a.body["movements"]
        assert [(m["sku"], m["location"], m["type"]) for m in movements] == [
            (line["sku"], line["location"], line["type"]) for line in batches[i]]
        for m in movements:
            assert Decimal(m["balance_after"]) >= 0, m
            expected[m["sku"]][m["location"]] += Decimal(m["quantity"])
            accepted_rows[m["sku"]] += 1

    with server.client(key) as client:
        for sku in skus:
            final = stock_by_location(client, sku)
            assert final == dict(expected[sku]), sku
            assert all(q >= 0 for q in final.values())
            rows = ledger(client, sku)
            assert len(rows) == 2 + accepted_rows[sku]  # the two opening entradas + every accepted line
            assert_chained(rows)
    assert_verify_ok(server)


def test_same_ticket_from_twenty_threads_sells_once(shared_server: Server, shared_key: str) -> None:
    server, key = shared_server, shared_key
    with server.client(key) as client:
        create_product(client, "TICK-1", 10)
        create_product(client, "TICK-2", 10)
    ticket = f"T-{uuid.uuid4().hex[:10]}"
    sale = {"ticket_id": ticket, "lines": [{"sku": "TICK-1", "quantity": 2},
                                           {"sku": "TICK-2", "quantity": 1, "unit_price": "199.90"}]}

    answers, wall = fire_together(server, key, 20, lambda client, i: client.post("/api/sales", json=sale))
    measure(f"same ticket from 20 threads [{backend_of(server)}]",
            f"{wall:.3f} s wall, statuses {dict(Counter(a.status for a in answers))}")

    assert [a.status for a in answers] == [201] * 20, [(a.status, a.body) for a in answers if a.status != 201]
    assert all(a.body == answers[0].body for a in answers)
    replayed = Counter(a.headers.get("idempotent-replayed") for a in answers)
    assert replayed == {None: 1, "true": 19}
    assert answers[0].body["ticket_id"] == ticket
    assert Decimal(answers[0].body["total"]) == Decimal("699.90")

    with server.client(key) as client:
        assert stock_by_location(client, "TICK-1") == {"DEP": 8}
        assert stock_by_location(client, "TICK-2") == {"DEP": 9}
        r = client.get("/api/movements", params={"reference": f"ticket:{ticket}"})
        assert r.status_code == 200
        assert len(r.json()["items"]) == 2
        # A later retry is still a replay, and the same ticket with other lines is refused.
        again = client.post("/api/sales", json=sale)
        assert again.status_code == 201 and again.headers.get("idempotent-replayed") == "true"
        assert again.json() == answers[0].body
        other = client.post("/api/sales", json={**sale, "lines": [{"sku": "TICK-1", "quantity": 1}]})
        assert other.status_code == 409 and other.json()["error"]["code"] == "idempotencia_conflicto"
    assert_verify_ok(server)


def test_same_idempotency_key_from_twenty_threads_applies_once(shared_server: Server, shared_key: str) -> None:
    server, key = shared_server, shared_key
    sku = "IDEM-1"
    with server.client(key) as client:
        create_product(client, sku, 10)

    # Same key, same body, 20 threads: one effect, 19 replays of the same answer.
    same = str(uuid.uuid4())
    answers, wall = fire_together(server, key, 20, lambda client, i: client.post(
        f"/api/inventory/{sku}/movements", json={"type": "salida", "quantity": 1},
        headers={"Idempotency-Key": same}))
    measure(f"same Idempotency-Key from 20 threads [{backend_of(server)}]",
            f"{wall:.3f} s wall, statuses {dict(Counter(a.status for a in answers))}")
    assert [a.status for a in answers] == [201] * 20, [(a.status, a.body) for a in answers if a.status != 201]
    assert all(a.body == answers[0].body for a in answers)
    assert Counter(a.headers.get("idempotent-replayed") for a in answers) == {None: 1, "true": 19}
    assert answers[0].body["balance_after"] == "9.000"

    # Same key, two different bodies racing: one effect; twins with the winner's body
    # get its answer replayed, the others are refused as a key reused with other content.
    mixed = str(uuid.uuid4())
    answers, _ = fire_together(server, key, 20, lambda client, i: client.post(
        f"/api/inventory/{sku}/movements", json={"type": "salida", "quantity": 1 + i % 2},
        headers={"Idempotency-Key": mixed}))
    assert set(Counter(a.status for a in answers)) <= {201, 409}, [(a.status, a.body) for a in answers]
    fresh = [a for a in answers if a.status == 201 and a.headers.get("idempotent-replayed") is None]
    assert len(fresh) == 1
    winner_qty = fresh[0].body["quantity"]
    for i, a in enumerate(answers):
        body_qty = f"{-(1 + i % 2)}.000"
        if body_qty == winner_qty:
            assert a.status == 201 and a.body == fresh[0].body, a.body
        else:
            assert a.status == 409 and a.body["error"]["code"] == "idempotencia_conflicto", a.body

    with server.client(key) as client:
        rows = ledger(client, sku)
        assert len(rows) == 3  # entrada + one salida per key
        assert stock_by_location(client, sku) == {"DEP": Decimal(9) + Decimal(winner_qty)}
        assert_chained(rows)
    assert_verify_ok(server)
