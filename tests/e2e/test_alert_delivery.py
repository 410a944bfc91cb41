"""Alerts reach the store, on real processes: the app's /metrics -> Prometheus -> Alertmanager
(mTLS) -> the app's POST /api/alerts/webhook (bearer token) -> a row in `alertas` (GET /api/alerts)
and an e-mail received by an SMTP server started by the test (tests/smtp_sink.py).

One `minimarket serve --service all` on a fresh PostgreSQL, Debian's Prometheus and Alertmanager,
configured from the PROJECT's files rendered as test_observability_pipeline.py does (1 s intervals,
`for:` 0s, group_wait 1s) with the webhook URL pointed at this server and credentials_file at a
token file. The token and the recipients are set with the documented commands
(`minimarket secret set alertmanager_webhook_token`, `minimarket alerts emails`).

The story: someone edits a balance behind the ledger's back; `minimarket verify` records the
mismatch; StockLedgerMismatch (critical) fires from the app's own gauge; the store gets the row and
the e-mail. The balance is put back, verify runs clean, the alert resolves: the same row turns
`resolved` and a second e-mail says so.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from minimarket.db import Database
from minimarket.ops.tls import generate_tls_material
from tests.e2e.servers import StartServer, free_port, measure, tail
from tests.e2e.test_alertmanager_tls import _binary, _client, _context, _start
from tests.e2e.test_observability_pipeline import (
    FIRING_TIMEOUT,
    METRICS_TOKEN,
    STARTUP_TIMEOUT,
    Pipeline,
    am_alerts,
    prom_alerts,
    render_alertmanager,
    render_prometheus,
    until,
)
from tests.smtp_sink import SmtpSink

pytestmark = pytest.mark.timeout(180)

KEY = "5a" * 32
TOKEN = "e2e-token-" + "7c" * 20
SKU = "ALR-1"
RECIPIENTS = ["encargado@minimercado.com.ar", "duenio@minimercado.com.ar"]


def stored(server, key: str, name: str, status: str) -> list[dict]:  # noqa: ANN001
    with server.client(key, timeout=10) as client:
        response = client.get("/api/alerts", params={"name": name, "status": status})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def mails(sink: SmtpSink, subject: str) -> list:
    return [m for m in sink.messages if m.message["Subject"] == subject]


def tamper_balance(database_url: str, delta: int) -> None:
    """Change a balance without a movement: what `minimarket verify` exists to catch."""
    database = Database(database_url)
    try:
        with database.engine.begin() as conn:
            conn.execute(text("UPDATE existencias SET cantidad = cantidad + :d WHERE producto_id = "
                              "(SELECT id FROM productos WHERE sku = :sku)"), {"d": delta, "sku": SKU})
    finally:
        database.dispose()


def test_an_alert_from_the_apps_metrics_becomes_a_row_and_an_email(start_server: StartServer, pg_database: str,
                                                                    tmp_path: Path) -> None:
    prom_bin = _binary("PROMETHEUS_BIN", "/usr/bin/prometheus", "prometheus")
    am_bin = _binary("ALERTMANAGER_BIN", "/usr/bin/prometheus-alertmanager", "alertmanager")
    work, procs, clients = tmp_path / "obs", [], []
    tls = work / "tls"
    generate_tls_material(tls, days=2, ca_days=3)
    with SmtpSink() as sink:
        server = start_server(pg_database, DATABASE_ENCRYPTION_KEY=KEY, SMTP_HOST="127.0.0.1",
                              SMTP_PORT=str(sink.port), SMTP_SECURITY="none", SMTP_FROM="alertas@minimercado.com.ar",
                              SMTP_TIMEOUT_SECONDS="5", METRICS_TOKEN=METRICS_TOKEN)
        result = server.cli("secret", "set", "alertmanager_webhook_token", "--value", TOKEN)
        assert result.returncode == 0, result.stdout + result.stderr
        result = server.cli("alerts", "emails", *RECIPIENTS)
        assert result.returncode == 0 and RECIPIENTS[0] in result.stdout, result.stdout + result.stderr
        key = server.create_key("alertas")
        with server.client(key) as client:
            created = client.post("/api/inventory", json={"sku": SKU, "name": "Yerba", "initial_stock": 10})
        assert created.status_code == 201, created.text
        assert server.cli("verify").returncode == 0  # a clean ledger first: StockLedgerMismatch at 0
        try:
            am_port, prom_port = free_port(), free_port()
            am_config, web_config = render_alertmanager(work, tls, f"{server.base_url}/api/alerts/webhook", TOKEN)
            prom_config = render_prometheus(work, tls, app_port=server.port, prom_port=prom_port, am_port=am_port)
            (work / "am-data").mkdir()
            (work / "prom-data").mkdir()
            alertmanager = _start("alertmanager", [
                am_bin, f"--config.file={am_config}", f"--web.config.file={web_config}",
                f"--web.listen-address=127.0.0.1:{am_port}", f"--storage.path={work / 'am-data'}",
                "--cluster.listen-address=", "--log.level=debug"], work, f"https://127.0.0.1:{am_port}")
            procs.append(alertmanager)
            prometheus = _start("prometheus", [
                prom_bin, f"--config.file={prom_config}", f"--storage.tsdb.path={work / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}", "--rules.alert.resend-delay=1s"],
                work, f"http://127.0.0.1:{prom_port}")
            procs.append(prometheus)
            p = Pipeline(server=server, key=key, prometheus=prometheus, alertmanager=alertmanager,
                         prom=httpx.Client(timeout=5.0, trust_env=False), am=_client(_context(tls)))
            clients += [p.prom, p.am]
            until(alertmanager, lambda: p.am.get(alertmanager.base_url + "/-/ready").status_code == 200,
                  STARTUP_TIMEOUT, "Alertmanager /-/ready over mTLS")
            until(prometheus, lambda: p.prom.get(prometheus.base_url + "/-/ready").status_code == 200,
                  STARTUP_TIMEOUT, "Prometheus /-/ready")

            # ---- the ledger is broken behind its back; verify records it; the app's gauge says 1.
            tamper_balance(pg_database, +3)
            assert server.cli("verify").returncode != 0
            broken = time.monotonic()
            name = "StockLedgerMismatch"
            firing = lambda: [a for a in prom_alerts(p, name) if a["state"] == "firing"]  # noqa: E731
            to_prom = until(prometheus, firing, FIRING_TIMEOUT, f"{name} firing in Prometheus")
            fired = time.monotonic()
            until(alertmanager, lambda: am_alerts(p, name), FIRING_TIMEOUT, f"{name} in Alertmanager")
            to_am = time.monotonic() - fired
            until(alertmanager, lambda: stored(server, key, name, "firing"), FIRING_TIMEOUT, "the row")
            to_row = time.monotonic() - fired
            subject = f"[Mini Market] ACTIVA: {name}"
            until(alertmanager, lambda: mails(sink, subject), FIRING_TIMEOUT, "the e-mail")
            to_mail = time.monotonic() - fired

            (row,) = stored(server, key, name, "firing")
            (am_alert,) = am_alerts(p, name)
            # The same span on the processes' own clocks (one machine): rule active -> row -> e-mail.
            (prom_alert,) = firing()
            active_at = datetime.fromisoformat(prom_alert["activeAt"].replace("Z", "+00:00")).timestamp()
            row_at = datetime.fromisoformat(row["received_at"]).timestamp() - active_at
            mail_at = mails(sink, subject)[0].wall - active_at
            assert row["fingerprint"] == am_alert["fingerprint"] and row["severity"] == "critical"
            assert row["receiver"] == "critical" and row["summary"].startswith("Existencias que no coinciden")
            assert row["service"] is None and row["labels"]["monitor"] == "minimarket"  # store-wide, max()
            (mail,) = mails(sink, subject)
            assert mail.recipients == RECIPIENTS and mail.sender == "alertas@minimercado.com.ar"
            assert "minimarket verify" in mail.message.get_content()
            until(alertmanager, lambda: stored(server, key, name, "firing")[0]["emailed_at"], FIRING_TIMEOUT,
                  "the e-mail noted on the row")

            # ---- put back, verified clean: the same row is resolved and a second e-mail says so.
            tamper_balance(pg_database, -3)
            assert server.cli("verify").returncode == 0
            fixed = time.monotonic()
            until(alertmanager, lambda: stored(server, key, name, "resolved"), FIRING_TIMEOUT, "resolved row")
            to_resolved = time.monotonic() - fixed
            until(alertmanager, lambda: mails(sink, f"[Mini Market] RESUELTA: {name}"), FIRING_TIMEOUT,
                  "the resolved e-mail")
            (resolved,) = stored(server, key, name, "resolved")
            assert resolved["id"] == row["id"] and resolved["ends_at"] is not None
            assert resolved["notifications"] >= 2
            assert stored(server, key, name, "firing") == []
            with server.client(key) as client:
                active = client.get("/api/alerts", params={"active": "true", "limit": 500}).json()["items"]
            assert name not in {a["name"] for a in active}

            # Nothing was refused: every call Alertmanager made carried the right token.
            with server.client() as client:
                metrics = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
            assert "minimarket_alerts_received_total" in metrics
            refusals = [ln for ln in metrics.splitlines() if ln.startswith('minimarket_auth_failures_total{reason="webhook_')
                        and not ln.endswith(" 0.0")]
            assert refusals == [], refusals
            measure("alert delivery (StockLedgerMismatch)",
                    f"rule active (Prometheus activeAt) -> row stored {row_at:.2f} s -> e-mail received "
                    f"{mail_at:.2f} s (1 s scrape/evaluation, group_wait 1 s); seen by the test after verify "
                    f"returned: firing {to_prom:.1f} s, in Alertmanager +{to_am:.1f} s, row +{to_row:.1f} s, "
                    f"e-mail +{to_mail:.1f} s; fixed -> row resolved {to_resolved:.1f} s; "
                    f"total {time.monotonic() - broken:.1f} s")
            assert 0 <= row_at <= mail_at < FIRING_TIMEOUT, (row_at, mail_at)
        except BaseException:
            print(f"logs: {work}; app: {server.log_path}; mails: {[m.message['Subject'] for m in sink.messages]}")
            for proc in procs:
                print(f"--- {proc.name} ---\n{tail(proc.log_path, 40)}")
            raise
        finally:
            for client in clients:
                client.close()
            for proc in reversed(procs):
                proc.stop()

