"""METRICS_TOKEN: /metrics only with `Authorization: Bearer <token>` when it is set, and /health's
error details (host names, ports, URLs) only for a valid API key or that token."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from minimarket.apps import create_app
from minimarket.config import ConfigError
from tests.helpers import make_settings
from tests.integration.helpers import error_of

TOKEN = secrets.token_hex(24)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PEER_PORT = closed_port()
PEER_URL = f"http://localhost:{PEER_PORT}"  # a peer that does not answer: its check fails with host and port


@pytest.fixture
def settings(database_url: str):  # noqa: ANN201 - overrides conftest's
    return make_settings(database_url, metrics_token=TOKEN, deposito_url=PEER_URL)


@pytest.fixture
def open_metrics(database_url: str) -> Iterator[TestClient]:
    app = create_app("dashboard", make_settings(database_url, deposito_url=PEER_URL))
    try:
        with TestClient(app) as client:
            yield client
    finally:
        app.state.db.dispose()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_metrics_need_the_token_when_it_is_set(client, admin):  # noqa: ANN001
    for headers in ({}, bearer(TOKEN[:-1] + "x"), bearer(""), {"Authorization": TOKEN}, admin,
                    {"Authorization": f"Basic {TOKEN}"}):
        refused = client.get("/metrics", headers=headers)
        error_of(refused, 401, code="no_autenticado", mentions="METRICS_TOKEN")
        assert refused.headers["www-authenticate"].startswith("Bearer"), headers
        assert "http_requests_total" not in refused.text
    scraped = client.get("/metrics", headers=bearer(TOKEN))
    assert scraped.status_code == 200 and "http_requests_total" in scraped.text
    assert "minimarket_ratelimit_backend" in scraped.text


def test_without_a_token_metrics_stay_open(open_metrics):  # noqa: ANN001
    assert open_metrics.get("/metrics").status_code == 200


def test_health_hides_hosts_and_ports_from_unauthenticated_callers(client, admin):  # noqa: ANN001
    anonymous = client.get("/health")
    assert anonymous.status_code == 503
    body = anonymous.json()
    assert body["failing"] == ["peer:deposito"] and body["checks"]["peer:deposito"] == {"status": "fail"}
    assert "localhost" not in anonymous.text and str(PEER_PORT) not in anonymous.text, anonymous.text
    assert "X-API-Key" in body["detail"]
    assert body["checks"]["database"]["status"] == "ok"
    wrong = client.get("/health", headers={**bearer("x" * 32), "X-API-Key": "mm_dead0000.nada"})
    assert str(PEER_PORT) not in wrong.text and "error" not in wrong.json()["checks"]["peer:deposito"]
    for headers in (admin, bearer(TOKEN)):
        detailed = client.get("/health", headers=headers)
        assert detailed.status_code == 503
        peer = detailed.json()["checks"]["peer:deposito"]
        assert peer["status"] == "fail" and peer["url"] == PEER_URL and peer["error"], peer
        assert "detail" not in detailed.json()


def test_health_hides_details_without_a_token_configured_too(open_metrics):  # noqa: ANN001
    anonymous = open_metrics.get("/health")
    assert anonymous.status_code == 503 and str(PEER_PORT) not in anonymous.text, anonymous.text


@pytest.mark.parametrize("token", ["corto", "CAMBIAR_token_de_metricas", "con espacios en el medio!"])
def test_a_weak_metrics_token_is_refused_at_start(database_url, token):  # noqa: ANN001
    with pytest.raises(ConfigError, match="METRICS_TOKEN"):
        create_app("all", make_settings(database_url, metrics_token=token))
