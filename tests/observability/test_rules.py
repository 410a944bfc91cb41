"""Prometheus rules and config, checked by the real promtool/amtool from Debian's packages."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from tests.observability.helpers import (
    ALERTMANAGER,
    ALERTS,
    PROM,
    RECORDING,
    RULE_FILES,
    RULE_TESTS,
    alert_rules,
    assert_ok,
    load_yaml,
    need_binary,
    recorded_names,
    run,
    with_local_paths,
)

# The runbook names the first three; the rest are this project's own.
REQUIRED_ALERTS = {"HighErrorRate", "HighLatency", "MemoryPressure", "ServiceDown", "DatabaseDown", "CacheDown",
                   "DiskSpaceLow", "CertificateExpiringSoon", "BackupStale", "StockLedgerMismatch", "StockCritical"}
APP_JOBS = {"dashboard": "dashboard:8080", "agente-deposito": "agente-deposito:8001",
            "agente-negocio": "agente-negocio:8002"}
EXPORTER_JOBS = {"postgres": "postgres-exporter:9187", "redis": "redis-exporter:9121", "node": "node-exporter:9100"}


def prometheus_copy(tmp_path: Path, tls_dir: Path, *, token: str | None = "") -> Path:
    """observability/prometheus copied to tmp_path with the TLS paths pointed at throwaway certificates
    and the secrets path at a directory holding metrics_token (`token`; None: no file at all)."""
    target = tmp_path / "prometheus"
    shutil.copytree(PROM, target, ignore=shutil.ignore_patterns("tls", "secrets"))
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    if token is not None:
        (secrets_dir / "metrics_token").write_text(token, encoding="utf-8")
    config = target / "prometheus.yml"
    config.write_text(with_local_paths(config.read_text(encoding="utf-8"), {
        "/etc/prometheus/tls/": tls_dir, "/etc/prometheus/secrets/": secrets_dir}), encoding="utf-8")
    return config


# --- promtool ---------------------------------------------------------------------------------------


def test_rule_files_are_valid():
    assert_ok(run(need_binary("promtool"), "check", "rules", *RULE_FILES))


def test_rule_unit_tests_pass():
    assert RULE_TESTS, "no hay pruebas en observability/prometheus/tests/"
    assert_ok(run(need_binary("promtool"), "test", "rules", *RULE_TESTS, cwd=PROM))


def test_prometheus_config_is_valid_with_real_certificates(tmp_path, tls_dir):
    # promtool 2.42 does not open the alerting tls_config files; test_alertmanager.py does, by
    # using exactly those files to reach a real Alertmanager over mTLS.
    config = prometheus_copy(tmp_path, tls_dir)
    result = run(need_binary("promtool"), "check", "config", config)
    assert_ok(result)
    assert "SUCCESS" in result.stdout + result.stderr


def test_prometheus_config_reads_the_metrics_token_file(tmp_path, tls_dir):
    with_token = prometheus_copy(tmp_path / "con", tls_dir, token="a" * 48)
    assert_ok(run(need_binary("promtool"), "check", "config", with_token))
    without = prometheus_copy(tmp_path / "sin", tls_dir, token=None)
    result = run(need_binary("promtool"), "check", "config", without)
    assert result.returncode != 0 and "metrics_token" in result.stdout + result.stderr, result.stdout + result.stderr


def test_app_jobs_send_the_metrics_token_as_bearer():
    jobs = {job["job_name"]: job for job in load_yaml(PROM / "prometheus.yml")["scrape_configs"]}
    for name in APP_JOBS:
        assert jobs[name]["authorization"] == {"type": "Bearer",
                                               "credentials_file": "/etc/prometheus/secrets/metrics_token"}, name
    for name in EXPORTER_JOBS:
        assert "authorization" not in jobs[name], name  # the exporters have no such token
    ignored = (PROM / "secrets" / ".gitignore").read_text(encoding="utf-8")
    assert "*" in ignored.splitlines() and "metrics_token" in ignored  # the token never goes to git


def test_alertmanager_web_config_is_valid_with_real_certificates(tmp_path, tls_dir):
    web = tmp_path / "web.yml"
    web.write_text(with_local_paths((ALERTMANAGER / "web.yml").read_text(encoding="utf-8"),
                                    {"/etc/alertmanager/tls/": tls_dir}), encoding="utf-8")
    assert_ok(run(need_binary("promtool"), "check", "web-config", web))


def test_alertmanager_config_is_valid():
    assert_ok(run(need_binary("amtool"), "check-config", ALERTMANAGER / "alertmanager.yml"))


# --- what the files promise ---------------------------------------------------------------------------


def test_prometheus_scrapes_every_service_and_exporter():
    config = load_yaml(PROM / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {*APP_JOBS, *EXPORTER_JOBS, "prometheus"}
    for name, target in {**APP_JOBS, **EXPORTER_JOBS}.items():
        (static,) = jobs[name]["static_configs"]
        assert static["targets"] == [target], name
    for name in APP_JOBS:
        # Alerts and the ServiceDown inhibition group by this label: it must be the runbook name.
        assert jobs[name]["static_configs"][0]["labels"] == {"service": name}
        assert jobs[name].get("metrics_path", "/metrics") == "/metrics"
    assert config["rule_files"] == ["alerts.yml", "rules/recording.yml"]


def test_prometheus_talks_to_alertmanager_over_mutual_tls():
    (alertmanager,) = load_yaml(PROM / "prometheus.yml")["alerting"]["alertmanagers"]
    assert alertmanager["scheme"] == "https"
    assert alertmanager["static_configs"] == [{"targets": ["alertmanager:9093"]}]
    tls = alertmanager["tls_config"]
    assert tls["ca_file"] == "/etc/prometheus/tls/ca.crt"
    assert tls["cert_file"] == "/etc/prometheus/tls/prometheus.crt"
    assert tls["key_file"] == "/etc/prometheus/tls/prometheus.key"
    assert not tls.get("insecure_skip_verify", False)


def test_alertmanager_requires_client_certificates():
    tls = load_yaml(ALERTMANAGER / "web.yml")["tls_server_config"]
    assert tls["client_auth_type"] == "RequireAndVerifyClientCert"
    assert tls["min_version"] == "TLS12"
    for key in ("cert_file", "key_file", "client_ca_file"):
        assert tls[key].startswith("/etc/alertmanager/tls/"), key


def test_every_required_alert_exists_with_labels_and_spanish_annotations():
    alerts = alert_rules()
    assert REQUIRED_ALERTS <= set(alerts)
    spanish = re.compile(r"[áéíóúñ]|\b(el|la|de|desde|los|las|en|hace)\b", re.IGNORECASE)
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        annotations = rule["annotations"]
        assert set(annotations) >= {"summary", "description", "runbook_url"}, name
        assert annotations["runbook_url"] == f"docs/RESPONDING_TO_ALERTS.md#{name.lower()}"
        assert annotations["summary"].strip(), name
        description = annotations["description"]
        assert spanish.search(description), f"{name}: descripción no en español: {description!r}"


def test_runbook_queries_have_recording_rules():
    recorded = recorded_names([RECORDING])
    assert {"service:http_requests:error_ratio_rate5m", "service:http_request_duration_seconds:p95_5m",
            "endpoint:http_request_duration_seconds:p95_5m"} <= recorded


def test_every_alert_has_a_firing_and_a_quiet_unit_test():
    fired, quiet = set(), set()
    for path in RULE_TESTS:
        for case in load_yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = set(alert_rules())
    assert alerts - fired == set(), "alertas sin una prueba que las dispare"
    assert alerts - quiet == set(), "alertas sin una prueba en la que callan"


def test_unit_tests_cover_the_thresholds_the_runbook_names():
    text = "\n".join(path.read_text(encoding="utf-8") for path in RULE_TESTS)
    # HighErrorRate: 6 % fires, 4 % stays quiet; HighLatency: P95 0.5 s fires, 0.2 s stays quiet.
    for value in ("value: 0.06", "value: 0.04", "value: 0.5", "value: 0.2"):
        assert value in text, value


def test_unit_tests_fail_when_a_threshold_moves(tmp_path):
    """A rule test that cannot fail is a defect: loosen HighErrorRate and the tests must notice."""
    target = tmp_path / "prometheus"
    shutil.copytree(PROM, target, ignore=shutil.ignore_patterns("tls"))
    alerts = target / "alerts.yml"
    text = alerts.read_text(encoding="utf-8")
    assert "error_ratio_rate5m > 0.05" in text
    alerts.write_text(text.replace("error_ratio_rate5m > 0.05", "error_ratio_rate5m > 0.07"), encoding="utf-8")
    result = run(need_binary("promtool"), "test", "rules", *sorted((target / "tests").glob("*.yml")), cwd=target)
    assert result.returncode != 0
    assert "HighErrorRate" in result.stdout + result.stderr


def test_alerts_file_is_where_the_runbook_says():
    assert ALERTS == PROM / "alerts.yml" and ALERTS.is_file()
