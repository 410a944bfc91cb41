"""Resilience under load, with real processes: PostgreSQL cut off mid-load through a TCP proxy the
test controls, and a concurrency soak of retried movements.

What the store relies on: while the database is gone every request fails fast with 503 (never a
500, never a hang), /health names the database within 2 s, the app comes back by itself, and no
write is lost or applied twice: every write that got a 2xx is in the ledger exactly once, and a
write retried with its Idempotency-Key after the outage lands exactly once.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.e2e.servers import Server, StartServer, TcpProxy, measure, via_proxy
from tests.helpers import REDIS_URL, need_redis

RATE_LIMIT = "1000000"  # raised, never off: the limiter stays in the measured path
HEALTH_NAMES_DATABASE_WITHIN = 2.0
FAIL_FAST_SECONDS = 3.0  # far under a client timeout; measured 0.03-1.2 s on a loaded 2-core machine
RECOVERED_WITHIN = 10.0
# The soak is 20,000 movements; CI runs a bounded share of it (SOAK_MOVEMENTS=20000 for the full one).
SOAK_MOVEMENTS = int(os.environ.get("SOAK_MOVEMENTS", "1500"))
SOAK_CLIENTS = 64
SOAK_PRODUCTS = 200
SOAK_BOUND_SECONDS = 120 + SOAK_MOVEMENTS // 20  # room for 20 movements/s on a loaded machine

pytestmark = pytest.mark.timeout(120 + SOAK_BOUND_SECONDS)


@dataclass
class Attempt:
    kind: str  # "write" or "read"
    key: str | None
    started: float
    finished: float
    status: int | None  # None: no answer (transport error or client timeout)
    error: str | None = None
    replayed: bool = False
    body: object = None
    sku: str = ""
    request: dict = field(default_factory=dict)


@dataclass
class Journal:
    attempts: list[Attempt] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, attempt: Attempt) -> None:
        with self.lock:
            self.attempts.append(attempt)


def post_movement(client: httpx.Client, sku: str, body: dict, key: str, journal: Journal,
                  timeout: float | None = None) -> Attempt:
    started = time.monotonic()
    try:
        response = client.post(f"/api/inventory/{sku}/movements", json={**body, "reference": key},
                               headers={"Idempotency-Key": key}, timeout=timeout or client.timeout)
        attempt = Attempt("write", key, started, time.monotonic(), response.status_code,
                          replayed=response.headers.get("idempotent-replayed") == "true", body=response.json(),
                          sku=sku, request=body)
    except httpx.HTTPError as exc:
        attempt = Attempt("write", key, started, time.monotonic(), None, error=type(exc).__name__, sku=sku,
                          request=body)
    journal.add(attempt)
    return attempt


def create_products(server: Server, key: str, count: int, stock: int, prefix: str) -> list[str]:
    skus = [f"{prefix}-{n:03d}" for n in range(1, count + 1)]

    def create(sku: str) -> None:
        with server.client(key) as client:
            r = client.post("/api/inventory", json={"sku": sku, "name": f"Producto {sku}", "cost": "10",
                                                    "price": "20", "initial_stock": stock})
            assert r.status_code == 201, r.text

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(create, skus))
    return skus


def ledger_references(database_url: str, prefix: str) -> Counter:
    """How many ledger rows carry each reference starting with `prefix`, read straight from PostgreSQL."""
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT referencia, count(*) FROM movimientos_stock WHERE referencia LIKE :p "
                                     "GROUP BY referencia"), {"p": f"{prefix}%"}).all()
            negative = conn.scalar(text("SELECT count(*) FROM existencias WHERE cantidad < 0"))
    finally:
        engine.dispose()
    assert negative == 0, f"{negative} existencias negativas"
    return Counter({ref: n for ref, n in rows})


def redis_upstream() -> tuple[str, int]:
    url = make_url(REDIS_URL)
    return url.host or "127.0.0.1", url.port or 6379


def make_url_for_redis(port: int) -> str:
    """The test Redis (same database number) through the proxy on `port`."""
    return make_url(REDIS_URL).set(host="127.0.0.1", port=port).render_as_string(hide_password=False)


def assert_verify_ok(server: Server) -> None:
    result = server.cli("verify")
    assert result.returncode == 0, f"minimarket verify:\n{result.stdout}\n{result.stderr}"


@dataclass
class Probe:
    """One /health answer seen by the watcher: when it was asked, when it came back, what it said."""
    sent: float
    answered: float
    status: int  # 0: no answer
    failing: list


def watch_health(server: Server, stop: threading.Event, seen: list[Probe]) -> None:
    with httpx.Client(base_url=server.base_url, timeout=2, trust_env=False) as client:
        while not stop.is_set():
            sent = time.monotonic()
            try:
                r = client.get("/health", headers={"Connection": "close"})
                seen.append(Probe(sent, time.monotonic(), r.status_code, r.json().get("failing", [])))
            except httpx.HTTPError:
                seen.append(Probe(sent, time.monotonic(), 0, []))
            time.sleep(0.05)


def named_after(health: list[Probe], cut: float, dependency: str) -> tuple[float | None, float]:
    """Seconds from the cut to the first /health answer naming `dependency`, and the bound it must meet:
    HEALTH_NAMES_DATABASE_WITHIN plus the slowest /health round trip before the cut. That round trip is
    what the machine's load adds to any answer, measured in the same test under the same clients: ~0.01 s
    on a quiet machine (the bound stays 2 s), seconds on a 2-core box shared by a whole team."""
    baseline = max((p.answered - p.sent for p in health if p.answered < cut and p.status), default=0.0)
    named = next((p.answered for p in health if p.answered >= cut and p.status == 503 and dependency in p.failing),
                 None)
    return (None if named is None else named - cut), HEALTH_NAMES_DATABASE_WITHIN + baseline


def outage_load(server: Server, key: str, skus: list[str], stop: threading.Event, journal: Journal,
                prefix: str, seed: int) -> None:
    """One client: writes (entrada/salida of 1, each with its own key) and reads, back to back."""
    rng = random.Random(seed)
    with server.client(key, timeout=10) as client:
        while not stop.is_set():
            sku = rng.choice(skus)
            if rng.random() < 0.7:
                body = {"type": rng.choice(["entrada", "salida"]), "quantity": 1}
                attempt = post_movement(client, sku, body, f"{prefix}{uuid.uuid4().hex[:20]}", journal)
            else:
                started = time.monotonic()
                try:
                    status = client.get(f"/api/inventory/{sku}").status_code
                    attempt = Attempt("read", None, started, time.monotonic(), status)
                except httpx.HTTPError as exc:
                    attempt = Attempt("read", None, started, time.monotonic(), None, error=type(exc).__name__)
                journal.add(attempt)
            if attempt.status != 200 and attempt.status != 201:
                time.sleep(0.1)  # a client backs off after a 503 (Retry-After) instead of spinning


def test_database_cut_under_load_fails_fast_recovers_and_loses_nothing(start_server: StartServer, pg_database: str,
                                                                        pg_proxy: TcpProxy) -> None:
    server = start_server(via_proxy(pg_database, pg_proxy), RATE_LIMIT_PER_KEY=RATE_LIMIT)
    pid = server.process.pid
    key = server.create_key("corte", "encargado")
    skus = create_products(server, key, 20, 1000, "CORTE")
    prefix = f"corte-{uuid.uuid4().hex[:6]}-"
    journal, stop, health_stop = Journal(), threading.Event(), threading.Event()
    health: list[Probe] = []
    watcher = threading.Thread(target=watch_health, args=(server, health_stop, health), daemon=True)
    workers = [threading.Thread(target=outage_load, args=(server, key, skus, stop, journal, prefix, n), daemon=True)
               for n in range(8)]
    watcher.start()
    for w in workers:
        w.start()
    time.sleep(1.5)
    cut = time.monotonic()
    pg_proxy.stop()
    time.sleep(3.0)
    back = time.monotonic()
    pg_proxy.start()
    time.sleep(4.0)
    stop.set()
    for w in workers:
        w.join(timeout=30)
    health_stop.set()
    watcher.join(timeout=5)

    # /health names the database within 2 s of the cut (plus what the load adds to any answer), and is
    # green again after it comes back.
    named, bound = named_after(health, cut, "database")
    assert named is not None and named <= bound, \
        f"/health did not name the database within {bound:.2f} s: {named}, {health[-5:]}"
    green = next((p.answered for p in health if p.answered >= back and p.status == 200), None)
    assert green is not None and green - back <= RECOVERED_WITHIN, "/health never came back"

    # While it is gone: answers, all 503, fast; nothing unanswered, no 500.
    during = [a for a in journal.attempts if a.started >= cut + 0.5 and a.finished <= back]
    statuses = Counter(a.status for a in during)
    assert during and all(a.status == 503 for a in during if a.kind == "write"), statuses
    assert all(a.status in (200, 503) for a in during), statuses  # a read may come from the cache
    slowest = max(a.finished - a.started for a in during)
    assert slowest <= FAIL_FAST_SECONDS, f"a request took {slowest:.2f} s while the database was gone"
    assert not [a for a in journal.attempts if a.status is not None and a.status >= 500 and a.status != 503]

    # Back without a restart: the last seconds of load are all 2xx.
    tail = [a for a in journal.attempts if a.started >= back + 2.5]
    assert tail and all(a.status is not None and a.status < 300 for a in tail), Counter(a.status for a in tail)
    assert server.process.poll() is None and server.process.pid == pid

    # Nothing lost, nothing twice: every 2xx write is in the ledger once; the failed ones, retried with
    # their key, land exactly once too.
    writes = [a for a in journal.attempts if a.kind == "write"]
    acknowledged = {a.key for a in writes if a.status is not None and a.status < 300}
    failed = {a.key: a for a in writes if a.key not in acknowledged}
    rows = ledger_references(pg_database, prefix)
    assert acknowledged <= set(rows), f"{len(acknowledged - set(rows))} acknowledged writes missing"
    assert max(rows.values()) == 1, [r for r, n in rows.items() if n > 1][:5]
    retried = Journal()

    def retry(chunk: list[Attempt]) -> list[Attempt]:
        with server.client(key, timeout=10) as client:
            return [post_movement(client, a.sku, a.request, a.key, retried) for a in chunk]

    pending = list(failed.values())
    with ThreadPoolExecutor(max_workers=8) as pool:
        for answers in pool.map(retry, [pending[i::8] for i in range(8)]):
            for again in answers:
                assert again.status is not None and again.status < 300, (again.status, again.body)
    rows = ledger_references(pg_database, prefix)
    assert set(rows) == acknowledged | set(failed) and max(rows.values()) == 1, "a write lost or applied twice"
    replays = sum(a.replayed for a in retried.attempts)  # the database had committed before the answer was lost
    assert_verify_ok(server)
    measure("database cut under load (8 clients)",
            f"/health named it after {named:.2f} s (bound {bound:.2f} s); {len(during)} requests during the cut, "
            f"all 503, slowest {slowest:.2f} s; green {green - back:.2f} s after it came back; {len(acknowledged)} writes 2xx, "
            f"{len(failed)} failed, retried once each ({replays} had been committed: replayed)")


MIX = [("entrada", 25), ("venta", 35), ("salida", 10), ("merma", 5), ("devolucion", 10), ("ajuste", 15)]


def soak_client(server: Server, key: str, skus: list[str], todo: list[int], journal: Journal, prefix: str,
                seed: int) -> None:
    """Sends its share of the movements; some are retried with the same key: after the answer (a lost
    answer), or after giving up on it at once (a client timeout: the first may or may not have run)."""
    rng = random.Random(seed)
    kinds, weights = zip(*MIX)
    with server.client(key, timeout=60) as client:
        for n in todo:
            kind = rng.choices(kinds, weights)[0]
            quantity = rng.randint(1, 5) * (rng.choice([1, -1]) if kind == "ajuste" else 1)
            body, sku, idem = {"type": kind, "quantity": quantity}, rng.choice(skus), f"{prefix}{n}"
            roll = rng.random()
            if roll < 0.05:
                post_movement(client, sku, body, idem, journal, timeout=0.001)
            first = post_movement(client, sku, body, idem, journal)
            if roll > 0.9 or first.status is None:
                again = post_movement(client, sku, body, idem, journal)
                if first.status is not None and first.status < 300:
                    assert again.status == first.status and again.replayed and again.body == first.body, \
                        (first, again)


def test_soak_64_clients_retrying_with_their_keys_keep_the_ledger_exact(start_server: StartServer,
                                                                         pg_database: str) -> None:
    server = start_server(pg_database, RATE_LIMIT_PER_KEY=RATE_LIMIT)
    began = time.monotonic()
    demo = server.cli("demo", "--products", str(SOAK_PRODUCTS), "--days", "2")  # 200 products at once
    assert demo.returncode == 0, demo.stdout + demo.stderr
    key = server.create_key("soak", "deposito")
    with server.client(key) as client:
        skus = [p["sku"] for p in client.get("/api/inventory", params={"limit": 500}).json()["items"]]
        assert len(skus) == SOAK_PRODUCTS
        stocked = client.post("/api/movements", json={"lines": [{"sku": sku, "type": "entrada", "quantity": 30}
                                                                 for sku in skus]})
        assert stocked.status_code in (200, 201), stocked.text
    setup_seconds = time.monotonic() - began
    prefix = f"soak-{uuid.uuid4().hex[:6]}-"
    journal = Journal()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=SOAK_CLIENTS) as pool:
        futures = [pool.submit(soak_client, server, key, skus, list(range(c, SOAK_MOVEMENTS, SOAK_CLIENTS)),
                               journal, prefix, c) for c in range(SOAK_CLIENTS)]
        for future in futures:
            future.result(timeout=SOAK_BOUND_SECONDS)
    seconds = time.monotonic() - started

    answered = [a for a in journal.attempts if a.status is not None]
    statuses = Counter(a.status for a in answered)
    assert set(statuses) <= {200, 201, 409}, statuses  # 409: stock insuficiente for a sale, never a 5xx
    final: dict[str, Attempt] = {}
    for a in sorted(answered, key=lambda a: a.finished):
        final[a.key] = a
    assert len(final) == SOAK_MOVEMENTS
    refused = {k for k, a in final.items() if a.status == 409}
    assert all(final[k].body["error"]["code"] == "stock_insuficiente" for k in refused)
    applied = {k for k, a in final.items() if a.status < 300}
    rows = ledger_references(pg_database, prefix)  # also: no negative stock
    assert set(rows) == applied, (f"{len(applied - set(rows))} applied but missing, "
                                  f"{len(set(rows) - applied)} in the ledger but refused")
    assert max(rows.values()) == 1, [r for r, n in rows.items() if n > 1][:5]
    began = time.monotonic()
    assert_verify_ok(server)
    verify_seconds = time.monotonic() - began
    retries = len(journal.attempts) - SOAK_MOVEMENTS
    measure(f"soak: {SOAK_CLIENTS} clients, {SOAK_MOVEMENTS} movements over {SOAK_PRODUCTS} products",
            f"{seconds:.1f} s ({len(journal.attempts) / seconds:.0f} requests/s, {retries} retries with the same key, "
            f"{len(refused)} sales refused for stock, {sum(a.replayed for a in answered)} replays); demo store and "
            f"key {setup_seconds:.1f} s, verify {verify_seconds:.1f} s")


def test_redis_cut_under_load_keeps_serving_and_loses_nothing(start_server: StartServer, pg_database: str) -> None:
    """Redis (cache, shared rate limit) cut for 3 s under 8 clients: the store keeps answering from the
    database, /health names the cache within 2 s, it recovers by itself, and no write is lost or doubled."""
    need_redis()
    proxy = TcpProxy(redis_upstream())
    proxy.start()
    try:
        server = start_server(pg_database, RATE_LIMIT_PER_KEY=RATE_LIMIT,
                              REDIS_URL=make_url_for_redis(proxy.port))
        key = server.create_key("corte-redis", "encargado")
        skus = create_products(server, key, 10, 1000, "REDIS")
        prefix = f"redis-{uuid.uuid4().hex[:6]}-"
        journal, stop, health_stop = Journal(), threading.Event(), threading.Event()
        health: list[Probe] = []
        threads = [threading.Thread(target=watch_health, args=(server, health_stop, health), daemon=True)]
        threads += [threading.Thread(target=outage_load, args=(server, key, skus, stop, journal, prefix, n),
                                     daemon=True) for n in range(8)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        cut = time.monotonic()
        proxy.stop()
        time.sleep(3.0)
        back = time.monotonic()
        proxy.start()
        time.sleep(4.0)
        stop.set()
        health_stop.set()
        for t in threads:
            t.join(timeout=30)
    finally:
        proxy.stop()

    named, bound = named_after(health, cut, "cache")
    assert named is not None and named <= bound, (named, bound, health[-5:])
    during = [a for a in journal.attempts if cut + 0.5 <= a.started and a.finished <= back]
    statuses = Counter(a.status for a in during)
    assert during and set(statuses) <= {200, 201}, statuses  # served from the database meanwhile
    tail = [a for a in journal.attempts if a.started >= back + 2.5]
    assert tail and all(a.status in (200, 201) for a in tail), Counter(a.status for a in tail)
    green = next((p.answered for p in health if p.answered >= back and p.status == 200), None)
    assert green is not None and green - back <= RECOVERED_WITHIN
    acknowledged = {a.key for a in journal.attempts if a.kind == "write" and a.status in (200, 201)}
    rows = ledger_references(pg_database, prefix)
    assert set(rows) == acknowledged and max(rows.values()) == 1
    assert_verify_ok(server)
    measure("Redis cut under load (8 clients)",
            f"/health named the cache after {named:.2f} s (bound {bound:.2f} s); {len(during)} requests during the cut: "
            f"{dict(statuses)}; green {green - back:.2f} s after it came back; {len(acknowledged)} writes, all in "
            "the ledger once")
