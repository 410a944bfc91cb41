"""agente-negocio (:8002) on its own: its /health checks what it depends on, and it serves suppliers and invoices."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from minimarket.accounts.audit import Context
from minimarket.accounts.keys import create_api_key
from minimarket.apps import create_app
from tests.helpers import make_settings
from tests.integration.invoice_helpers import invoice_body


@pytest.fixture
def negocio(database_url):  # noqa: ANN001, ANN201
    app = create_app("negocio", make_settings(database_url, metrics_token="token-de-prueba-123456"))
    with TestClient(app) as client:
        with app.state.db.write() as session:
            _, key = create_api_key(session, Context(actor="test"), name="encargado", role="encargado")
        yield client, {"X-API-Key": key}
    app.state.db.dispose()


def test_negocio_health_checks_database_schema_and_cache(negocio):
    client, key = negocio
    health = client.get("/health", headers=key)
    assert health.status_code == 200, health.text
    body = health.json()
    assert body["service"] == "negocio" and body["status"] == "ok"
    assert {"database", "cache"} <= set(body["checks"]) and body["checks"]["database"]["status"] == "ok"


def test_a_negocio_without_its_database_is_503_naming_it():
    app = create_app("negocio", make_settings("postgresql+psycopg://tienda:x@127.0.0.1:1/minimarket"))
    try:
        with TestClient(app) as client:
            response = client.get("/health")
    finally:
        app.state.db.dispose()
    assert response.status_code == 503 and response.json()["failing"] == ["database"]


def test_negocio_serves_suppliers_and_invoices_but_not_stock_writes(negocio):
    client, key = negocio
    supplier = client.post("/api/suppliers", json={"name": "Distribuidora Del Plata S.A.", "cuit": "30-71234567-1"},
                           headers=key)
    assert supplier.status_code == 201, supplier.text
    body = invoice_body(lines=[], net={"21": "1000.00"}, vat={"21": "210.00"}, perception_iibb="0", total="1210.00")
    assert client.post("/api/invoices", json=body, headers=key).status_code == 201
    assert client.get("/api/invoices", headers=key).json()["items"][0]["number_display"] == "0003-00012345"
    assert client.post("/api/sales", json={"ticket_id": "T-1", "lines": []}, headers=key).status_code in (404, 405)
    metrics = client.get("/metrics", headers={"Authorization": "Bearer token-de-prueba-123456"})
    assert metrics.status_code == 200
    assert "minimarket_invoices_confirmed_total" in metrics.text
