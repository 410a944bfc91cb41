"""What /metrics reports is the store's real state, on SQLite and PostgreSQL.

Stock gauges equal what the inventory API's own filters count; health gauges follow the real
database and Redis (and drop to 0, never to a 500, when they are gone); sales, ledger, backup,
certificate, memory and build gauges follow what actually happened. Also the label contract the
alert rules and dashboards rely on.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from cryptography import x509
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

import minimarket
from minimarket.store_settings import StoreSetting
from minimarket.apps import create_app
from minimarket.config import Settings
from minimarket.ops.tls import generate_tls_material
from minimarket.ops.store_metrics import stock_cache_key
from minimarket.store_settings import LAST_BACKUP
from minimarket.stock.verify import record_verification, verify_ledger
from minimarket.types import utcnow
from tests.helpers import REDIS_URL, make_settings, need_redis
from tests.integration.helpers import create_product, error_of, metric_value

STOCK_GAUGES = ("minimarket_products_active", "minimarket_products_below_minimum", "minimarket_products_out_of_stock")
CLI_TIMEOUT = 60


# --- helpers ----------------------------------------------------------------------------------------


def scrape(client: TestClient) -> str:
    r = client.get("/metrics")
    assert r.status_code == 200, r.text[:500]
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


def fresh_scrape(client: TestClient) -> str:
    """A scrape that recomputes the stock gauges instead of serving the 15 s cached summary."""
    client.app.state.cache.delete(stock_cache_key(client.app.state.db.url))
    return scrape(client)


def samples(exposition: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [(dict(s.labels), s.value) for family in text_string_to_metric_families(exposition)
            for s in family.samples if s.name == name]


def value(exposition: str, name: str, **labels: str) -> float | None:
    """The one sample of `name` with these labels, None when there is none."""
    found = [v for got, v in samples(exposition, name) if all(got.get(k) == w for k, w in labels.items())]
    assert len(found) <= 1, f"{name}{labels} matches {len(found)} samples"
    return found[0] if found else None


def stock_gauges(exposition: str) -> dict[str, float | None]:
    return {name: value(exposition, name) for name in STOCK_GAUGES}


def api_count(client: TestClient, headers: dict[str, str], **filters: str) -> int:
    """How many products the inventory list returns with these filters (all pages)."""
    count, cursor = 0, None
    for _ in range(100):
        params = {**filters, "limit": "500", **({"cursor": cursor} if cursor else {})}
        r = client.get("/api/inventory", params=params, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        count += len(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return count
    raise AssertionError("inventory pagination did not end")


def closed_port() -> int:
    """A loopback port nothing listens on (bound to port 0 and released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def registry_value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def cli_env(database_url: str) -> dict[str, str]:
    fields = {name.lower() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.lower() not in fields and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(DATABASE_URL=database_url, NO_COLOR="1", TERM="dumb", COLUMNS="200")
    return env


def run_cli_verify(database_url: str, cwd: Path) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "minimarket"
    command = [str(script)] if script.exists() else [
        sys.executable, "-c", "import sys; from minimarket.cli.main import app; sys.exit(app(prog_name='minimarket'))"]
    try:
        return subprocess.run([*command, "verify"], env=cli_env(database_url), cwd=cwd, capture_output=True,
                              text=True, timeout=CLI_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"`minimarket verify` did not finish within {CLI_TIMEOUT} s: {exc.stdout} {exc.stderr}")


# --- stock gauges -----------------------------------------------------------------------------------


def build_store(client: TestClient, headers: dict[str, str]) -> dict[str, int]:
    """Products covering every case; returns the counts the gauges must report."""
    create_product(client, headers, "OK-1", min_stock=5, initial_stock=10)           # above its minimum
    create_product(client, headers, "AT-MIN", min_stock=5, initial_stock=5)          # at the minimum: below
    create_product(client, headers, "LOW-1", min_stock=5, initial_stock=2)           # below
    create_product(client, headers, "NO-STOCK", min_stock=3)                         # never stocked: below, out
    create_product(client, headers, "ZERO-MIN")                                      # 0 ≤ 0: below, out
    create_product(client, headers, "SOLD-OUT", min_stock=1, initial_stock=2)        # sold to 0: below, out
    for _ in range(2):
        assert client.post("/api/inventory/SOLD-OUT/movements", json={"type": "venta", "quantity": 1},
                           headers=headers).status_code == 201
    create_product(client, headers, "QUESO", unit="kg", min_stock="0.500", initial_stock="0.250")  # below
    # Stock spread over two locations counts as its sum: 3 > 2, not "1 ≤ 2 at DEP".
    create_product(client, headers, "SPLIT", min_stock=2, initial_stock=3)
    assert client.post("/api/transfers", headers=headers, json={
        "from_location": "DEP", "to_location": "SAL", "lines": [{"sku": "SPLIT", "quantity": 2}]}).status_code == 201
    # Deactivated products (one empty, one stocked) count nowhere.
    create_product(client, headers, "GONE-1", min_stock=5)
    create_product(client, headers, "GONE-2", initial_stock=7)
    for sku in ("GONE-1", "GONE-2"):
        assert client.delete(f"/api/inventory/{sku}", headers=headers).status_code == 200
    return {"minimarket_products_active": 8, "minimarket_products_below_minimum": 6,
            "minimarket_products_out_of_stock": 3}


def test_stock_gauges_equal_what_the_inventory_filters_count(client, admin):
    empty = fresh_scrape(client)
    assert stock_gauges(empty) == dict.fromkeys(STOCK_GAUGES, 0.0), "an empty store reports zeros, not nothing"

    expected = build_store(client, admin)
    from_api = {
        "minimarket_products_active": api_count(client, admin),
        "minimarket_products_below_minimum": api_count(client, admin, low_stock="true"),
        "minimarket_products_out_of_stock": api_count(client, admin, out_of_stock="true"),
    }
    assert from_api == expected, "the fixture store is not what this test assumes"
    assert stock_gauges(fresh_scrape(client)) == {k: float(v) for k, v in expected.items()}


def test_stock_gauges_are_cached_for_fifteen_seconds(client, admin):
    assert stock_gauges(fresh_scrape(client))["minimarket_products_active"] == 0
    create_product(client, admin, "NEW-1", initial_stock=1)
    assert stock_gauges(scrape(client))["minimarket_products_active"] == 0, "served from the cached summary"
    assert client.app.state.cache.get_json(stock_cache_key(client.app.state.db.url)) == {"active": 0, "below_minimum": 0, "out_of_stock": 0}
    assert stock_gauges(fresh_scrape(client))["minimarket_products_active"] == 1
    # A new app (new in-process cache) computes it again.
    other = create_app("all", client.app.state.settings)
    try:
        with TestClient(other) as other_client:
            create_product(client, admin, "NEW-2")
            assert stock_gauges(scrape(other_client)) == {"minimarket_products_active": 2.0,
                                                          "minimarket_products_below_minimum": 1.0,
                                                          "minimarket_products_out_of_stock": 1.0}
    finally:
        other.state.db.dispose()


def test_cache_counters_count_the_scrape_miss_then_the_hit(client):
    client.app.state.cache.delete(stock_cache_key(client.app.state.db.url))
    misses, hits = (registry_value(f"minimarket_cache_{kind}_total", backend="memory") for kind in ("misses", "hits"))
    scrape(client)  # nothing cached: one miss, the summary is stored
    assert registry_value("minimarket_cache_misses_total", backend="memory") == misses + 1
    assert registry_value("minimarket_cache_hits_total", backend="memory") == hits
    scrape(client)  # within 15 s: one hit
    assert registry_value("minimarket_cache_misses_total", backend="memory") == misses + 1
    assert registry_value("minimarket_cache_hits_total", backend="memory") == hits + 1
    exposed = scrape(client)  # and /metrics shows them (this scrape's own hit may or may not be included yet)
    assert metric_value(exposed, "minimarket_cache_misses_total", backend="memory") == misses + 1
    assert hits + 1 <= metric_value(exposed, "minimarket_cache_hits_total", backend="memory") <= hits + 2


# --- health gauges ----------------------------------------------------------------------------------


def test_database_up_and_probe_latency(client):
    exposition = scrape(client)
    assert value(exposition, "minimarket_database_up", service="all") == 1
    latency = value(exposition, "minimarket_database_query_seconds", service="all")
    assert latency is not None and 0 < latency < 5
    assert value(exposition, "minimarket_cache_up", service="all", backend="memory") == 1


def test_an_unreachable_database_reads_as_down_without_breaking_metrics():
    url = f"postgresql+psycopg://minimarket:pw-q7Zk3x@127.0.0.1:{closed_port()}/minimarket"
    app = create_app("all", make_settings(url))
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            for _ in range(2):  # a second scrape must not find a half-written cache entry either
                started = time.monotonic()
                r = client.get("/metrics")
                assert time.monotonic() - started < 10, "the scrape waited on the dead database"
                assert r.status_code == 200, r.text[:500]
                exposition = r.text
                assert value(exposition, "minimarket_database_up", service="all") == 0
                assert value(exposition, "minimarket_database_query_seconds", service="all") is None
                for name in (*STOCK_GAUGES, "minimarket_ledger_mismatches",
                             "minimarket_backup_last_success_timestamp_seconds"):
                    assert samples(exposition, name) == [], f"{name} reported without a database"
                # What does not need the database is still there.
                assert value(exposition, "minimarket_cache_up", service="all", backend="memory") == 1
                assert value(exposition, "minimarket_memory_usage_bytes") > 0
                assert value(exposition, "minimarket_build_info", service="all",
                             version=minimarket.__version__) == 1
                assert "pw-q7Zk3x" not in exposition  # the password never reaches the exposition
            assert app.state.cache.get_json(stock_cache_key(app.state.db.url)) is None
            assert client.get("/health").status_code == 503
    finally:
        app.state.db.dispose()


def test_cache_up_follows_real_redis(database_url):
    need_redis()
    redis.Redis.from_url(REDIS_URL).delete("minimarket:" + stock_cache_key(database_url))  # left by an earlier run
    app = create_app("all", make_settings(database_url, redis_url=REDIS_URL))
    try:
        with TestClient(app) as client:
            misses = registry_value("minimarket_cache_misses_total", backend="redis")
            hits = registry_value("minimarket_cache_hits_total", backend="redis")
            exposition = scrape(client)
            assert value(exposition, "minimarket_cache_up", service="all", backend="redis") == 1
            assert value(exposition, "minimarket_cache_up", service="all", backend="memory") is None
            assert stock_gauges(exposition)["minimarket_products_active"] == 0
            scrape(client)
            assert registry_value("minimarket_cache_misses_total", backend="redis") == misses + 1
            assert registry_value("minimarket_cache_hits_total", backend="redis") == hits + 1
    finally:
        app.state.db.dispose()
        app.state.cache.close()
        redis.Redis.from_url(REDIS_URL).delete("minimarket:" + stock_cache_key(database_url))


def test_cache_up_is_zero_when_redis_is_unreachable(database_url):
    app = create_app("all", make_settings(database_url, redis_url=f"redis://127.0.0.1:{closed_port()}/15"))
    try:
        with TestClient(app) as client:
            misses = registry_value("minimarket_cache_misses_total", backend="redis")
            started = time.monotonic()
            exposition = scrape(client)
            assert time.monotonic() - started < 10
            assert value(exposition, "minimarket_cache_up", service="all", backend="redis") == 0
            assert value(exposition, "minimarket_database_up", service="all") == 1
            # Without the cache the gauges are computed every scrape (each one a miss), not dropped.
            assert stock_gauges(exposition) == dict.fromkeys(STOCK_GAUGES, 0.0)
            scrape(client)
            assert registry_value("minimarket_cache_misses_total", backend="redis") == misses + 2
    finally:
        app.state.db.dispose()
        app.state.cache.close()


# --- sales ------------------------------------------------------------------------------------------


def sales_totals(exposition: str) -> tuple[float, float]:
    return (metric_value(exposition, "minimarket_sales_tickets_total"),
            metric_value(exposition, "minimarket_sales_revenue_pesos_total"))


def test_sales_counters_count_each_committed_ticket_once(client, admin):
    create_product(client, admin, "YERBA", price="4200.50", initial_stock=10)
    create_product(client, admin, "QUESO", unit="kg", price="12000.00", initial_stock="2.000")
    tickets, revenue = sales_totals(scrape(client))

    body = {"ticket_id": "0001-00000001", "lines": [{"sku": "YERBA", "quantity": 2},
                                                    {"sku": "QUESO", "quantity": "0.333", "unit_price": "11999.99"}]}
    first = client.post("/api/sales", json=body, headers=admin)
    assert first.status_code == 201, first.text
    total = Decimal(first.json()["total"])
    assert total > 0
    after = sales_totals(scrape(client))
    assert after[0] == tickets + 1
    assert after[1] == pytest.approx(revenue + float(total), abs=1e-6)

    replay = client.post("/api/sales", json=body, headers=admin)
    assert replay.status_code == 201 and replay.headers.get("Idempotent-Replayed") == "true"
    error_of(client.post("/api/sales", headers=admin, json={
        "ticket_id": "0001-00000002", "lines": [{"sku": "YERBA", "quantity": 1}, {"sku": "QUESO", "quantity": 50}]}),
        409, code="stock_insuficiente")
    error_of(client.post("/api/sales", headers=admin, json={**body, "lines": [{"sku": "YERBA", "quantity": 1}]}),
             409, mentions="0001-00000001")  # same ticket, different content
    assert sales_totals(scrape(client)) == after, "a replayed or refused ticket moved the sales counters"

    second = client.post("/api/sales", headers=admin, json={
        "ticket_id": "0001-00000002", "lines": [{"sku": "YERBA", "quantity": 1}]})
    assert second.status_code == 201, second.text
    final = sales_totals(scrape(client))
    assert final[0] == tickets + 2
    assert final[1] == pytest.approx(revenue + float(total + Decimal(second.json()["total"])), abs=1e-6)


# --- ledger verification and backups -----------------------------------------------------------------


def verify_and_record(app) -> int:  # noqa: ANN001
    with app.state.db.read() as session:
        report = verify_ledger(session)
    with app.state.db.write() as session:
        record_verification(session, report)
    return len(report.mismatches)


def tamper(app, skus: list[str], delta: int) -> None:  # noqa: ANN001
    """Change cached balances behind the ledger's back (what a stray manual UPDATE would do)."""
    with app.state.db.write() as session:
        for sku in skus:
            changed = session.execute(text(
                "UPDATE existencias SET cantidad = cantidad + :delta "
                "WHERE producto_id = (SELECT id FROM productos WHERE sku = :sku)"), {"delta": delta, "sku": sku})
            assert changed.rowcount == 1, sku


def test_ledger_mismatches_follow_minimarket_verify(client, admin, app, database_url, tmp_path):
    exposition = scrape(client)
    assert samples(exposition, "minimarket_ledger_mismatches") == [], "no verify has run yet"
    assert samples(exposition, "minimarket_ledger_last_verify_timestamp_seconds") == []

    for sku in ("YERBA", "AZUCAR", "ARROZ"):
        create_product(client, admin, sku, initial_stock=4)
    before = time.time()
    assert verify_and_record(app) == 0
    exposition = scrape(client)
    assert value(exposition, "minimarket_ledger_mismatches") == 0
    assert before - 1 <= value(exposition, "minimarket_ledger_last_verify_timestamp_seconds") <= time.time() + 1

    tamper(app, ["YERBA", "ARROZ"], +1)
    assert value(scrape(client), "minimarket_ledger_mismatches") == 0, "the gauge is the last verify, not live"
    result = run_cli_verify(database_url, tmp_path)  # the operator's command records its result too
    assert result.returncode == 1, result.stdout + result.stderr
    assert value(scrape(client), "minimarket_ledger_mismatches") == 2

    tamper(app, ["YERBA", "ARROZ"], -1)
    assert verify_and_record(app) == 0
    assert value(scrape(client), "minimarket_ledger_mismatches") == 0


def test_backup_timestamp_is_zero_until_a_backup_is_recorded(client, app):
    assert value(scrape(client), "minimarket_backup_last_success_timestamp_seconds") == 0
    finished = 1_767_225_600.5  # 2026-01-01T00:00:00.5Z
    with app.state.db.write() as session:
        session.add(StoreSetting(key=LAST_BACKUP, value=str(finished), updated_at=utcnow()))
    assert value(scrape(client), "minimarket_backup_last_success_timestamp_seconds") == finished


# --- certificates, memory, build --------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_30_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA and its leaves valid 30 days, made once for both backends (RSA keys take seconds to make)."""
    tls = tmp_path_factory.mktemp("tls")
    generate_tls_material(tls, days=30)
    return tls


def test_certificate_expiry_is_the_not_after_of_each_configured_file(database_url, tls_30_days):
    tls = tls_30_days
    files = [tls / "prometheus.crt", tls / "alertmanager.crt", tls / "no-existe.crt", tls / "prometheus.key"]
    app = create_app("all", make_settings(database_url, tls_cert_files=",".join(str(f) for f in files)))
    try:
        with TestClient(app) as client:
            exposition = scrape(client)
    finally:
        app.state.db.dispose()
    reported = {labels["certificate"]: v for labels, v in
                samples(exposition, "minimarket_tls_certificate_expiry_timestamp_seconds")}
    assert set(reported) == {"prometheus.crt", "alertmanager.crt"}, "missing or non-certificate files are skipped"
    for name, seconds in reported.items():
        cert = x509.load_pem_x509_certificate((tls / name).read_bytes())
        assert seconds == cert.not_valid_after_utc.timestamp()
        assert 29 * 86400 < seconds - time.time() <= 30 * 86400 + 60


def test_memory_gauges(client):
    exposition = scrape(client)
    limit = value(exposition, "minimarket_memory_limit_bytes")
    usage = value(exposition, "minimarket_memory_usage_bytes")
    assert limit is not None and usage is not None
    assert limit > usage > 1024 * 1024


def test_build_info_is_the_running_version(client):
    [(labels, one)] = samples(scrape(client), "minimarket_build_info")
    assert one == 1
    assert labels == {"version": minimarket.__version__, "python": platform.python_version(), "service": "all"}


# --- label contract ---------------------------------------------------------------------------------


def test_request_metric_labels_are_exactly_service_method_endpoint_status(client, admin):
    client.get("/api/inventory", headers=admin)
    client.get("/api/inventory/NO-EXISTE", headers=admin)
    client.get("/no-existe")
    exposition = scrape(client)
    label_sets = {frozenset(labels) for labels, _ in samples(exposition, "http_requests_total")}
    assert label_sets == {frozenset({"service", "method", "endpoint", "status"})}
    for suffix, extra in (("_count", set()), ("_sum", set()), ("_bucket", {"le"})):
        label_sets = {frozenset(labels) for labels, _ in samples(exposition, "http_request_duration_seconds" + suffix)}
        assert label_sets == {frozenset({"service", "method", "endpoint"} | extra)}, suffix
    assert {frozenset(lb) for lb, _ in samples(exposition, "minimarket_database_up")} == {frozenset({"service"})}
    assert {frozenset(lb) for lb, _ in samples(exposition, "minimarket_cache_up")} == {
        frozenset({"service", "backend"})}
    for name in STOCK_GAUGES:
        assert [labels for labels, _ in samples(exposition, name)] == [{}], name


@pytest.mark.parametrize("service", ["dashboard", "deposito", "negocio"])
def test_each_service_labels_its_own_metrics(settings, service):
    app = create_app(service, settings)
    try:
        with TestClient(app) as client:
            before = scrape(client)
            for _ in range(3):
                assert client.get("/health/live").json() == {"status": "ok", "service": service}
            after = scrape(client)
    finally:
        app.state.db.dispose()

    def live(exposition: str, svc: str) -> float:
        return metric_value(exposition, "http_requests_total", service=svc, method="GET", endpoint="/health/live",
                            status="200")

    assert live(after, service) - live(before, service) == 3
    for other in {"all", "dashboard", "deposito", "negocio"} - {service}:
        assert live(after, other) == live(before, other), f"{service}'s requests were counted as {other}'s"
    assert metric_value(after, "http_request_duration_seconds_count", service=service, method="GET",
                        endpoint="/health/live") - metric_value(before, "http_request_duration_seconds_count",
                                                                service=service, method="GET",
                                                                endpoint="/health/live") == 3
    assert value(after, "minimarket_database_up", service=service) == 1
    assert [labels["service"] for labels, _ in samples(after, "minimarket_database_up")] == [service]
    assert [labels["service"] for labels, _ in samples(after, "minimarket_cache_up")] == [service]
    assert [labels["service"] for labels, _ in samples(after, "minimarket_build_info")] == [service]
