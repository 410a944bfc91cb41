"""Alertmanager routing, inhibition and mTLS, against the real Alertmanager from Debian's packages."""

from __future__ import annotations

import json
import re
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from minimarket.ops.tls import generate_tls_material
from tests.observability.helpers import (
    ALERTMANAGER,
    OBS,
    PROM,
    alert_rules,
    assert_ok,
    load_yaml,
    need_binary,
    run,
    with_local_paths,
)

CONFIG = ALERTMANAGER / "alertmanager.yml"
WEBHOOK = "http://agente-negocio:8002/api/alerts/webhook"  # the store's own receiver (agente-negocio)
TOKEN_FILE = "/etc/alertmanager/secrets/webhook_token"
TOKEN = "token-de-prueba-" + "9" * 32


# --- routing (amtool, no server) ------------------------------------------------------------------


def route_of(*labels: str) -> str:
    result = run(need_binary("amtool"), "config", "routes", "test", f"--config.file={CONFIG}", *labels)
    assert_ok(result)
    return result.stdout.strip()


@pytest.mark.parametrize("name", sorted(alert_rules()))
def test_each_alert_reaches_the_receiver_of_its_severity(name):
    severity = alert_rules()[name]["labels"]["severity"]
    assert route_of(f"alertname={name}", f"severity={severity}", "service=dashboard") == severity


def test_an_alert_without_severity_still_reaches_someone():
    assert route_of("alertname=Desconocida") == "warning"


def test_grouping_and_default_webhook():
    config = load_yaml(CONFIG)
    assert config["route"]["group_by"] == ["alertname", "service"]
    receivers = {r["name"]: r for r in config["receivers"]}
    assert set(receivers) == {"critical", "warning"}
    for receiver in receivers.values():
        assert [hook["url"] for hook in receiver["webhook_configs"]] == [WEBHOOK]
        for hook in receiver["webhook_configs"]:
            assert hook["send_resolved"] is True
            assert hook["http_config"]["authorization"] == {"type": "Bearer", "credentials_file": TOKEN_FILE}
    compose = load_yaml(OBS / "docker-compose.observability.yml")
    assert "./alertmanager/secrets:/etc/alertmanager/secrets:ro" in compose["services"]["alertmanager"]["volumes"]
    ignored = (ALERTMANAGER / "secrets" / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "*" in ignored  # the token file is never committed
    assert "slack_configs" in CONFIG.read_text(encoding="utf-8")  # where to plug Slack is documented


# --- a real Alertmanager over mTLS ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Webhook:
    """Records what Alertmanager POSTs to the webhook receiver."""

    server: ThreadingHTTPServer
    received: list[dict] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/alerts/webhook"


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", 0))
            received.append({"path": self.path, "authorization": self.headers.get("Authorization"),
                             **json.loads(self.rfile.read(length))})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:  # noqa: ANN002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Webhook(server, received)
    server.shutdown()
    server.server_close()


@dataclass
class RunningAlertmanager:
    url: str
    port: int
    tls: Path
    workdir: Path

    def client(self, *, cert: tuple[Path, Path] | None = None, ca: Path | None = None) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(ca or self.tls / "ca.crt"))
        if cert:
            context.load_cert_chain(str(cert[0]), str(cert[1]))
        return httpx.Client(base_url=self.url, verify=context, timeout=5)

    def prometheus_client(self) -> httpx.Client:
        """A client with exactly the TLS files prometheus.yml names (pointed at the test's copies)."""
        (alertmanager,) = load_yaml(PROM / "prometheus.yml")["alerting"]["alertmanagers"]
        tls = {key: Path(with_local_paths(value, {"/etc/prometheus/tls/": self.tls}))
               for key, value in alertmanager["tls_config"].items() if key.endswith("_file")}
        assert alertmanager["scheme"] == "https"
        return self.client(cert=(tls["cert_file"], tls["key_file"]), ca=tls["ca_file"])

    def post(self, *alerts: dict[str, str]) -> None:
        with self.prometheus_client() as client:
            response = client.post("/api/v2/alerts", json=[{"labels": labels} for labels in alerts])
        assert response.status_code == 200, response.text

    def statuses(self) -> dict[tuple[str, str], dict]:
        with self.prometheus_client() as client:
            response = client.get("/api/v2/alerts")
        assert response.status_code == 200, response.text
        return {(a["labels"]["alertname"], a["labels"].get("service", "")): a["status"] for a in response.json()}


@pytest.fixture
def alertmanager(tmp_path: Path, tls_dir: Path, webhook: Webhook) -> Iterator[RunningAlertmanager]:
    binary = need_binary("prometheus-alertmanager")
    config = tmp_path / "alertmanager.yml"
    token_file = tmp_path / "webhook_token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    config.write_text(CONFIG.read_text(encoding="utf-8").replace(WEBHOOK, webhook.url)
                      .replace(TOKEN_FILE, str(token_file)), encoding="utf-8")
    web = tmp_path / "web.yml"
    web.write_text(with_local_paths((ALERTMANAGER / "web.yml").read_text(encoding="utf-8"),
                                    {"/etc/alertmanager/tls/": tls_dir}), encoding="utf-8")
    port = free_port()
    log = (tmp_path / "alertmanager.log").open("w")
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", f"--web.config.file={web}"],
        stdout=log, stderr=subprocess.STDOUT)
    running = RunningAlertmanager(f"https://localhost:{port}", port, tls_dir, tmp_path)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with running.prometheus_client() as client:
                    if client.get("/-/ready").status_code == 200:
                        break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("Alertmanager no arrancó:\n" + (tmp_path / "alertmanager.log").read_text())
            time.sleep(0.2)
        yield running
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def alert(name: str, service: str | None = None) -> dict[str, str]:
    labels = {"alertname": name, "severity": alert_rules()[name]["labels"]["severity"]}
    if service:
        labels["service"] = service
    return labels


def test_service_down_silences_only_the_rest_of_that_service(alertmanager):
    alertmanager.post(alert("ServiceDown", "dashboard"), alert("HighErrorRate", "dashboard"),
                      alert("HighLatency", "dashboard"), alert("HighErrorRate", "agente-negocio"),
                      alert("StockCritical"), alert("BackupStale"))
    status = alertmanager.statuses()
    assert status["ServiceDown", "dashboard"]["state"] == "active"
    assert status["HighErrorRate", "dashboard"]["state"] == "suppressed"
    assert status["HighLatency", "dashboard"]["state"] == "suppressed"
    assert status["HighErrorRate", "agente-negocio"]["state"] == "active"
    # Store-wide alerts carry no service: a service down must not hide them.
    assert status["StockCritical", ""]["state"] == "active"
    assert status["BackupStale", ""]["state"] == "active"


def test_two_services_down_do_not_silence_each_other(alertmanager):
    alertmanager.post(alert("ServiceDown", "dashboard"), alert("ServiceDown", "agente-deposito"))
    status = alertmanager.statuses()
    assert status["ServiceDown", "dashboard"]["state"] == "active"
    assert status["ServiceDown", "agente-deposito"]["state"] == "active"


def test_database_down_silences_its_consequences_only(alertmanager):
    alertmanager.post(alert("DatabaseDown"), alert("HighErrorRate", "agente-deposito"),
                      alert("HighLatency", "dashboard"), alert("StockLedgerMismatch"),
                      alert("CacheDown"), alert("MemoryPressure", "dashboard"), alert("DiskSpaceLow"))
    status = alertmanager.statuses()
    assert status["DatabaseDown", ""]["state"] == "active"
    for key in [("HighErrorRate", "agente-deposito"), ("HighLatency", "dashboard"), ("StockLedgerMismatch", "")]:
        assert status[key]["state"] == "suppressed", key
    for key in [("CacheDown", ""), ("MemoryPressure", "dashboard"), ("DiskSpaceLow", "")]:
        assert status[key]["state"] == "active", key


def test_a_missing_or_broken_exporter_inhibits_nothing(alertmanager):
    """Issue 7 item 18: postgres_exporter without its user made DatabaseDown mute the real alerts."""
    exporter_down = {**alert("PostgresExporterDown"), "job": "postgres", "instance": "postgres-exporter:9187"}
    alertmanager.post(exporter_down, alert("HighErrorRate", "agente-deposito"), alert("HighLatency", "dashboard"),
                      alert("StockLedgerMismatch"), alert("CacheDown"))
    status = alertmanager.statuses()
    assert status["PostgresExporterDown", ""]["state"] == "active"
    for key in [("HighErrorRate", "agente-deposito"), ("HighLatency", "dashboard"), ("StockLedgerMismatch", ""),
                ("CacheDown", "")]:
        assert status[key]["state"] == "active", (key, status[key])
        assert status[key]["inhibitedBy"] == [], (key, status[key])


def test_only_the_apps_own_measurements_can_inhibit():
    """An inhibiting alert must not read an exporter's series: a missing exporter would mute real alerts."""
    config = load_yaml(CONFIG)
    rules = alert_rules()
    sources = set()
    for rule in config["inhibit_rules"]:
        for matcher in rule["source_matchers"]:
            name, _, value = matcher.partition("=")
            assert name == "alertname", matcher
            sources.add(value.strip('"'))
    assert sources == {"ServiceDown", "DatabaseDown"}
    exporter_series = re.compile(r"\b(pg|redis|node)_\w+|job=~?\"(postgres|redis|node)\"")
    for name in sources:
        assert not exporter_series.search(rules[name]["expr"]), (name, rules[name]["expr"])
    assert "pg_up" in rules["PostgresExporterDown"]["expr"]
    assert all("PostgresExporterDown" not in m for r in config["inhibit_rules"] for m in r["source_matchers"])


def test_critical_alerts_reach_the_webhook_without_the_silenced_ones(alertmanager, webhook):
    alertmanager.post(alert("ServiceDown", "agente-negocio"), alert("HighErrorRate", "agente-negocio"))
    deadline = time.monotonic() + 30  # group_wait of the critical route is 10 s
    while not webhook.received and time.monotonic() < deadline:
        time.sleep(0.2)
    assert webhook.received, "Alertmanager no llamó al webhook"
    notified = [(n["receiver"], a["labels"]["alertname"]) for n in webhook.received for a in n["alerts"]]
    assert ("critical", "ServiceDown") in notified
    # The path and the bearer token the app's webhook checks (the file's trailing newline is dropped).
    assert {(n["path"], n["authorization"]) for n in webhook.received} == {("/api/alerts/webhook",
                                                                            f"Bearer {TOKEN}")}
    assert all(name != "HighErrorRate" for _, name in notified)


def test_clients_without_a_certificate_of_our_ca_are_refused(alertmanager, tmp_path):
    with alertmanager.client() as client, pytest.raises(httpx.TransportError):
        client.get("/api/v2/status")
    rogue = tmp_path / "otra-ca"
    generate_tls_material(rogue, days=2, ca_days=3)
    with alertmanager.client(cert=(rogue / "prometheus.crt", rogue / "prometheus.key")) as client, \
            pytest.raises(httpx.TransportError):
        client.get("/api/v2/status")
    plain = httpx.get(f"http://127.0.0.1:{alertmanager.port}/api/v2/status", timeout=5)
    assert plain.status_code == 400  # Go's answer to plain HTTP on a TLS port
    with alertmanager.prometheus_client() as client:
        assert client.get("/api/v2/status").status_code == 200


def test_compose_healthcheck_command_works_over_mtls(alertmanager):
    """The exact amtool command of the compose healthcheck, with the container paths made local."""
    compose = load_yaml(OBS / "docker-compose.observability.yml")
    command = compose["services"]["alertmanager"]["healthcheck"]["test"]
    assert command[0] == "CMD"
    http_config = alertmanager.workdir / "amtool-http.yml"
    http_config.write_text(with_local_paths((ALERTMANAGER / "amtool-http.yml").read_text(encoding="utf-8"),
                                            {"/etc/alertmanager/tls/": alertmanager.tls}), encoding="utf-8")
    args = [a.replace("https://localhost:9093", alertmanager.url)
             .replace("/etc/alertmanager/amtool-http.yml", str(http_config)) for a in command[1:]]
    assert args[0] == "amtool"
    assert_ok(run(need_binary("amtool"), *args[1:]))
