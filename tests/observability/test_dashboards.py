"""Grafana dashboards and provisioning: valid JSON, unique ids, known data sources, PromQL that parses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.observability.helpers import (
    DASHBOARDS,
    OBS,
    load_json,
    load_yaml,
    need_binary,
    panels,
    prometheus_queries,
    run,
    substitute_grafana_variables,
)

PROVISIONING = OBS / "grafana" / "provisioning"
RUNBOOK_P95_BY_ENDPOINT = ('histogram_quantile(0.95, sum by (endpoint, le) '
                           '(rate(http_request_duration_seconds_bucket{endpoint=~"/api/.*"}[5m])))')
# Labels promtail puts on the streams (see test_configs.py); a LogQL selector can use only these.
LOKI_LABELS = {"service", "level", "container", "stream"}
ENGLISH_TITLE_WORDS = re.compile(r"\b(requests?|errors?|latency|memory|disk|uptime|sales|stock movements|"
                                 r"connections|size|hits?|per second|by)\b", re.IGNORECASE)


def datasources() -> dict[str, dict]:
    return {ds["uid"]: ds for ds in load_yaml(PROVISIONING / "datasources" / "datasources.yml")["datasources"]}


def test_the_three_dashboards_exist():
    assert {path.name for path in DASHBOARDS} == {"system.json", "business.json", "infrastructure.json"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_structure(path: Path):
    dashboard = load_json(path)
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["uid"] and len(dashboard["uid"]) <= 40
    assert dashboard["title"].startswith("Mini Market")
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), f"ids de panel repetidos en {path.name}"
    assert all(isinstance(i, int) for i in ids)
    occupied: set[tuple[int, int]] = set()
    for panel in panels(dashboard):
        assert panel["title"].strip(), panel["id"]
        assert not ENGLISH_TITLE_WORDS.search(panel["title"]), f"título en inglés: {panel['title']!r}"
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                 for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & occupied, f"el panel «{panel['title']}» se superpone con otro"
        occupied |= cells
        assert panel.get("targets"), panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_dashboard_uids_are_unique():
    uids = [load_json(path)["uid"] for path in DASHBOARDS]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_datasource_reference_is_provisioned(path: Path):
    known = datasources()
    dashboard = load_json(path)
    references = []
    for panel in panels(dashboard):
        references.append((panel["title"], panel["datasource"]))
        references += [(panel["title"], t["datasource"]) for t in panel["targets"] if "datasource" in t]
    references += [(f"${v['name']}", v["datasource"]) for v in dashboard["templating"]["list"] if "datasource" in v]
    for where, reference in references:
        assert isinstance(reference, dict), f"{where}: el datasource se referencia por uid, no por nombre"
        assert reference["uid"] in known, f"{where}: datasource {reference['uid']!r} no provisionado"
        assert reference["type"] == known[reference["uid"]]["type"], where


def test_datasources_point_at_the_compose_services():
    known = datasources()
    assert known["prometheus"]["type"] == "prometheus" and known["prometheus"]["url"] == "http://prometheus:9090"
    assert known["loki"]["type"] == "loki" and known["loki"]["url"] == "http://loki:3100"
    assert [uid for uid, ds in known.items() if ds.get("isDefault")] == ["prometheus"]


def test_dashboard_provider_reads_the_mounted_folder():
    (provider,) = load_yaml(PROVISIONING / "dashboards" / "dashboards.yml")["providers"]
    assert provider["type"] == "file"
    compose = load_yaml(OBS / "docker-compose.observability.yml")
    mounts = dict(volume.rsplit(":", 2)[:2] for volume in compose["services"]["grafana"]["volumes"]
                  if volume.startswith("./"))
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_promql_query_parses(path: Path, tmp_path: Path):
    """Each query becomes a recording rule in a scratch file so that promtool parses it."""
    queries = prometheus_queries(path)
    assert queries
    rules = [{"record": f"grafana:query_{i}", "expr": substitute_grafana_variables(expr)}
             for i, (_, expr) in enumerate(queries)]
    scratch = tmp_path / "queries.yml"
    scratch.write_text(yaml.safe_dump({"groups": [{"name": path.stem, "rules": rules}]}, allow_unicode=True),
                       encoding="utf-8")
    result = run(need_binary("promtool"), "check", "rules", scratch)
    if result.returncode != 0:
        bad = "\n".join(f"  grafana:query_{i} = {where}: {expr}" for i, (where, expr) in enumerate(queries))
        pytest.fail(f"promtool rechazó una consulta de {path.name}:\n{result.stderr}{result.stdout}\n{bad}")


def test_promql_check_is_not_vacuous(tmp_path: Path):
    scratch = tmp_path / "queries.yml"
    scratch.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [
        {"record": "grafana:query_0", "expr": "sum by (type) (rate(minimarket_stock_movements_total[5m])"}]}]}),
        encoding="utf-8")
    assert run(need_binary("promtool"), "check", "rules", scratch).returncode != 0


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_loki_queries_only_use_labels_promtail_sets(path: Path):
    for panel in panels(load_json(path)):
        for target in panel["targets"]:
            if target.get("datasource", panel["datasource"])["type"] != "loki":
                continue
            selector = re.match(r"\s*\{(?P<matchers>[^}]*)\}", target["expr"])
            assert selector, f"«{panel['title']}»: una consulta LogQL empieza por un selector {{...}}"
            labels = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", selector["matchers"]))
            assert labels and labels <= LOKI_LABELS, f"«{panel['title']}»: {labels - LOKI_LABELS}"


def all_exprs(name: str) -> str:
    return "\n".join(expr for _, expr in prometheus_queries(OBS / "grafana" / "dashboards" / name))


def test_system_dashboard_answers_the_runbook():
    exprs = all_exprs("system.json")
    assert RUNBOOK_P95_BY_ENDPOINT in exprs  # PB2: which endpoint is slow
    for needle in ("service:http_requests:rate5m", "service:http_requests_5xx:rate5m",
                   "service:http_request_duration_seconds:p95_5m", "up{"):
        assert needle in exprs, needle


def test_business_dashboard_shows_stock_sales_ledger_and_backups():
    exprs = all_exprs("business.json")
    for metric in ("minimarket_products_below_minimum", "minimarket_products_out_of_stock",
                   "minimarket_stock_movements_total", "minimarket_sales_revenue_pesos_total",
                   "minimarket_sales_tickets_total", "minimarket_ledger_mismatches",
                   "minimarket_backup_last_success_timestamp_seconds"):
        assert metric in exprs, metric
    assert "sum by (type) (rate(minimarket_stock_movements_total[5m]))" in exprs


def test_infrastructure_dashboard_shows_database_cache_memory_and_disk():
    exprs = all_exprs("infrastructure.json")
    for metric in ("pg_up", "pg_stat_database_numbackends", "pg_database_size_bytes", "redis_up",
                   "redis_memory_used_bytes", "redis_keyspace_hits_total", "redis_keyspace_misses_total",
                   "process_resident_memory_bytes", "minimarket_memory_limit_bytes", "node_filesystem_avail_bytes",
                   "minimarket_database_query_seconds"):
        assert metric in exprs, metric
