"""Loki, Promtail and the observability compose file; the app's log lines against Promtail's pipeline.

compose_spec.json beside this file is the Compose Specification schema exactly as the PyPI
package docker-compose 1.29.2 ships it (compose/config/compose_spec.json, Apache-2.0). It is
older than today's spec, so it is strict about keys newer Compose versions added: the compose
file here uses none of them.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
import subprocess
from pathlib import Path

import pytest
import structlog
from fastapi.testclient import TestClient

from tests.observability.helpers import (
    OBS,
    PROM,
    load_json,
    load_yaml,
    need_module,
)

COMPOSE = OBS / "docker-compose.observability.yml"
LOKI = OBS / "loki" / "loki-config.yml"
PROMTAIL = OBS / "promtail" / "promtail-config.yml"
COMPOSE_SCHEMA = Path(__file__).with_name("compose_spec.json")

try:  # the app's own list of log fields, when it exposes one
    from minimarket.platform.logging import LOG_FIELDS
except ImportError:  # not there yet: the fields ObservedApp's access log writes today
    LOG_FIELDS = ("timestamp", "level", "message", "service", "request_id", "method", "path", "endpoint",
                  "status", "duration_ms", "actor")

# Unbounded values: as Loki labels each would open a stream per request, path or user.
HIGH_CARDINALITY = {"request_id", "path", "actor", "endpoint", "method", "status", "duration_ms", "message",
                    "timestamp"}


def promtail_stages() -> dict[str, dict]:
    (scrape,) = load_yaml(PROMTAIL)["scrape_configs"]
    stages = {}
    for stage in scrape["pipeline_stages"]:
        ((kind, body),) = stage.items()
        assert kind not in stages, f"etapa {kind} repetida"
        stages[kind] = body or {}
    return stages


# --- compose -------------------------------------------------------------------------------------


def test_compose_file_validates_against_the_compose_specification():
    jsonschema = need_module("jsonschema")
    schema = load_json(COMPOSE_SCHEMA)
    jsonschema.Draft201909Validator.check_schema(schema)
    validator = jsonschema.Draft201909Validator(schema)
    errors = sorted(validator.iter_errors(load_yaml(COMPOSE)), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_compose_schema_check_is_not_vacuous():
    jsonschema = need_module("jsonschema")
    document = load_yaml(COMPOSE)
    document["services"]["grafana"]["healthcheck"]["intervalo"] = "15s"
    document["services"]["loki"]["ports"] = "3100:3100"
    errors = list(jsonschema.Draft201909Validator(load_json(COMPOSE_SCHEMA)).iter_errors(document))
    assert len(errors) >= 2


def test_compose_services_names_ports_and_healthchecks():
    services = load_yaml(COMPOSE)["services"]
    assert {"prometheus", "alertmanager", "grafana", "loki", "promtail", "node-exporter", "postgres-exporter",
            "redis-exporter"} <= set(services)
    for name in ("prometheus", "alertmanager", "grafana", "loki", "promtail"):
        assert services[name]["container_name"] == name  # the runbook runs `docker logs <name>`
        assert services[name]["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
    published = {name: [p.rsplit(":", 2)[-2:] for p in service.get("ports", [])] for name, service in services.items()}
    assert published["prometheus"] == [["9090", "9090"]]
    assert published["alertmanager"] == [["9093", "9093"]]
    assert published["grafana"] == [["3000", "3000"]]
    assert published["loki"] == [["3100", "3100"]]
    for service in services.values():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"imagen sin versión fija: {image}"


def test_every_bind_mount_exists_and_configs_land_where_the_commands_read_them():
    services = load_yaml(COMPOSE)["services"]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (OBS / source).exists(), f"{name}: {source} no existe"
    prometheus = services["prometheus"]
    assert "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus["volumes"]
    assert "./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in prometheus["volumes"]
    assert "./prometheus/rules:/etc/prometheus/rules:ro" in prometheus["volumes"]
    assert "./prometheus/tls:/etc/prometheus/tls:ro" in prometheus["volumes"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    alertmanager = services["alertmanager"]
    assert "./prometheus/tls:/etc/alertmanager/tls:ro" in alertmanager["volumes"]
    assert "./alertmanager/web.yml:/etc/alertmanager/web.yml:ro" in alertmanager["volumes"]
    assert "--web.config.file=/etc/alertmanager/web.yml" in alertmanager["command"]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in alertmanager["command"]
    assert services["loki"]["command"] == ["-config.file=/etc/loki/loki-config.yml"]
    assert "./loki/loki-config.yml:/etc/loki/loki-config.yml:ro" in services["loki"]["volumes"]
    assert services["promtail"]["command"] == ["-config.file=/etc/promtail/promtail-config.yml"]
    assert "./promtail/promtail-config.yml:/etc/promtail/promtail-config.yml:ro" in services["promtail"]["volumes"]


def test_prometheus_targets_are_compose_services():
    services = load_yaml(COMPOSE)["services"]
    config = load_yaml(PROM / "prometheus.yml")
    exporters = {job["job_name"]: job["static_configs"][0]["targets"][0] for job in config["scrape_configs"]
                 if job["job_name"] in {"postgres", "redis", "node"}}
    for target in exporters.values():
        assert target.split(":")[0] in services, target
    (alertmanager,) = config["alerting"]["alertmanagers"]
    assert alertmanager["static_configs"][0]["targets"] == ["alertmanager:9093"]


def test_no_secrets_in_the_compose_file():
    text = COMPOSE.read_text(encoding="utf-8")
    assert "GF_SECURITY_ADMIN_PASSWORD: ${GRAFANA_ADMIN_PASSWORD:?" in text  # refuses to start without one
    assert not re.search(r"(?i)password[=:]\s*['\"]?(admin|secret|changeme|postgres)\b", text)


# --- TLS material ---------------------------------------------------------------------------------


def test_no_private_key_or_certificate_is_committed():
    listed = subprocess.run(["git", "ls-files", "observability"], cwd=OBS.parent, capture_output=True, text=True,
                            check=True).stdout.split()
    assert not [f for f in listed if f.endswith((".key", ".pem", ".crt", ".srl"))]
    for path in OBS.rglob("*"):
        if path.is_file() and path.suffix not in {".key", ".crt", ".pem", ".srl"}:
            assert "PRIVATE KEY-----" not in path.read_text(encoding="utf-8", errors="ignore"), path
    ignored = (PROM / "tls" / ".gitignore").read_text(encoding="utf-8").split()
    assert {"*.key", "*.crt"} <= set(ignored)


# generate_certs.sh (runbook PB4) is exercised by tests/unit/test_certs.py.


# --- Loki -----------------------------------------------------------------------------------------


def test_loki_is_a_single_binary_on_the_local_disk_with_retention():
    config = load_yaml(LOKI)
    assert config["auth_enabled"] is False
    assert config["server"]["http_listen_port"] == 3100
    assert config["common"]["replication_factor"] == 1
    assert config["common"]["ring"]["kvstore"]["store"] == "inmemory"
    assert "filesystem" in config["common"]["storage"]
    (schema,) = config["schema_config"]["configs"]
    assert (schema["store"], schema["object_store"], schema["schema"]) == ("tsdb", "filesystem", "v13")
    dt.date.fromisoformat(str(schema["from"]))
    retention = config["limits_config"]["retention_period"]
    assert re.fullmatch(r"\d+[hdw]", retention) and retention != "0h"
    compactor = config["compactor"]
    assert compactor["retention_enabled"] is True
    assert compactor["delete_request_store"] == "filesystem"  # Loki 3 refuses retention without it
    for path in (config["common"]["storage"]["filesystem"]["chunks_directory"], compactor["working_directory"]):
        assert path.startswith(config["common"]["path_prefix"]), path
    compose = load_yaml(COMPOSE)["services"]["loki"]
    assert f"loki_data:{config['common']['path_prefix']}" in compose["volumes"]


# --- Promtail -------------------------------------------------------------------------------------


def test_promtail_reads_docker_and_pushes_to_loki():
    config = load_yaml(PROMTAIL)
    assert [c["url"] for c in config["clients"]] == ["http://loki:3100/loki/api/v1/push"]
    (scrape,) = config["scrape_configs"]
    assert scrape["docker_sd_configs"][0]["host"] == "unix:///var/run/docker.sock"
    compose = load_yaml(COMPOSE)["services"]["promtail"]
    assert "/var/run/docker.sock:/var/run/docker.sock:ro" in compose["volumes"]
    positions = Path(config["positions"]["filename"]).parent
    assert any(v.endswith(f":{positions}") for v in compose["volumes"]), "positions.yaml se pierde al reiniciar"


def test_promtail_json_stage_reads_exactly_the_app_log_fields():
    expressions = promtail_stages()["json"]["expressions"]
    assert set(expressions) == set(LOG_FIELDS)
    assert all(key == value for key, value in expressions.items())


def test_promtail_labels_are_low_cardinality_only():
    stages = promtail_stages()
    (scrape,) = load_yaml(PROMTAIL)["scrape_configs"]
    labels = set(stages["labels"]) | {r["target_label"] for r in scrape["relabel_configs"] if "target_label" in r}
    assert {"service", "level"} <= labels
    assert not labels & HIGH_CARDINALITY, labels & HIGH_CARDINALITY
    assert "structured_metadata" not in stages or not set(stages["structured_metadata"]) & {"path", "actor"}


def test_promtail_timestamp_stage_parses_rfc3339():
    stage = promtail_stages()["timestamp"]
    assert stage["source"] == "timestamp"
    assert stage["format"] in {"RFC3339", "RFC3339Nano"}


@pytest.fixture
def json_logs():  # noqa: ANN201
    """The app's real logging setup, its stdout handler pointed at a buffer; restored afterwards."""
    from minimarket.platform.logging import configure_logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("INFO", service="dashboard")
    buffer = io.StringIO()
    for handler in root.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(buffer)
    try:
        yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]
    finally:
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()
        root.handlers[:] = handlers
        root.setLevel(level)


def test_the_app_access_log_has_exactly_the_fields_promtail_reads(sqlite_app, json_logs):
    with TestClient(sqlite_app) as client:
        assert client.get("/health/live", headers={"X-Request-ID": "promtail-1"}).status_code == 200
        assert client.get("/api/inventory").status_code == 401
    lines = [line for line in json_logs() if line.get("message") == "request"]
    assert len(lines) == 2, lines
    fields = set(promtail_stages()["json"]["expressions"])
    for line in lines:
        assert set(line) == fields, set(line) ^ fields
        # RFC 3339 as Go's time.RFC3339Nano reads it: date, 'T', time, fraction, 'Z' or offset.
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)", line["timestamp"])
        assert line["level"] in {"debug", "info", "warning", "error", "critical"}
    assert lines[0]["request_id"] == "promtail-1" and lines[0]["endpoint"] == "/health/live"
