"""Every metric an alert, a recording rule or a Grafana panel reads is emitted by something real.

The app's names come from GET /metrics of a running all-in-one app; the exporters' names from
the allowlist below, each citing where its exporter documents it. A name with a colon is a
recording rule and must be defined in observability/prometheus/rules/.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from minimarket.stock.verify import record_verification, verify_ledger
from tests.observability.helpers import (
    ALERTS,
    DASHBOARDS,
    RECORDING,
    RULE_FILES,
    exposed_names,
    find_metric_drift,
    metric_names,
    metric_usages,
)

EXPORTED_ELSEWHERE = {
    # postgres_exporter (prometheus-community/postgres_exporter): pg_up is set by the exporter on
    # each scrape (README, "pg_up"); collector/pg_stat_database.go exports
    # pg_stat_database_numbackends; collector/pg_database.go exports pg_database_size_bytes.
    "postgres_exporter": {"pg_up", "pg_stat_database_numbackends", "pg_database_size_bytes"},
    # redis_exporter (oliver006/redis_exporter, README "What's exported"; exporter/exporter.go maps
    # INFO's used_memory -> redis_memory_used_bytes, keyspace_hits/misses -> *_total; redis_up).
    "redis_exporter": {"redis_up", "redis_memory_used_bytes", "redis_keyspace_hits_total",
                       "redis_keyspace_misses_total"},
    # node_exporter (prometheus/node_exporter): collector/filesystem_common.go exports
    # node_filesystem_avail_bytes and node_filesystem_size_bytes; collector/loadavg.go node_load1.
    "node_exporter": {"node_filesystem_avail_bytes", "node_filesystem_size_bytes", "node_load1"},
    # Prometheus itself: `up` per scrape target and `ALERTS` per pending/firing alert
    # (docs: "Jobs and instances" -> automatically generated series; "Alerting rules" -> ALERTS).
    "prometheus": {"up", "ALERTS"},
}
ALLOWED = set().union(*EXPORTED_ELSEWHERE.values())

# What the runbook and this stack need from the app (the lead's metrics contract).
APP_CONTRACT = {
    "http_requests_total", "http_request_duration_seconds_bucket", "process_resident_memory_bytes",
    "minimarket_database_up", "minimarket_database_query_seconds", "minimarket_cache_up",
    "minimarket_cache_hits_total", "minimarket_cache_misses_total", "minimarket_products_active",
    "minimarket_products_below_minimum", "minimarket_products_out_of_stock", "minimarket_stock_movements_total",
    "minimarket_stock_refused_total", "minimarket_sales_tickets_total", "minimarket_sales_revenue_pesos_total",
    "minimarket_ledger_mismatches", "minimarket_ledger_last_verify_timestamp_seconds",
    "minimarket_backup_last_success_timestamp_seconds", "minimarket_tls_certificate_expiry_timestamp_seconds",
    "minimarket_memory_limit_bytes", "minimarket_build_info",
}


@pytest.fixture
def app_metrics(sqlite_app) -> set[str]:  # noqa: ANN001
    """Series names GET /metrics of a running all-in-one app declares, after some traffic.

    `minimarket verify` runs first, as the operator's schedule does: the ledger gauges report
    its last result and do not exist before the first run.
    """
    with sqlite_app.state.db.read() as session:
        report = verify_ledger(session)
    with sqlite_app.state.db.write() as session:
        record_verification(session, report)
    with TestClient(sqlite_app) as client:
        assert client.get("/health").status_code in {200, 503}
        assert client.get("/api/inventory").status_code == 401
        response = client.get("/metrics")
    assert response.status_code == 200
    return exposed_names(response.text)


def describe(drift: dict[str, list[str]]) -> str:
    return "\n".join(f"  {name}: usada en {', '.join(places)}" for name, places in sorted(drift.items()))


def test_every_metric_used_is_emitted_by_the_app_or_an_exporter(app_metrics):
    drift = find_metric_drift(RULE_FILES, DASHBOARDS, emitted=app_metrics, allowed=ALLOWED)
    assert not drift, "métricas que nada emite:\n" + describe(drift)


def test_the_app_emits_the_whole_metrics_contract(app_metrics):
    assert not APP_CONTRACT - app_metrics, f"faltan en /metrics: {sorted(APP_CONTRACT - app_metrics)}"


def test_the_allowlist_has_no_stale_names():
    used = set(metric_usages(RULE_FILES, DASHBOARDS))
    assert ALLOWED <= used, f"en la lista pero sin uso: {sorted(ALLOWED - used)}"
    assert not ALLOWED & {name for name in used if name.startswith("minimarket_")}


def test_renaming_a_metric_in_alerts_is_caught(app_metrics, tmp_path: Path):
    copy = tmp_path / "alerts.yml"
    text = ALERTS.read_text(encoding="utf-8")
    assert "minimarket_memory_usage_bytes" in text
    copy.write_text(text.replace("minimarket_memory_usage_bytes", "minimarket_memory_usage_bytez"), encoding="utf-8")
    original = find_metric_drift([ALERTS, RECORDING], [], emitted=app_metrics, allowed=ALLOWED)
    renamed = find_metric_drift([copy, RECORDING], [], emitted=app_metrics, allowed=ALLOWED)
    assert "minimarket_memory_usage_bytes" not in original
    assert renamed["minimarket_memory_usage_bytez"] == ["alerts.yml: MemoryPressure"]


def test_renaming_a_recording_rule_is_caught(tmp_path: Path):
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(ALERTS, tmp_path / "alerts.yml")
    text = RECORDING.read_text(encoding="utf-8")
    (rules / "recording.yml").write_text(
        text.replace("record: service:http_requests:error_ratio_rate5m", "record: service:http_errors:ratio5m"),
        encoding="utf-8")
    everything = {name for name in metric_usages(RULE_FILES, DASHBOARDS) if ":" not in name}
    drift = find_metric_drift([tmp_path / "alerts.yml", rules / "recording.yml"], [], emitted=everything,
                              allowed=set())
    assert drift == {"service:http_requests:error_ratio_rate5m": ["alerts.yml: HighErrorRate"]}


@pytest.mark.parametrize(("expr", "names"), [
    ('rate(http_requests_total[5m])', {"http_requests_total"}),
    ('histogram_quantile(0.95, sum by (endpoint, le) (rate(http_request_duration_seconds_bucket'
     '{endpoint=~"/api/.*"}[5m])))', {"http_request_duration_seconds_bucket"}),
    ('sum(rate(x_total{status=~"5.."}[5m])) by (service) / sum(rate(x_total[5m])) by (service)', {"x_total"}),
    ('process_resident_memory_bytes / on (job, instance, service) (minimarket_memory_limit_bytes > 0) > 0.8',
     {"process_resident_memory_bytes", "minimarket_memory_limit_bytes"}),
    ('time() - max(minimarket_backup_last_success_timestamp_seconds) > 26 * 3600',
     {"minimarket_backup_last_success_timestamp_seconds"}),
    ('up{job=~"dashboard|agente-deposito"} == 0', {"up"}),
    ('sum(ALERTS{alertstate="firing"}) or vector(0)', {"ALERTS"}),
    ('a unless on(instance) group_left b offset 1h', {"a", "b"}),
    ('label_replace(up, "dst", "$1", "instance", "(.*):.*")', {"up"}),
    ('count_values("version", minimarket_build_info) + 1e3 * 0x10', {"minimarket_build_info"}),
    ('max_over_time(foo:bar:rate5m[1h:5m]) > bool Inf', {"foo:bar:rate5m"}),
    ('sum(increase(minimarket_sales_tickets_total[$__range]))', {"minimarket_sales_tickets_total"}),
    ('100 * a{service=~"$service"} / ignoring(le) b', {"a", "b"}),
])
def test_metric_names_are_read_from_promql(expr: str, names: set[str]):
    assert metric_names(expr) == names
