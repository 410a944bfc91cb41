"""POST /api/alerts/webhook (Alertmanager's payload, bearer token) and GET /api/alerts, on both backends.

The e-mails go to a real SMTP server in a thread (tests/smtp_sink.py); the whole path from
Prometheus through Alertmanager is tests/e2e/test_alert_delivery.py.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from minimarket.alerts.api import _store
from minimarket.alerts.models import StoredAlert
from minimarket.alerts.notify import write_recipients
from minimarket.alerts.schemas import AlertmanagerNotification
from minimarket.apps import create_app
from minimarket.platform.secrets import set_secret
from prometheus_client import REGISTRY

from tests.helpers import make_settings
from tests.e2e.servers import free_port
from tests.integration.helpers import error_of
from tests.smtp_sink import SmtpSink

KEY = "3f" * 32
TOKEN = "tok-" + "a1b2c3d4" * 6
T0 = datetime(2026, 11, 30, 21, 0, tzinfo=UTC)


def alert(name: str = "StockLedgerMismatch", *, status: str = "firing", fingerprint: str = "a1b2c3d4e5f60718",
          starts: datetime = T0, ends: datetime | None = None, service: str | None = None) -> dict:
    labels = {"alertname": name, "severity": "critical", "monitor": "minimarket"}
    if service:
        labels["service"] = service
    return {"status": status, "labels": labels,
            "annotations": {"summary": "Existencias que no coinciden con el libro de movimientos",
                            "description": "2 existencia(s) no coinciden.",
                            "runbook_url": "docs/RESPONDING_TO_ALERTS.md#stockledgermismatch"},
            "startsAt": starts.isoformat().replace("+00:00", "Z"),
            "endsAt": (ends.isoformat().replace("+00:00", "Z") if ends else "0001-01-01T00:00:00Z"),
            "generatorURL": "http://prometheus:9090/graph?g0.expr=max%28minimarket_ledger_mismatches%29",
            "fingerprint": fingerprint}


def notification(*alerts: dict, status: str | None = None, receiver: str = "critical") -> dict:
    alerts = alerts or (alert(),)
    return {"version": "4", "groupKey": '{}:{alertname="StockLedgerMismatch"}', "truncatedAlerts": 0,
            "status": status or ("firing" if any(a["status"] == "firing" for a in alerts) else "resolved"),
            "receiver": receiver, "groupLabels": {"alertname": alerts[0]["labels"]["alertname"]},
            "commonLabels": alerts[0]["labels"], "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
            "alerts": list(alerts)}


BEARER = {"Authorization": f"Bearer {TOKEN}"}


def make_app(database_url: str, **overrides):  # noqa: ANN003, ANN201
    app = create_app("all", make_settings(database_url, database_encryption_key=KEY, **overrides))
    with app.state.db.write() as session:
        set_secret(session, "alertmanager_webhook_token", TOKEN, KEY)
    return app


@pytest.fixture
def alerts_app(database_url):  # noqa: ANN001, ANN201
    app = make_app(database_url)
    yield app
    app.state.db.dispose()


@pytest.fixture
def hook(alerts_app):  # noqa: ANN001, ANN201
    with TestClient(alerts_app) as client:
        yield client


def reader(app) -> dict[str, str]:  # noqa: ANN001
    from minimarket.accounts.audit import Context
    from minimarket.accounts.keys import create_api_key

    with app.state.db.write() as session:
        _, key = create_api_key(session, Context(actor="test"), name=f"tablero-{secrets.token_hex(3)}", role="lectura")
    return {"X-API-Key": key}


def metric_value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def eventually(probe, timeout: float = 15.0):  # noqa: ANN001, ANN201
    """The e-mail goes out on its own thread after the answer: wait (bounded) for its outcome."""
    deadline = time.monotonic() + timeout
    while not (value := probe()):
        assert time.monotonic() < deadline, "the e-mail thread did not finish in time"
        time.sleep(0.05)
    return value


def rows(app) -> int:  # noqa: ANN001
    with app.state.db.read() as session:
        return session.scalar(select(func.count()).select_from(StoredAlert))


# --------------------------------------------------------------------------- storing and listing


def test_each_alert_is_stored_and_listed_for_every_reader(hook, alerts_app):
    body = notification(alert(), alert("HighErrorRate", fingerprint="ffee000011112222", service="agente-negocio"))
    response = hook.post("/api/alerts/webhook", json=body, headers=BEARER)
    assert response.status_code == 200, response.text
    receipt = response.json()
    assert (receipt["received"], receipt["created"], receipt["updated"]) == (2, 2, 0)

    listed = hook.get("/api/alerts", headers=reader(alerts_app))
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [i["name"] for i in items] == ["HighErrorRate", "StockLedgerMismatch"]  # newest first
    ledger = items[1]
    assert ledger["status"] == "firing" and ledger["severity"] == "critical" and ledger["service"] is None
    assert ledger["summary"] == "Existencias que no coinciden con el libro de movimientos"
    assert ledger["labels"]["monitor"] == "minimarket"
    assert ledger["annotations"]["runbook_url"].endswith("#stockledgermismatch")
    assert ledger["fingerprint"] == "a1b2c3d4e5f60718" and ledger["receiver"] == "critical"
    assert datetime.fromisoformat(ledger["starts_at"]) == T0 and ledger["ends_at"] is None
    assert items[0]["service"] == "agente-negocio"
    assert receipt["ids"] == [ledger["id"], items[0]["id"]]


def test_the_same_alert_resent_updates_instead_of_duplicating(hook, alerts_app):
    for n in range(3):
        response = hook.post("/api/alerts/webhook", json=notification(), headers=BEARER)
        assert response.json()["created"] == (1 if n == 0 else 0), response.text
    assert rows(alerts_app) == 1
    (item,) = hook.get("/api/alerts", headers=reader(alerts_app)).json()["items"]
    assert item["notifications"] == 3


def test_resolved_updates_the_row_and_a_late_firing_does_not_reopen_it(hook, alerts_app):
    hook.post("/api/alerts/webhook", json=notification(), headers=BEARER)
    end = T0 + timedelta(minutes=7)
    resolved = hook.post("/api/alerts/webhook", json=notification(alert(status="resolved", ends=end)), headers=BEARER)
    assert resolved.json()["updated"] == 1
    late = hook.post("/api/alerts/webhook", json=notification(alert()), headers=BEARER)
    assert late.status_code == 200
    key = reader(alerts_app)
    (item,) = hook.get("/api/alerts", headers=key).json()["items"]
    assert item["status"] == "resolved" and datetime.fromisoformat(item["ends_at"]) == end
    assert hook.get("/api/alerts?active=true", headers=key).json()["items"] == []
    assert len(hook.get("/api/alerts?status=resolved", headers=key).json()["items"]) == 1

    # The same alert firing again later is a new occurrence: a new row, active.
    again = hook.post("/api/alerts/webhook", json=notification(alert(starts=T0 + timedelta(hours=1))), headers=BEARER)
    assert again.json()["created"] == 1
    active = hook.get("/api/alerts?active=true", headers=key).json()["items"]
    assert [(a["name"], a["status"]) for a in active] == [("StockLedgerMismatch", "firing")]
    assert rows(alerts_app) == 2


def test_the_list_pages_and_filters_by_name(hook, alerts_app):
    body = notification(*[alert(f"Alerta{n}", fingerprint=f"{n:016x}") for n in range(5)])
    assert hook.post("/api/alerts/webhook", json=body, headers=BEARER).status_code == 200
    key = reader(alerts_app)
    seen, cursor = [], None
    while True:
        page = hook.get("/api/alerts", params={"limit": 2, **({"cursor": cursor} if cursor else {})}, headers=key).json()
        seen += [i["name"] for i in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == [f"Alerta{n}" for n in reversed(range(5))]
    assert [i["name"] for i in hook.get("/api/alerts?name=Alerta3", headers=key).json()["items"]] == ["Alerta3"]
    error_of(hook.get("/api/alerts?cursor=abc", headers=key), 422, mentions="cursor")
    error_of(hook.get("/api/alerts?status=pending", headers=key), 422, mentions="status")
    error_of(hook.get("/api/alerts?limit=0", headers=key), 422, mentions="limit")


def test_concurrent_deliveries_of_one_alert_leave_one_row(alerts_app, backend):
    payload = AlertmanagerNotification.model_validate(notification())
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            _store(alerts_app.state.db, payload)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    with alerts_app.state.db.read() as session:
        counts = session.scalars(select(StoredAlert.notifications)).all()
    assert counts == [8]


# --------------------------------------------------------------------------- authentication


def refused(name: str) -> float:
    return metric_value("minimarket_auth_failures_total", reason=f"webhook_{name}")


def test_a_missing_or_wrong_token_is_401_and_counted(hook, alerts_app, make_key):
    before = {r: refused(r) for r in ("missing", "invalid")}
    for headers, reason in (({}, "missing"), ({"Authorization": "Bearer "}, "missing"),
                            ({"Authorization": f"Basic {TOKEN}"}, "missing"),
                            ({"X-API-Key": make_key("admin")}, "missing"),
                            ({"Authorization": f"Bearer {TOKEN[:-1]}x"}, "invalid"),
                            ({"Authorization": "Bearer otra-cosa"}, "invalid")):
        response = hook.post("/api/alerts/webhook", json=notification(), headers=headers)
        error_of(response, 401, code="no_autenticado")
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), headers
    assert refused("missing") - before["missing"] == 4
    assert refused("invalid") - before["invalid"] == 2
    assert rows(alerts_app) == 0


def test_the_token_is_checked_before_the_body_is_read(hook, alerts_app):
    response = hook.post("/api/alerts/webhook", content=b"{no es json", headers={"Authorization": "Bearer x",
                                                                                 "Content-Type": "application/json"})
    error_of(response, 401)
    response = hook.post("/api/alerts/webhook", content=b"{no es json", headers={**BEARER,
                                                                                 "Content-Type": "application/json"})
    error_of(response, 400, code="json_invalido")


def test_without_a_configured_token_the_webhook_says_so(database_url):
    app = create_app("all", make_settings(database_url, database_encryption_key=KEY))
    try:
        with TestClient(app) as client:
            before = refused("not_configured")
            response = client.post("/api/alerts/webhook", json=notification(), headers=BEARER)
            error_of(response, 503, code="webhook_no_configurado", mentions="alertmanager_webhook_token")
            assert refused("not_configured") == before + 1
        assert rows(app) == 0
    finally:
        app.state.db.dispose()


# --------------------------------------------------------------------------- payload validation


def _broken(change) -> dict:  # noqa: ANN001
    body = copy.deepcopy(notification())
    change(body)
    return body


BAD_PAYLOADS = {
    "version": lambda b: b.update(version="3"),
    "alerts": lambda b: b.update(alerts=[]),
    "status": lambda b: b.update(status="pending"),
    "receiver": lambda b: b.pop("receiver"),
    "alerts[0].startsAt": lambda b: b["alerts"][0].update(startsAt="ayer"),
    "alerts[0].fingerprint": lambda b: b["alerts"][0].update(fingerprint="no-hex!"),
    "alerts[0].labels": lambda b: b["alerts"][0]["labels"].pop("alertname"),
    "alerts[0].annotations": lambda b: b["alerts"][0]["annotations"].update(summary="a\x00b"),
    "alerts[0].status": lambda b: b["alerts"][0].update(status="silenced"),
}


@pytest.mark.parametrize("field", sorted(BAD_PAYLOADS))
def test_a_bad_payload_is_422_naming_the_field_and_stores_nothing(hook, alerts_app, field):
    response = hook.post("/api/alerts/webhook", json=_broken(BAD_PAYLOADS[field]), headers=BEARER)
    error = error_of(response, 422, code="datos_invalidos", mentions=field)
    assert field in [d["field"] for d in error["details"]], error
    assert rows(alerts_app) == 0


# --------------------------------------------------------------------------- e-mail


def smtp_app(database_url: str, port: int, *, recipients: list[str] | None, **env):  # noqa: ANN003, ANN201
    app = make_app(database_url, smtp_host="127.0.0.1", smtp_port=port, smtp_security="none",
                   smtp_from="alertas@minimercado.com.ar", smtp_timeout_seconds=3, **env)
    if recipients is not None:
        with app.state.db.write() as session:
            write_recipients(session, recipients)
    return app


def test_the_stores_addresses_get_an_email_with_the_alert(database_url):
    with SmtpSink() as sink:
        app = smtp_app(database_url, sink.port, recipients=["encargado@minimercado.com.ar", "duenia@example.com"],
                       smtp_user="alertas")
        with app.state.db.write() as session:
            set_secret(session, "smtp_password", "clave-smtp-123", KEY)
        try:
            with TestClient(app) as client:
                assert client.post("/api/alerts/webhook", json=notification(), headers=BEARER).status_code == 200
                (mail,) = sink.wait_for(1)
                key = reader(app)
                item = eventually(lambda: [i for i in client.get("/api/alerts", headers=key).json()["items"]
                                           if i["emailed_at"]])[0]
        finally:
            app.state.db.dispose()
    assert mail.recipients == ["encargado@minimercado.com.ar", "duenia@example.com"]
    assert mail.sender == "alertas@minimercado.com.ar" and mail.login == ("alertas", "clave-smtp-123")
    assert mail.message["Subject"] == "[Mini Market] ACTIVA: StockLedgerMismatch"
    text = mail.message.get_content()
    assert "Existencias que no coinciden" in text and "30/11/2026 18:00:00" in text  # Buenos Aires time
    assert "docs/RESPONDING_TO_ALERTS.md#stockledgermismatch" in text
    assert item["emailed_at"] is not None and item["email_error"] is None


def test_an_smtp_failure_keeps_the_alert_and_is_counted(database_url):
    closed = free_port()  # nothing listens there
    app = smtp_app(database_url, closed, recipients=["encargado@minimercado.com.ar"])
    before = metric_value("minimarket_alert_emails_total", result="failed")
    try:
        with TestClient(app) as client:
            response = client.post("/api/alerts/webhook", json=notification(), headers=BEARER)
            assert response.status_code == 200 and response.json()["created"] == 1
            key = reader(app)
            (item,) = eventually(lambda: [i for i in client.get("/api/alerts", headers=key).json()["items"]
                                          if i["email_error"]])
    finally:
        app.state.db.dispose()
    assert item["status"] == "firing" and item["emailed_at"] is None
    assert f"127.0.0.1:{closed}" in item["email_error"]
    eventually(lambda: metric_value("minimarket_alert_emails_total", result="failed") == before + 1)


def test_without_smtp_or_recipients_nothing_is_sent_and_the_alert_stays(database_url):
    with SmtpSink() as sink:
        app = smtp_app(database_url, sink.port, recipients=None)
        before = metric_value("minimarket_alert_emails_total", result="skipped")
        try:
            with TestClient(app) as client:
                assert client.post("/api/alerts/webhook", json=notification(), headers=BEARER).status_code == 200
            eventually(lambda: metric_value("minimarket_alert_emails_total", result="skipped") == before + 1)
            assert sink.messages == [] and rows(app) == 1
        finally:
            app.state.db.dispose()


def test_recipients_are_checked(alerts_app):
    with alerts_app.state.db.write() as session, pytest.raises(ValueError, match="no-es-correo"):
        write_recipients(session, ["ok@example.com", "no-es-correo"])
