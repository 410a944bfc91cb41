"""Security headers on every answer (200 to 429), HSTS and the Host check only in production,
CORS only for the configured origins, /docs still usable."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from minimarket.apps import create_app
from minimarket.config import ConfigError, Settings
from tests.helpers import make_settings
from tests.integration.helpers import error_of

ALWAYS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}
PANEL = "https://panel.minimercado.lan"


def production_settings(database_url: str, **overrides) -> Settings:  # noqa: ANN003
    values = {"allowed_hosts": "testserver,minimercado.lan", "database_encryption_key": secrets.token_hex(32),
              **overrides}
    return Settings(_env_file=None, database_url=database_url, minimarket_env="production", **values)


@pytest.fixture
def settings(database_url: str):  # noqa: ANN201 - overrides conftest's: a limit of 2 to reach 429 quickly
    return make_settings(database_url, rate_limit_per_key=2, max_body_bytes=1024)


@pytest.fixture
def production(database_url: str) -> Iterator[TestClient]:
    app = create_app("all", production_settings(database_url))
    try:
        with TestClient(app) as client:
            yield client
    finally:
        app.state.db.dispose()


def assert_secured(response, *, api: bool, hsts: bool = False) -> None:  # noqa: ANN001
    where = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
    for name, value in ALWAYS.items():
        assert response.headers.get(name) == value, (where, name, response.headers.get(name))
    csp = response.headers.get("content-security-policy", "")
    assert csp.startswith("default-src 'self'") and "frame-ancestors 'none'" in csp, (where, csp)
    assert "cdn.jsdelivr.net" not in csp and "unsafe-inline" not in csp, (where, csp)
    assert "camera=()" in response.headers.get("permissions-policy", ""), where
    assert ("strict-transport-security" in response.headers) is hsts, (where, dict(response.headers))
    if hsts:
        assert response.headers["strict-transport-security"].startswith("max-age=31536000"), where
    if api:
        assert response.headers.get("cache-control") == "no-store", where


def test_headers_on_every_kind_of_answer(client, admin, make_key):  # noqa: ANN001
    ok = client.get("/api/locations", headers=admin)
    assert ok.status_code == 200
    assert_secured(ok, api=True)
    assert_secured(client.get("/health/live"), api=False)

    unauthenticated = client.get("/api/locations")
    error_of(unauthenticated, 401, code="no_autenticado")
    assert_secured(unauthenticated, api=True)
    missing = client.get("/api/no-existe", headers={"X-API-Key": make_key("lectura")})  # its own key window
    error_of(missing, 404, code="ruta_inexistente")
    assert_secured(missing, api=True)
    assert_secured(client.get("/no-existe"), api=False)

    too_large = client.post("/api/inventory", content=b"{" + b" " * 2048 + b"}", headers={
        **admin, "Content-Type": "application/json"})
    error_of(too_large, 413, code="cuerpo_demasiado_grande")
    assert_secured(too_large, api=True)

    invalid = client.post("/api/inventory", json={"sku": "HDR-1"}, headers=admin)
    error_of(invalid, 422, code="datos_invalidos")
    assert_secured(invalid, api=True)

    limited = client.get("/api/locations", headers=admin)  # the key's third request in the window
    error_of(limited, 429, code="demasiadas_solicitudes")
    assert_secured(limited, api=True)


def test_hsts_only_in_production(client, production):  # noqa: ANN001
    assert "strict-transport-security" not in client.get("/health/live").headers
    assert_secured(production.get("/health/live"), api=False, hsts=True)
    assert_secured(production.get("/api/locations"), api=True, hsts=True)  # a 401


def test_production_refuses_a_foreign_host(production):  # noqa: ANN001
    assert production.get("/health/live", headers={"Host": "minimercado.lan:8080"}).status_code == 200
    refused = production.get("/health/live", headers={"Host": "evil.example"})
    error_of(refused, 400, code="host_no_permitido", mentions="ALLOWED_HOSTS")
    assert_secured(refused, api=False, hsts=True)
    assert production.get("/api/locations", headers={"Host": "evil.example"}).status_code == 400


def test_a_subdomain_wildcard_is_accepted(database_url):  # noqa: ANN001
    app = create_app("all", production_settings(database_url, allowed_hosts="*.minimercado.lan"))
    try:
        with TestClient(app) as client:
            assert client.get("/health/live", headers={"Host": "caja1.minimercado.lan"}).status_code == 200
            assert client.get("/health/live", headers={"Host": "minimercado.lan.evil.example"}).status_code == 400
    finally:
        app.state.db.dispose()


def test_development_has_no_host_check(client):  # noqa: ANN001
    assert client.get("/health/live", headers={"Host": "evil.example"}).status_code == 200


@pytest.mark.parametrize("hosts", ["", " , ", "*", "minimercado.lan,*", "mini*.lan", "*minimercado.lan"])
def test_production_refuses_to_start_without_allowed_hosts(database_url, hosts):  # noqa: ANN001
    with pytest.raises(ConfigError, match="ALLOWED_HOSTS"):
        create_app("all", production_settings(database_url, allowed_hosts=hosts))


def test_cors_is_off_by_default(client):  # noqa: ANN001
    preflight = client.options("/api/inventory", headers={
        "Origin": PANEL, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "X-API-Key"})
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in client.get("/api/inventory", headers={"Origin": PANEL}).headers


def test_cors_answers_only_the_configured_origins(database_url):  # noqa: ANN001
    app = create_app("all", make_settings(database_url, cors_origins=f"{PANEL}, https://otro.minimercado.lan",
                                          rate_limit_per_key=1))
    try:
        with TestClient(app) as client:
            asked = {"Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "X-API-Key, Content-Type"}
            allowed = client.options("/api/inventory", headers={"Origin": PANEL, **asked})
            assert allowed.status_code == 200, allowed.text
            assert allowed.headers["access-control-allow-origin"] == PANEL
            assert "x-api-key" in allowed.headers["access-control-allow-headers"].lower()
            assert_secured(allowed, api=True)
            foreign = client.options("/api/inventory", headers={"Origin": "https://evil.example", **asked})
            assert "access-control-allow-origin" not in foreign.headers
            simple = client.get("/api/inventory", headers={"Origin": "https://evil.example"})
            assert "access-control-allow-origin" not in simple.headers
            # A browser page of the panel can read a refusal, including a 429's Retry-After.
            key = {"X-API-Key": _key(app), "Origin": PANEL}
            assert client.get("/api/locations", headers=key).status_code == 200
            limited = client.get("/api/locations", headers=key)
            assert limited.status_code == 429
            assert limited.headers["access-control-allow-origin"] == PANEL
            assert "retry-after" in limited.headers["access-control-expose-headers"].lower()
    finally:
        app.state.db.dispose()


def _key(app) -> str:  # noqa: ANN001
    from minimarket.accounts.audit import Context
    from minimarket.accounts.keys import create_api_key

    with app.state.db.write() as session:
        return create_api_key(session, Context(actor="test"), name="panel", role="lectura")[1]


def test_docs_render_offline_with_their_own_policy(client, production):  # noqa: ANN001
    for http in (client, production):
        page = http.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "https://" not in page.text and "https:" not in csp  # nothing from the internet
        for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"):
            assert asset in page.text
            served = http.get(asset)
            assert served.status_code == 200 and len(served.content) > 10_000, asset
        assert "unsafe-inline" in csp  # Swagger's boot script
        assert page.headers["x-frame-options"] == "DENY"
        assert http.get("/openapi.json").status_code == 200


def test_an_unhandled_error_is_a_500_with_request_id_and_headers(app):  # noqa: ANN001
    @app.get("/falla-interna")
    def failing() -> dict:
        raise RuntimeError("detalle interno que no debe salir")

    # raise_server_exceptions=False: the answer the client really gets, whatever the server does after.
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/falla-interna", headers={"X-Request-ID": "pedido-500"})
        error = error_of(response, 500, code="error_interno")
        assert response.headers.get("x-request-id") == "pedido-500", dict(response.headers)
        assert error["details"] == {"request_id": "pedido-500"}
        assert "detalle interno" not in response.text
        assert_secured(response, api=False)
        generated = client.get("/falla-interna")
        assert generated.status_code == 500 and len(generated.headers.get("x-request-id", "")) == 32
        assert generated.json()["error"]["details"]["request_id"] == generated.headers["x-request-id"]
        metrics = client.get("/metrics").text
    assert 'endpoint="/falla-interna",method="GET",service="all",status="500"' in metrics
