"""Who may call what, as a declarative table (role × route → allowed), checked over HTTP on both backends.

Every /api route of the app must appear in ROUTE_ROLES: a new route that is not declared here fails
`test_every_api_route_declares_its_roles`, so whoever adds it has to decide who may call it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from minimarket.accounts.audit import Context
from minimarket.accounts.keys import revoke_api_key
from minimarket.accounts.models import ApiKey
from minimarket.apps import create_app
from tests.helpers import make_settings
from tests.integration.helpers import create_product, error_of, movement_rows

ROLES = ("admin", "encargado", "deposito", "lectura")
EVERYONE = frozenset(ROLES)
STOCK = frozenset({"admin", "encargado", "deposito"})
CATALOG = frozenset({"admin", "encargado"})
ADMIN = frozenset({"admin"})
NOBODY: frozenset[str] = frozenset()  # no API key opens it: only its own bearer token (TOKEN_ROUTES)

# (method, route template) → roles that may call it. Everyone else gets 403.
ROUTE_ROLES: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/api/inventory"): EVERYONE,
    ("GET", "/api/inventory/{sku}"): EVERYONE,
    ("GET", "/api/categories"): EVERYONE,
    ("GET", "/api/movements"): EVERYONE,
    ("GET", "/api/locations"): EVERYONE,
    ("POST", "/api/inventory"): CATALOG,
    ("PATCH", "/api/inventory/{sku}"): CATALOG,
    ("DELETE", "/api/inventory/{sku}"): CATALOG,
    ("POST", "/api/inventory/{sku}/movements"): STOCK,
    ("POST", "/api/movements"): STOCK,
    ("POST", "/api/stocktake"): STOCK,
    ("POST", "/api/transfers"): STOCK,
    ("POST", "/api/sales"): STOCK,
    ("GET", "/api/prices/settings"): EVERYONE,
    ("PATCH", "/api/prices/settings"): ADMIN,
    ("GET", "/api/prices/{sku}/history"): EVERYONE,
    ("PUT", "/api/prices/{sku}/markup"): CATALOG,
    ("GET", "/api/suppliers"): EVERYONE,
    ("GET", "/api/suppliers/{supplier_id}"): EVERYONE,
    ("GET", "/api/suppliers/rules"): EVERYONE,
    ("POST", "/api/suppliers/assign"): EVERYONE,
    ("POST", "/api/suppliers"): CATALOG,
    ("PATCH", "/api/suppliers/{supplier_id}"): CATALOG,
    ("DELETE", "/api/suppliers/{supplier_id}"): CATALOG,
    ("POST", "/api/suppliers/{supplier_id}/merge"): CATALOG,
    ("POST", "/api/suppliers/rules"): CATALOG,
    ("DELETE", "/api/suppliers/rules/{rule_id}"): CATALOG,
    ("POST", "/api/prices/bulk/preview"): EVERYONE,
    ("POST", "/api/prices/bulk"): CATALOG,
    ("GET", "/api/prices/batches"): EVERYONE,
    ("POST", "/api/prices/batches/{batch_id}/undo"): CATALOG,
    ("GET", "/api/prices/lagging"): EVERYONE,
    ("GET", "/api/invoices"): EVERYONE,
    ("GET", "/api/invoices/{invoice_id}"): EVERYONE,
    ("GET", "/api/invoices/template.csv"): EVERYONE,
    ("GET", "/api/invoices/template.xlsx"): EVERYONE,
    ("GET", "/api/invoices/settings"): EVERYONE,
    ("POST", "/api/invoices/from-qr"): EVERYONE,
    ("POST", "/api/invoices"): CATALOG,
    ("PATCH", "/api/invoices/{invoice_id}"): CATALOG,
    ("POST", "/api/invoices/import"): CATALOG,
    # deposito only when the store setting allows it (off by default; see test_invoices_api)
    ("POST", "/api/invoices/{invoice_id}/confirm"): CATALOG,
    ("POST", "/api/invoices/{invoice_id}/annul"): CATALOG,
    ("PATCH", "/api/invoices/settings"): ADMIN,
    ("POST", "/api/prices/price-list/preview"): EVERYONE,
    ("POST", "/api/prices/price-list"): CATALOG,
    ("GET", "/api/alerts"): EVERYONE,
    ("POST", "/api/alerts/webhook"): NOBODY,
    ("POST", "/api/forecast/run"): CATALOG,
    ("GET", "/api/forecast/{sku}"): EVERYONE,
    ("GET", "/api/purchasing/suggestions"): EVERYONE,
    ("GET", "/api/purchase-orders"): EVERYONE,
    ("GET", "/api/purchase-orders/{order_id}"): EVERYONE,
    ("GET", "/api/purchase-orders/{order_id}.pdf"): EVERYONE,
    ("GET", "/api/purchase-orders/{order_id}/whatsapp.txt"): EVERYONE,
    ("POST", "/api/purchase-orders"): CATALOG,
    ("PATCH", "/api/purchase-orders/{order_id}"): CATALOG,
    ("POST", "/api/purchase-orders/{order_id}/send"): CATALOG,
    ("POST", "/api/purchase-orders/{order_id}/cancel"): CATALOG,
    # the depósito receives goods (without changing costs: tests/integration/test_purchase_orders.py)
    ("POST", "/api/purchase-orders/{order_id}/receive"): STOCK,
}

# Routes called by a machine with a bearer token instead of X-API-Key (Alertmanager's webhook);
# an API key of any role is refused with 401 there (tests/integration/test_alerts_webhook.py has the token).
TOKEN_ROUTES = {("POST", "/api/alerts/webhook")}

# Routes outside /api that answer without a key (operations and the API documentation).
OPEN_ROUTES = {"/", "/health", "/health/live", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc",
               "/openapi.json"}

# A valid request for each route; `n` makes every call unique (new SKU, new ticket) so it can succeed.
class Upload(dict):
    """A multipart body (file uploads) instead of JSON."""


Request = tuple[str, dict | None]
REQUESTS: dict[tuple[str, str], Callable[[int], Request]] = {
    ("GET", "/api/inventory"): lambda n: ("/api/inventory?q=yerba", None),
    ("GET", "/api/inventory/{sku}"): lambda n: ("/api/inventory/yerba-1", None),
    ("GET", "/api/categories"): lambda n: ("/api/categories", None),
    ("GET", "/api/movements"): lambda n: ("/api/movements?sku=YERBA-1", None),
    ("GET", "/api/locations"): lambda n: ("/api/locations", None),
    ("POST", "/api/inventory"): lambda n: ("/api/inventory", {"sku": f"NUEVO-{n}", "name": "Nuevo",
                                                              "initial_stock": 1}),
    ("PATCH", "/api/inventory/{sku}"): lambda n: ("/api/inventory/YERBA-1", {"price": f"{4000 + n}.00"}),
    ("DELETE", "/api/inventory/{sku}"): lambda n: (f"/api/inventory/BAJA-{n}", None),
    ("POST", "/api/inventory/{sku}/movements"): lambda n: ("/api/inventory/YERBA-1/movements",
                                                           {"type": "entrada", "quantity": 1}),
    ("POST", "/api/movements"): lambda n: ("/api/movements", {"lines": [{"sku": "YERBA-1", "type": "venta",
                                                                         "quantity": 1}]}),
    ("POST", "/api/stocktake"): lambda n: ("/api/stocktake", {"lines": [{"sku": "YERBA-1", "counted": 50 + n}]}),
    ("POST", "/api/transfers"): lambda n: ("/api/transfers", {"from_location": "DEP", "to_location": "SAL",
                                                              "lines": [{"sku": "YERBA-1", "quantity": 1}]}),
    ("POST", "/api/sales"): lambda n: ("/api/sales", {"ticket_id": f"T-{n}", "lines": [{"sku": "YERBA-1",
                                                                                        "quantity": 1}]}),
    ("GET", "/api/prices/settings"): lambda n: ("/api/prices/settings", None),
    ("PATCH", "/api/prices/settings"): lambda n: ("/api/prices/settings", {"default_markup": f"{30 + n % 50}"}),
    ("GET", "/api/prices/{sku}/history"): lambda n: ("/api/prices/YERBA-1/history", None),
    ("PUT", "/api/prices/{sku}/markup"): lambda n: ("/api/prices/YERBA-1/markup", {"markup": f"{n % 90}"}),
    # Suppliers made by the `store` fixture: 1 survives merges, 2-5 are merged and 6-9 deactivated
    # (one per role, by its index), rules 1-4 are deleted (one per role).
    ("GET", "/api/suppliers"): lambda n: ("/api/suppliers?incomplete=false", None),
    ("GET", "/api/suppliers/{supplier_id}"): lambda n: ("/api/suppliers/1", None),
    ("GET", "/api/suppliers/rules"): lambda n: ("/api/suppliers/rules", None),
    ("POST", "/api/suppliers/assign"): lambda n: ("/api/suppliers/assign", {"name": "Yerba mate 1 kg"}),
    ("POST", "/api/suppliers"): lambda n: ("/api/suppliers", {"name": f"Proveedor nuevo {n}"}),
    ("PATCH", "/api/suppliers/{supplier_id}"): lambda n: ("/api/suppliers/1", {"notes": f"nota {n}"}),
    ("DELETE", "/api/suppliers/{supplier_id}"): lambda n: (f"/api/suppliers/{6 + n}", None),
    ("POST", "/api/suppliers/{supplier_id}/merge"): lambda n: (f"/api/suppliers/{2 + n % 10}/merge", {"into": 1}),
    ("POST", "/api/suppliers/rules"): lambda n: ("/api/suppliers/rules", {"kind": "palabra", "value": f"clave{n}",
                                                                          "supplier": 1}),
    ("DELETE", "/api/suppliers/rules/{rule_id}"): lambda n: (f"/api/suppliers/rules/{1 + n}", None),
    ("POST", "/api/prices/bulk/preview"): lambda n: ("/api/prices/bulk/preview", {
        "filter": {"skus": ["YERBA-1"]}, "operation": "price_percent", "percent": "10"}),
    ("POST", "/api/prices/bulk"): lambda n: ("/api/prices/bulk", {
        "filter": {"skus": ["YERBA-1"]}, "operation": "price_percent", "percent": f"{1 + n % 50}"}),
    ("GET", "/api/prices/batches"): lambda n: ("/api/prices/batches", None),
    # The store fixture made batch k + 1 for role k (n ends in the role's index).
    ("POST", "/api/prices/batches/{batch_id}/undo"): lambda n: (f"/api/prices/batches/{n % 10 + 1}/undo", None),
    ("GET", "/api/prices/lagging"): lambda n: ("/api/prices/lagging", None),
    # Invoice drafts made by the `store` fixture: 1 is read and corrected, 2-5 are confirmed and
    # 6-9 annulled (one per role, by its index).
    ("GET", "/api/invoices"): lambda n: ("/api/invoices?state=borrador", None),
    ("GET", "/api/invoices/{invoice_id}"): lambda n: ("/api/invoices/1", None),
    ("GET", "/api/invoices/template.csv"): lambda n: ("/api/invoices/template.csv", None),
    ("GET", "/api/invoices/template.xlsx"): lambda n: ("/api/invoices/template.xlsx", None),
    ("GET", "/api/invoices/settings"): lambda n: ("/api/invoices/settings", None),
    ("POST", "/api/invoices/from-qr"): lambda n: ("/api/invoices/from-qr", {"url": QR_URL}),
    ("POST", "/api/invoices"): lambda n: ("/api/invoices", draft_invoice(1000 + n)),
    ("PATCH", "/api/invoices/{invoice_id}"): lambda n: ("/api/invoices/1", {"notes": f"nota {n}"}),
    ("POST", "/api/invoices/import"): lambda n: ("/api/invoices/import", (
        "cuit_emisor;proveedor;tipo;numero;fecha;total;sku;cantidad;costo_unitario\n"
        f"30-71234567-1;1;A;3-{5000 + n};2026-11-20;121,00;YERBA-1;1;100").encode()),
    ("POST", "/api/invoices/{invoice_id}/confirm"): lambda n: (f"/api/invoices/{2 + n % 10}/confirm", None),
    ("POST", "/api/invoices/{invoice_id}/annul"): lambda n: (f"/api/invoices/{6 + n % 10}/annul",
                                                             {"reason": "prueba de roles"}),
    ("PATCH", "/api/invoices/settings"): lambda n: ("/api/invoices/settings", {"deposito_can_confirm": False}),
    ("POST", "/api/prices/price-list/preview"): lambda n: ("/api/prices/price-list/preview",
                                                           Upload({"file": ("l.csv", b"codigo;costo\nYERBA-1;900\n")})),
    ("POST", "/api/prices/price-list"): lambda n: ("/api/prices/price-list",
                                                   Upload({"file": ("l.csv", f"codigo;costo\nYERBA-1;{900 + n}\n")})),
    ("GET", "/api/alerts"): lambda n: ("/api/alerts?active=true", None),
    ("POST", "/api/alerts/webhook"): lambda n: ("/api/alerts/webhook", {
        "version": "4", "status": "firing", "receiver": "critical", "alerts": [{
            "status": "firing", "labels": {"alertname": "Prueba"}, "startsAt": "2026-11-30T21:00:00Z",
            "fingerprint": f"{n:016x}"}]}),
    ("POST", "/api/forecast/run"): lambda n: ("/api/forecast/run", {"days": 28 + n % 100}),
    ("GET", "/api/forecast/{sku}"): lambda n: ("/api/forecast/YERBA-1", None),  # the store fixture ran it
    ("GET", "/api/purchasing/suggestions"): lambda n: ("/api/purchasing/suggestions?supplier=1", None),
    # Orders made by the `store` fixture: 1 is a draft to read and edit, 2-5 are sent (one per role),
    # 6-9 cancelled (one per role), 10 was sent with plenty to receive a unit at a time.
    ("GET", "/api/purchase-orders"): lambda n: ("/api/purchase-orders?state=borrador", None),
    ("GET", "/api/purchase-orders/{order_id}"): lambda n: ("/api/purchase-orders/1", None),
    ("GET", "/api/purchase-orders/{order_id}.pdf"): lambda n: ("/api/purchase-orders/1.pdf", None),
    ("GET", "/api/purchase-orders/{order_id}/whatsapp.txt"): lambda n: ("/api/purchase-orders/1/whatsapp.txt", None),
    ("POST", "/api/purchase-orders"): lambda n: ("/api/purchase-orders", ORDER),
    ("PATCH", "/api/purchase-orders/{order_id}"): lambda n: ("/api/purchase-orders/1", {"notes": f"nota {n}"}),
    ("POST", "/api/purchase-orders/{order_id}/send"): lambda n: (f"/api/purchase-orders/{2 + n % 10}/send", None),
    ("POST", "/api/purchase-orders/{order_id}/cancel"): lambda n: (f"/api/purchase-orders/{6 + n % 10}/cancel",
                                                                   {"reason": "prueba de roles"}),
    ("POST", "/api/purchase-orders/{order_id}/receive"): lambda n: ("/api/purchase-orders/10/receive", {
        "lines": [{"sku": "YERBA-1", "quantity": 1}]}),
}
ORDER = {"supplier": "1", "lines": [{"sku": "YERBA-1", "quantity": 100}]}


def served_routes(app) -> set[tuple[str, str]]:  # noqa: ANN001
    """Every (method, path template) the app answers, routers included (FastAPI ≥0.13x includes them lazily)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: included routes are flattened into app.routes
        routes = list(app.routes)
    else:
        routes = list(iter_route_contexts(app.routes))
    served = {(method, route.path) for route in routes for method in (route.methods or ()) if method != "HEAD"}
    assert served, "no routes found: the route walk is broken"
    return served


def api_routes(app) -> set[tuple[str, str]]:  # noqa: ANN001
    return {(method, path) for method, path in served_routes(app) if path.startswith("/api")}


def call(client, method: str, path: str, body: dict | bytes | None, headers: dict[str, str]):  # noqa: ANN001, ANN201
    if isinstance(body, bytes):  # a file upload (CSV)
        return client.request(method, path, content=body, headers={**headers, "Content-Type": "text/csv"})
    if isinstance(body, Upload):  # a multipart form with a file
        return client.request(method, path, files=dict(body), headers=headers)
    return client.request(method, path, json=body, headers=headers)


def draft_invoice(number: int) -> dict:
    """Factura A 0003-<number> of supplier 1: one unit of YERBA-1 at $100 net."""
    return {"supplier": "1", "issuer_cuit": "30-71234567-1", "type": "A", "point_of_sale": 3, "number": number,
            "date": "2026-11-20", "net": {"21": "100.00"}, "vat": {"21": "21.00"}, "total": "121.00",
            "lines": [{"sku": "YERBA-1", "quantity": 1, "unit_cost": "100.00"}]}


QR_URL = "https://www.afip.gob.ar/fe/qr/?p=" + base64.b64encode(json.dumps({
    "ver": 1, "fecha": "2026-11-20", "cuit": 30712345671, "ptoVta": 3, "tipoCmp": 1, "nroCmp": 1, "importe": 121,
    "moneda": "PES", "ctz": 1, "tipoCodAut": "E", "codAut": 76123456789012}).encode()).decode()


@pytest.fixture
def store(client, admin):  # noqa: ANN001, ANN201
    """One product with plenty of stock and one product per possible deactivation."""
    create_product(client, admin, "YERBA-1", initial_stock=1000, price="4000")
    for n in range(len(ROLES)):
        create_product(client, admin, f"BAJA-{n}")
    names = ["Proveedor base"] + [f"Fusionable {n}" for n in range(len(ROLES))] + [f"De baja {n}" for n in range(len(ROLES))]
    for expected_id, name in enumerate(names, 1):
        assert client.post("/api/suppliers", json={"name": name}, headers=admin).json()["id"] == expected_id
    for n in range(len(ROLES)):
        rule = {"kind": "palabra", "value": f"borrable{n}", "supplier": 1}
        assert client.post("/api/suppliers/rules", json=rule, headers=admin).json()["id"] == n + 1
    for n in range(len(ROLES)):  # one undoable price batch per role, ids 1..4
        create_product(client, admin, f"LOTE-{n}", price="100")
        response = client.post("/api/prices/bulk", headers=admin, json={
            "filter": {"skus": [f"LOTE-{n}"]}, "operation": "price_percent", "percent": "10"})
        assert response.json()["batch_id"] == n + 1, response.text
    for number in range(1, 10):
        assert client.post("/api/invoices", json=draft_invoice(number), headers=admin).json()["id"] == number
    assert client.post("/api/forecast/run", headers=admin).status_code == 200
    for number in range(1, 11):
        assert client.post("/api/purchase-orders", json=ORDER, headers=admin).json()["id"] == number
    assert client.post("/api/purchase-orders/10/send", headers=admin).status_code == 200


def test_every_api_route_declares_its_roles(app):
    declared = set(ROUTE_ROLES)
    served = api_routes(app)
    assert served - declared == set(), f"new /api routes without a role declaration in ROUTE_ROLES: {served - declared}"
    assert declared - served == set(), f"ROUTE_ROLES names routes the app no longer serves: {declared - served}"
    assert set(REQUESTS) == declared


def test_routes_outside_api_are_only_the_known_open_ones(app):
    from tests.web.test_page_roles import PAGE_ROLES, PUBLIC_PAGES  # the dashboard's pages have their own table

    pages = {path for _, path in set(PAGE_ROLES) | PUBLIC_PAGES}
    others = {path for _, path in served_routes(app) if not path.startswith("/api") and path not in pages}
    assert others <= OPEN_ROUTES, f"new routes outside /api must be declared open (or moved under /api): " \
                                  f"{others - OPEN_ROUTES}"


@pytest.mark.parametrize("role", ROLES)
def test_role_table(client, admin, make_key, app, store, role):
    headers = {"X-API-Key": make_key(role, name=f"clave-{role}")}
    mismatches = []
    for n, (route, allowed) in enumerate(sorted(ROUTE_ROLES.items())):
        method, template = route
        path, body = REQUESTS[route](ROLES.index(role) if method == "DELETE" else n * 10 + ROLES.index(role))
        rows, products = movement_rows(app), client.get("/api/inventory?limit=500", headers=admin).json()
        response = call(client, method, path, body, headers)
        if route in TOKEN_ROUTES:
            if response.status_code != 401 or response.json()["error"]["code"] != "no_autenticado":
                mismatches.append(f"{method} {template}: an API key ({role}) should get 401, got "
                                  f"{response.status_code}")
            continue
        if role in allowed:
            if response.status_code not in (200, 201):
                mismatches.append(f"{method} {template}: {role} should be allowed, got {response.status_code} "
                                  f"{response.text[:200]}")
        else:
            if response.status_code != 403:
                mismatches.append(f"{method} {template}: {role} should get 403, got {response.status_code}")
                continue
            error = error_of(response, 403, code="sin_permiso", mentions=role)
            assert error["details"] is None
            # A refused write leaves no trace in stock or catalog.
            if movement_rows(app) != rows or client.get("/api/inventory?limit=500", headers=admin).json() != products:
                mismatches.append(f"{method} {template}: a refused {role} request changed data")
    assert not mismatches, "\n".join(mismatches)


def test_every_api_route_requires_a_key(client, app):
    for method, template in sorted(api_routes(app)):
        path, body = REQUESTS[(method, template)](0)
        token_route = (method, template) in TOKEN_ROUTES
        for headers in ({}, {"X-API-Key": ""}):
            response = call(client, method, path, body, headers)
            error_of(response, 401, code="no_autenticado", mentions="Authorization" if token_route else "X-API-Key")
            expected = 'Bearer realm="alertmanager"' if token_route else "ApiKey"
            assert response.headers.get("WWW-Authenticate") == expected, f"{method} {template}"


@pytest.mark.parametrize("presented", [
    "cualquier-cosa",
    "mm_.secret",
    "mm_abcdef12",                                   # no secret part
    "mm_abcdef12.LlaveQueNoExiste0000000000000000000000000",
    "mm_" + "a" * 17 + ".x",                         # prefix too long
    "Bearer mm_abcdef12.x",
])
def test_a_wrong_key_is_401(client, admin, presented):
    create_product(client, admin, "YERBA-1")
    for method, path in (("GET", "/api/inventory"), ("POST", "/api/inventory/YERBA-1/movements")):
        response = call(client, method, path, {"type": "entrada", "quantity": 1} if method == "POST" else None,
                        {"X-API-Key": presented})
        error_of(response, 401, code="no_autenticado")
        assert response.headers.get("WWW-Authenticate") == "ApiKey"


def test_a_real_prefix_with_a_wrong_secret_is_401(client, make_key):
    real = make_key("admin")
    prefix, secret = real.split(".", 1)
    forged = f"{prefix}.{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}"
    error_of(client.get("/api/inventory", headers={"X-API-Key": forged}), 401, code="no_autenticado")
    assert client.get("/api/inventory", headers={"X-API-Key": real}).status_code == 200


def test_a_revoked_key_is_401_at_once(client, app, make_key):
    key = make_key("encargado", name="caja-vieja")
    other = make_key("encargado", name="caja-nueva")
    assert client.get("/api/inventory", headers={"X-API-Key": key}).status_code == 200
    with app.state.db.write() as session:
        revoked = revoke_api_key(session, Context(actor="test"), ref="caja-vieja")
    assert len(revoked) == 1
    for method, path in (("GET", "/api/inventory"), ("POST", "/api/inventory")):
        response = call(client, method, path, {"sku": "X-1", "name": "X"} if method == "POST" else None,
                        {"X-API-Key": key})
        error_of(response, 401, code="no_autenticado")
        assert response.headers.get("WWW-Authenticate") == "ApiKey"
    assert client.get("/api/inventory", headers={"X-API-Key": other}).status_code == 200


def test_revoking_by_prefix(client, app, make_key):
    key = make_key("admin", name="por-prefijo")
    with app.state.db.write() as session:
        revoke_api_key(session, Context(actor="test"), ref=key[3:].split(".", 1)[0])
    error_of(client.get("/api/locations", headers={"X-API-Key": key}), 401)


def test_last_use_of_a_key_is_recorded(client, app, make_key):
    key = make_key("lectura", name="tablero")
    with app.state.db.read() as session:
        assert session.scalar(select(ApiKey.last_used_at).where(ApiKey.name == "tablero")) is None
    start = datetime.now(UTC)
    assert client.get("/api/locations", headers={"X-API-Key": key}).status_code == 200
    with app.state.db.read() as session:
        used = session.scalar(select(ApiKey.last_used_at).where(ApiKey.name == "tablero"))
    assert used is not None
    assert start - timedelta(seconds=5) <= used <= datetime.now(UTC) + timedelta(seconds=5)


def test_health_and_metrics_need_no_key(client):
    for path in ("/health", "/health/live", "/metrics"):
        assert client.get(path).status_code == 200, path
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/health").json()["checks"]["database"]["status"] == "ok"


def test_health_reveals_no_secrets(client, settings, make_key):
    key = make_key("admin")
    text = client.get("/health").text + client.get("/health/live").text
    url = settings.database_url
    for secret in (url, url.split("://", 1)[-1], url.rsplit("/", 1)[-1], key, key.split(".", 1)[-1]):
        assert secret not in text, secret
    assert "password" not in text.lower() and "postgres@" not in text


def test_failing_health_reveals_no_password(tmp_path):
    url = "postgresql+psycopg://tienda:Sup3rS3creta@127.0.0.1:1/minimarket"
    app = create_app("all", make_settings(url))
    from fastapi.testclient import TestClient

    try:
        with TestClient(app) as client:
            response = client.get("/health")
    finally:
        app.state.db.dispose()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail" and body["failing"] == ["database"]
    for secret in ("Sup3rS3creta", "tienda:", url):
        assert secret not in response.text

