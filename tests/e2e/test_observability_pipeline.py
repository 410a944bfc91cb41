"""The whole alerting pipeline on real processes: app -> Prometheus -> Alertmanager (mTLS) -> webhook.

One `minimarket serve --service all` on PostgreSQL through a TcpProxy, Debian's Prometheus and
Alertmanager, and a tiny webhook receiver in a thread, all on loopback. The configs are the
PROJECT's (observability/prometheus, observability/alertmanager) rendered into tmp with only
what cannot be the same here changed: targets and ports, TLS paths, 1 s scrape/evaluation
intervals, every rule's `for:` -> 0s, Alertmanager's group_wait/group_interval -> 1s and the
webhook URL. Only the `prometheus` and `dashboard` jobs are kept (there are no agents nor
exporters here).

The story, as in the runbook: the database goes away (the proxy stops), /api answers 503
`base_no_disponible`; DatabaseDown fires and is delivered to the webhook; HighErrorRate fires in
Prometheus, reaches Alertmanager over mutual TLS and is inhibited there by DatabaseDown
(alertmanager.yml: "con la base caída, los errores ... son consecuencia"), so nobody is paged
twice. The runbook's PB1/PB2 PromQL answers with real data. When the database comes back,
DatabaseDown resolves, the inhibition lifts and the still-firing HighErrorRate (a 5 m window)
is delivered. Every wait is bounded; every process is stopped in `finally`.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from minimarket.ops.tls import generate_tls_material
from tests.e2e.servers import Server, StartServer, TcpProxy, free_port, measure, tail, via_proxy
from tests.e2e.test_alertmanager_tls import TLS_REFUSAL, Proc, _binary, _client, _context, _start, _wait
from tests.e2e.test_health_faults import poll_until

pytestmark = pytest.mark.timeout(180)

REPO = Path(__file__).resolve().parents[2]
PROM_DIR = REPO / "observability" / "prometheus"
AM_DIR = REPO / "observability" / "alertmanager"
PROM_TLS_DIR = "/etc/prometheus/tls"  # where compose mounts prometheus/tls, in prometheus.yml
PROM_SECRETS_DIR = "/etc/prometheus/secrets"  # where compose mounts prometheus/secrets (metrics_token)
METRICS_TOKEN = "token-de-metricas-del-pipeline-0123456789"  # the app asks Prometheus for it
AM_TLS_DIR = "/etc/alertmanager/tls"  # same files, in web.yml
APP_JOB = "dashboard"  # the job whose target is our all-in-one server
KEPT_JOBS = ("prometheus", APP_JOB)
STARTUP_TIMEOUT = 20.0
SCRAPE_TIMEOUT = 10.0  # a sample we just caused shows up in Prometheus (1 s scrapes)
FIRING_TIMEOUT = 20.0  # an alert fires / is delivered (1 s scrapes + 1 s evaluation + 1 s groups)
RECOVERY_TIMEOUT = 15.0
GROUP_WAIT = "1s"
QUIET_AFTER_INHIBITION = 3.0  # > group_wait + group_interval: a muted alert would have been sent by then
SKU = "OBS-1"

# The runbook (PB1, PB2) as written, and the per-endpoint P95 it means.
PB1_RATE = "rate(http_requests_total[5m])"
PB2_P95 = "histogram_quantile(0.95, rate(http_request_duration_seconds_bucket[5m]))"
PB2_P95_BY_ENDPOINT_AS_WRITTEN = ('histogram_quantile(0.95, rate(http_request_duration_seconds_bucket'
                                  '{endpoint=~"/api/.*"}[5m])) by (endpoint)')
PB2_P95_BY_ENDPOINT = ('histogram_quantile(0.95, sum by (endpoint, le) '
                       '(rate(http_request_duration_seconds_bucket{endpoint=~"/api/.*"}[5m])))')


# --------------------------------------------------------------------------- webhook receiver


class WebhookReceiver:
    """Records every notification Alertmanager POSTs (its webhook JSON), with the arrival time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[tuple[float, dict[str, Any]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = {"unparseable": body.decode("utf-8", "replace")}
                with receiver._lock:
                    receiver._received.append((time.monotonic(), payload))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/alertas"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        daemon=True, name="webhook")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def alerts(self, alertname: str, status: str = "firing") -> list[tuple[float, dict[str, Any]]]:
        """(arrival, alert) for every notified alert named `alertname` in state `status`."""
        with self._lock:
            received = list(self._received)
        return [(at, alert) for at, payload in received for alert in payload.get("alerts", [])
                if alert["labels"].get("alertname") == alertname and alert.get("status") == status]

    def summary(self) -> str:
        with self._lock:
            received = list(self._received)
        return "; ".join(f"{p.get('receiver')}:" + ",".join(f"{a['labels'].get('alertname')}={a.get('status')}"
                                                               for a in p.get("alerts", [])) for _, p in received)


# --------------------------------------------------------------------------- rendering the project's configs


def _dump(data: object, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def render_prometheus(work: Path, tls: Path, *, app_port: int, prom_port: int, am_port: int) -> Path:
    config = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text(encoding="utf-8"))
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")

    rule_files = []
    for relative in config["rule_files"]:
        rules = yaml.safe_load((PROM_DIR / relative).read_text(encoding="utf-8"))
        for group in rules["groups"]:
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = "0s"
        rule_files.append(str(_dump(rules, work / "rules" / relative)))
    config["rule_files"] = rule_files

    (alertmanagers,) = config["alerting"]["alertmanagers"]
    assert alertmanagers["scheme"] == "https"
    tls_config = alertmanagers["tls_config"]
    for field in ("ca_file", "cert_file", "key_file"):
        assert tls_config[field].startswith(PROM_TLS_DIR + "/"), tls_config
        tls_config[field] = str(tls / Path(tls_config[field]).name)
    alertmanagers["static_configs"] = [{"targets": [f"127.0.0.1:{am_port}"]}]

    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    authorization = jobs[APP_JOB]["authorization"]
    assert authorization["credentials_file"].startswith(PROM_SECRETS_DIR + "/"), authorization
    token_file = work / "secrets" / Path(authorization["credentials_file"]).name
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(METRICS_TOKEN + "\n", encoding="utf-8")  # as `echo` writes it: Prometheus trims it
    authorization["credentials_file"] = str(token_file)
    for name, port in (("prometheus", prom_port), (APP_JOB, app_port)):
        (static,) = jobs[name]["static_configs"]
        static["targets"] = [f"127.0.0.1:{port}"]  # labels (service: dashboard) stay as they are
    config["scrape_configs"] = [jobs[name] for name in KEPT_JOBS]
    return _dump(config, work / "prometheus.yml")


def render_alertmanager(work: Path, tls: Path, webhook_url: str, token: str = "token-e2e") -> tuple[Path, Path]:
    config = yaml.safe_load((AM_DIR / "alertmanager.yml").read_text(encoding="utf-8"))

    def shorten(route: dict) -> None:
        for field in ("group_wait", "group_interval"):
            if field in route:
                route[field] = GROUP_WAIT
        for child in route.get("routes", []):
            shorten(child)

    shorten(config["route"])
    hooks = [hook for receiver in config["receivers"] for hook in receiver.get("webhook_configs", [])]
    assert hooks, "alertmanager.yml has no webhook receiver to point at the test's"
    token_file = work / "webhook_token"  # alertmanager.yml's credentials_file, here (the stub ignores it)
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(token + "\n", encoding="utf-8")
    for hook in hooks:
        hook["url"] = webhook_url
        hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    web = (AM_DIR / "web.yml").read_text(encoding="utf-8")
    assert AM_TLS_DIR in web and "RequireAndVerifyClientCert" in web
    web_path = work / "web.yml"
    web_path.write_text(web.replace(AM_TLS_DIR, str(tls)), encoding="utf-8")
    return _dump(config, work / "alertmanager.yml"), web_path


# --------------------------------------------------------------------------- helpers


@dataclass
class Pipeline:
    server: Server
    key: str
    prometheus: Proc
    alertmanager: Proc
    prom: httpx.Client  # plain HTTP to Prometheus
    am: httpx.Client  # HTTPS with the CA and Prometheus' client certificate


def query(p: Pipeline, expr: str) -> list[dict[str, Any]]:
    r = p.prom.get(p.prometheus.base_url + "/api/v1/query", params={"query": expr})
    body = r.json()
    assert r.status_code == 200 and body["status"] == "success", f"{expr!r}: {r.status_code} {r.text[:500]}"
    return body["data"]["result"]


def scalar(p: Pipeline, expr: str) -> float | None:
    result = query(p, expr)
    return float(result[0]["value"][1]) if result else None


def prom_alerts(p: Pipeline, alertname: str) -> list[dict[str, Any]]:
    r = p.prom.get(p.prometheus.base_url + "/api/v1/alerts")
    r.raise_for_status()
    return [a for a in r.json()["data"]["alerts"] if a["labels"]["alertname"] == alertname]


def am_alerts(p: Pipeline, alertname: str) -> list[dict[str, Any]]:
    """Alertmanager's view (active, silenced and inhibited alike), over mTLS."""
    r = p.am.get(p.alertmanager.base_url + "/api/v2/alerts", params={"filter": f'alertname="{alertname}"'})
    r.raise_for_status()
    return r.json()


def until(proc: Proc, probe: Callable[[], Any], timeout: float, what: str) -> float:
    """Wait (bounded) until `probe()` is truthy; returns the seconds it took."""
    started = time.monotonic()
    _wait(proc, lambda: bool(probe()), timeout, what)
    return time.monotonic() - started


def api_burst(p: Pipeline, path: str, count: int, expect: int) -> list[httpx.Response]:
    with p.server.client(p.key, timeout=10) as client:
        responses = [client.get(path) for _ in range(count)]
    wrong = [f"{r.status_code} {r.text[:200]}" for r in responses if r.status_code != expect]
    assert not wrong, f"GET {path}: expected {expect} x{count}, got {wrong[:3]}"
    return responses


def wait_scraped(p: Pipeline, selector: str, at_least: int) -> float:
    """Wait until Prometheus has scraped `sum(selector) >= at_least` (so the next increase is a rate)."""
    expr = f"sum({selector})"
    return until(p.prometheus, lambda: (scalar(p, expr) or 0) >= at_least, SCRAPE_TIMEOUT, f"{expr} >= {at_least}")


# --------------------------------------------------------------------------- the test


def test_database_outage_alerts_flow_from_app_to_webhook(start_server: StartServer, pg_database: str,
                                                         pg_proxy: TcpProxy, tmp_path: Path) -> None:
    prom_bin = _binary("PROMETHEUS_BIN", "/usr/bin/prometheus", "prometheus")
    am_bin = _binary("ALERTMANAGER_BIN", "/usr/bin/prometheus-alertmanager", "alertmanager")
    began = time.monotonic()
    server = start_server(via_proxy(pg_database, pg_proxy), METRICS_TOKEN=METRICS_TOKEN)
    key = server.create_key("observabilidad")
    assert httpx.get(server.base_url + "/metrics", timeout=5).status_code == 401  # only Prometheus may read it

    work = tmp_path / "obs"
    tls = work / "tls"
    generate_tls_material(tls, days=2, ca_days=3)
    webhook = WebhookReceiver()
    webhook.start()
    procs: list[Proc] = []
    clients: list[httpx.Client] = []
    try:
        am_port, prom_port = free_port(), free_port()
        am_config, web_config = render_alertmanager(work, tls, webhook.url)
        prom_config = render_prometheus(work, tls, app_port=server.port, prom_port=prom_port, am_port=am_port)
        (work / "am-data").mkdir()
        (work / "prom-data").mkdir()
        alertmanager = _start("alertmanager", [
            am_bin, f"--config.file={am_config}", f"--web.config.file={web_config}",
            f"--web.listen-address=127.0.0.1:{am_port}", f"--storage.path={work / 'am-data'}",
            "--cluster.listen-address=", "--log.level=debug",
        ], work, f"https://127.0.0.1:{am_port}")
        procs.append(alertmanager)
        prometheus = _start("prometheus", [
            prom_bin, f"--config.file={prom_config}", f"--storage.tsdb.path={work / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            # The first notifications usually precede Alertmanager discovery and are dropped;
            # the default 1 m resend delay would outlast every wait here.
            "--rules.alert.resend-delay=1s",
        ], work, f"http://127.0.0.1:{prom_port}")
        procs.append(prometheus)
        p = Pipeline(server=server, key=key, prometheus=prometheus, alertmanager=alertmanager,
                     prom=httpx.Client(timeout=5.0, trust_env=False), am=_client(_context(tls)))
        clients += [p.prom, p.am]
        until(alertmanager, lambda: p.am.get(alertmanager.base_url + "/-/ready").status_code == 200,
              STARTUP_TIMEOUT, "/-/ready over mTLS")
        until(prometheus, lambda: p.prom.get(prometheus.base_url + "/-/ready").status_code == 200,
              STARTUP_TIMEOUT, "/-/ready")
        ready = time.monotonic() - began

        # ---- 1. healthy traffic, in two scraped rounds: a counter's first sample is no rate yet.
        with server.client(key) as client:
            created = client.post("/api/inventory", json={"sku": SKU, "name": "Yerba de prueba", "initial_stock": 10})
        assert created.status_code == 201, created.text
        api_burst(p, "/api/inventory", 5, 200)
        api_burst(p, f"/api/inventory/{SKU}", 5, 200)
        api_selector = f'http_requests_total{{job="{APP_JOB}", endpoint=~"/api/.*"}}'
        wait_scraped(p, api_selector, 11)
        api_burst(p, "/api/inventory", 10, 200)
        api_burst(p, f"/api/inventory/{SKU}", 5, 200)
        wait_scraped(p, api_selector, 26)

        # The target label `service` wins; the app's own (`all`) is kept as exported_service.
        series = query(p, f'http_requests_total{{job="{APP_JOB}", endpoint="/api/inventory", status="200"}}')
        assert [(s["metric"]["service"], s["metric"].get("exported_service")) for s in series] == \
            [(APP_JOB, "all")], series

        # ---- 2. the database goes away. With the project's `for:` (DatabaseDown 1m, HighErrorRate 5m)
        # DatabaseDown always fires first; with every `for:` at 0s that order is made explicit by
        # waiting for its delivery before the burst of errors.
        pg_proxy.stop()
        outage = time.monotonic()
        first = api_burst(p, "/api/inventory", 3, 503)
        assert {r.json()["error"]["code"] for r in first} == {"base_no_disponible"}
        until(prometheus, lambda: [a for a in prom_alerts(p, "DatabaseDown") if a["state"] == "firing"],
              FIRING_TIMEOUT, "DatabaseDown firing in Prometheus")
        db_prom = time.monotonic() - outage
        until(alertmanager, lambda: am_alerts(p, "DatabaseDown"), FIRING_TIMEOUT, "DatabaseDown in Alertmanager")
        db_am = time.monotonic() - outage
        until(alertmanager, lambda: webhook.alerts("DatabaseDown"), FIRING_TIMEOUT, "DatabaseDown at the webhook")
        db_hook = time.monotonic() - outage
        assert scalar(p, "min(minimarket_database_up)") == 0
        (database_down,) = am_alerts(p, "DatabaseDown")
        assert database_down["status"]["state"] == "active", database_down
        assert database_down["labels"]["severity"] == "critical"
        assert [r["name"] for r in database_down["receivers"]] == ["critical"]

        # The 503 series exists in Prometheus now; the burst is then an increase, i.e. a rate.
        error_selector = f'http_requests_total{{job="{APP_JOB}", status="503"}}'
        wait_scraped(p, error_selector, 3)
        api_burst(p, "/api/inventory", 30, 503)
        api_burst(p, f"/api/inventory/{SKU}", 10, 503)
        burst = time.monotonic()

        ratio_expr = f'service:http_requests:error_ratio_rate5m{{service="{APP_JOB}"}}'
        until(prometheus, lambda: (scalar(p, ratio_expr) or 0) > 0.05, FIRING_TIMEOUT, f"{ratio_expr} > 0.05")
        ratio = scalar(p, ratio_expr)
        until(prometheus, lambda: [a for a in prom_alerts(p, "HighErrorRate") if a["state"] == "firing"],
              FIRING_TIMEOUT, "HighErrorRate firing in Prometheus")
        err_prom = time.monotonic() - burst
        (high_error_prom,) = [a for a in prom_alerts(p, "HighErrorRate") if a["state"] == "firing"]
        assert high_error_prom["labels"]["service"] == APP_JOB and high_error_prom["labels"]["severity"] == "critical"

        # Delivered over mTLS to Alertmanager, which inhibits it: DatabaseDown explains it.
        until(alertmanager, lambda: am_alerts(p, "HighErrorRate"), FIRING_TIMEOUT, "HighErrorRate in Alertmanager")
        err_am = time.monotonic() - burst
        seen_in_am = time.monotonic()
        (high_error,) = am_alerts(p, "HighErrorRate")
        assert high_error["labels"]["service"] == APP_JOB
        assert high_error["status"]["state"] == "suppressed", high_error
        assert high_error["status"]["inhibitedBy"] == [database_down["fingerprint"]], (high_error, database_down)
        assert high_error["status"]["silencedBy"] == []
        active_ams = p.prom.get(prometheus.base_url + "/api/v1/alertmanagers").json()["data"]["activeAlertmanagers"]
        assert [a["url"] for a in active_ams] == [f"https://127.0.0.1:{am_port}/api/v2/alerts"]

        # ---- runbook PB1 / PB2 against real data.
        pb1 = query(p, PB1_RATE)
        assert any(s["metric"].get("endpoint") == "/api/inventory" and s["metric"].get("status") == "503"
                   and float(s["value"][1]) > 0 for s in pb1), pb1
        pb2 = query(p, PB2_P95)
        assert any(math.isfinite(float(s["value"][1])) for s in pb2), pb2
        bad = p.prom.get(prometheus.base_url + "/api/v1/query", params={"query": PB2_P95_BY_ENDPOINT_AS_WRITTEN})
        assert bad.status_code == 400 and bad.json()["errorType"] == "bad_data", bad.text  # the runbook's is invalid
        by_endpoint = {s["metric"]["endpoint"]: float(s["value"][1]) for s in query(p, PB2_P95_BY_ENDPOINT)}
        assert {"/api/inventory", "/api/inventory/{sku}"} <= set(by_endpoint), by_endpoint
        assert all(e.startswith("/api/") and SKU not in e for e in by_endpoint), by_endpoint  # templates, not paths
        assert math.isfinite(by_endpoint["/api/inventory"]) and by_endpoint["/api/inventory"] > 0, by_endpoint
        for labels in query(p, PB2_P95_BY_ENDPOINT):  # `sum by (endpoint, le)` leaves exactly `endpoint`
            assert set(labels["metric"]) == {"endpoint"}, labels
        # The scrape never failed during the outage: ServiceDown would mute everything of the service.
        assert [s["value"][1] for s in query(p, f'up{{job="{APP_JOB}"}}')] == ["1"]
        assert not prom_alerts(p, "ServiceDown")

        # Alertmanager demands a client certificate.
        with _client(_context(tls, client_cert=False)) as anonymous, pytest.raises(httpx.TransportError) as refused:
            anonymous.get(alertmanager.base_url + "/api/v2/alerts")
        assert TLS_REFUSAL.search(str(refused.value)), refused.value

        # Inhibited means not sent: give Alertmanager more than group_wait + group_interval.
        time.sleep(max(0.0, QUIET_AFTER_INHIBITION - (time.monotonic() - seen_in_am)))
        assert am_alerts(p, "HighErrorRate")[0]["status"]["state"] == "suppressed"
        assert not webhook.alerts("HighErrorRate"), webhook.summary()

        # ---- 3. the database comes back: DatabaseDown resolves and lifts the inhibition.
        pg_proxy.start()
        recovery = time.monotonic()
        _, health_back = poll_until(server, "/health", lambda r: r.status_code == 200, RECOVERY_TIMEOUT)
        until(alertmanager, lambda: webhook.alerts("DatabaseDown", "resolved"), RECOVERY_TIMEOUT,
              "DatabaseDown resolved at the webhook")
        resolved = time.monotonic() - recovery
        until(alertmanager, lambda: webhook.alerts("HighErrorRate"), RECOVERY_TIMEOUT,
              "HighErrorRate at the webhook once DatabaseDown resolved")
        delivered = time.monotonic() - recovery
        ((_, notified),) = webhook.alerts("HighErrorRate")
        assert notified["labels"]["service"] == APP_JOB
        assert notified["annotations"]["runbook_url"].endswith("#higherrorrate")
        (high_error,) = am_alerts(p, "HighErrorRate")
        assert high_error["status"]["state"] == "active" and high_error["status"]["inhibitedBy"] == [], high_error
        assert scalar(p, ratio_expr) > 0.05  # still over the threshold: the 5 m window remembers

        measure("observability pipeline: database outage",
                f"stack ready {ready:.1f} s; DatabaseDown firing {db_prom:.1f} s after the outage, in Alertmanager "
                f"{db_am:.1f} s, at the webhook {db_hook:.1f} s; HighErrorRate (ratio {ratio:.2f}) firing "
                f"{err_prom:.1f} s after the 503 burst, in Alertmanager (inhibited) {err_am:.1f} s")
        measure("observability pipeline: recovery",
                f"/health 200 {health_back:.1f} s after the proxy came back; DatabaseDown resolved at the webhook "
                f"{resolved:.1f} s, HighErrorRate delivered {delivered:.1f} s; total {time.monotonic() - began:.1f} s")
    except BaseException:
        print(f"logs: {work} (prometheus.log, alertmanager.log), app: {server.log_path}")
        print(f"webhook received: {webhook.summary()}")
        for proc in procs:
            print(f"--- {proc.name} ({proc.log_path}) ---\n{tail(proc.log_path, 40)}")
        raise
    finally:
        for client in clients:
            client.close()
        for proc in reversed(procs):
            proc.stop()
        webhook.stop()
