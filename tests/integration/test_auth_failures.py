"""Refused authentication is counted by reason and logged with the key's prefix, never the key."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from minimarket.accounts.audit import Context
from minimarket.accounts.keys import revoke_api_key
from minimarket.platform.logging import configure_logging
from tests.helpers import make_settings
from tests.logging_state import preserved_logging
from tests.integration.helpers import error_of, metric_labels, metric_value

REASONS = ("missing", "invalid", "revoked", "forbidden")


@pytest.fixture
def settings(database_url: str):  # noqa: ANN201 - overrides conftest's: the local nginx is the named proxy
    return make_settings(database_url, trusted_proxies="127.0.0.1")


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], tuple[str, list[dict]]]]:
    """Reads the JSON lines on (captured) stdout; every bit of logging config is restored afterwards.

    configure_logging must run inside the test: only there is sys.stdout capsys's stream.
    """
    def read() -> tuple[str, list[dict]]:
        out = capsys.readouterr().out
        return out, [json.loads(line) for line in out.splitlines() if line.startswith("{")]

    with preserved_logging():
        yield read


def failures(client) -> dict[str, float]:  # noqa: ANN001
    text = client.get("/metrics").text
    return {reason: metric_value(text, "minimarket_auth_failures_total", reason=reason) for reason in REASONS}


def revoke(app, key: str) -> None:  # noqa: ANN001
    with app.state.db.write() as session:
        revoke_api_key(session, Context(actor="test"), ref=key[3:].split(".", 1)[0])


def test_each_refusal_is_counted_under_its_reason(app, client, make_key):  # noqa: ANN001
    reader, revoked = make_key("lectura", "mostrador"), make_key("admin", "caja-vieja")
    revoke(app, revoked)
    labels = {d.get("reason") for d in metric_labels(client.get("/metrics").text, "minimarket_auth_failures_total")}
    assert set(REASONS) <= labels  # every series exists before it first moves, so alerts see 0, not nothing
    before = failures(client)

    error_of(client.get("/api/inventory"), 401, code="no_autenticado")
    error_of(client.get("/api/inventory", headers={"X-API-Key": reader + "x"}), 401)
    error_of(client.get("/api/inventory", headers={"X-API-Key": "no-es-una-clave"}), 401)
    error_of(client.get("/api/inventory", headers={"X-API-Key": revoked}), 401)
    error_of(client.post("/api/inventory", json={"sku": "AUTH-1", "name": "x"}, headers={"X-API-Key": reader}), 403)
    assert client.get("/api/inventory", headers={"X-API-Key": reader}).status_code == 200  # not a failure

    after = failures(client)
    assert {r: after[r] - before[r] for r in REASONS} == {"missing": 1, "invalid": 2, "revoked": 1, "forbidden": 1}


def test_the_log_line_names_prefix_reason_ip_and_path_never_the_key(app, make_key, json_logs):  # noqa: ANN001
    good, old = make_key("lectura", "mostrador"), make_key("deposito", "tablet-deposito")
    revoke(app, old)
    good_prefix, old_prefix = good[3:].split(".", 1)[0], old[3:].split(".", 1)[0]
    wrong_secret = f"mm_{good_prefix}.{'A' * 43}"
    configure_logging("INFO", service="test-auth")

    with TestClient(app, client=("192.0.2.55", 41000)) as client:
        client.get("/api/inventory", headers={"X-API-Key": wrong_secret})
        client.get("/api/locations", headers={"X-API-Key": old})
        client.post("/api/movements", json={"lines": []}, headers={"X-API-Key": good})
        client.get("/api/categories")
    with TestClient(app, client=("127.0.0.1", 41001)) as proxied:  # nginx on the same machine
        proxied.get("/api/inventory", headers={"X-API-Key": wrong_secret, "X-Forwarded-For": "198.51.100.23"})
    out, records = json_logs()

    failed = [r for r in records if r.get("message") == "auth_failed"]
    seen = [(r["reason"], r["key_prefix"], r["client_ip"], r["path"]) for r in failed]
    assert seen == [
        ("invalid", good_prefix, "192.0.2.55", "/api/inventory"),
        ("revoked", old_prefix, "192.0.2.55", "/api/locations"),
        ("forbidden", good_prefix, "192.0.2.55", "/api/movements"),
        ("missing", None, "192.0.2.55", "/api/categories"),
        ("invalid", good_prefix, "198.51.100.23", "/api/inventory"),
    ], seen
    assert all(r["level"] == "warning" and r["service"] == "test-auth" for r in failed)
    for secret in (good, old, wrong_secret, good.split(".", 1)[1], old.split(".", 1)[1], "A" * 43):
        assert secret not in out  # not in these lines nor in any other line of the captured output
