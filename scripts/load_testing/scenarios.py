"""The load scenarios: what each one asks for, its threshold, and how its request plan is prepared.

Each plan is a list of (method, path, body) that wrk cycles through (scenario.lua); preparing it
may read the store (SKUs to ask for), sign in (the dashboard's session cookie) or create the
write scenario's own products (CARGA-001 … CARGA-020).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx

READ_P95_MS = 300.0  # the runbook's HighLatency threshold
WRITE_P95_MS = 500.0
MAX_ERROR_RATE = 0.01  # 1 %

WRITE_PRODUCTS = 20
WRITE_SKU = "CARGA-{:03d}"
WRITE_INITIAL_STOCK = 100_000
WRITE_REFERENCE = "prueba-de-carga"


class SetupError(Exception):
    """The scenario cannot run against this target: the message says what to fix."""


@dataclass
class Target:
    url: str
    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    metrics_token: str | None = None


@dataclass
class Plan:
    requests: list[tuple[str, str, str]]
    headers: dict[str, str] = field(default_factory=dict)
    idempotent_posts: bool = False


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    p95_ms: float
    needs: str | None  # which credential it needs: "api_key", "login" or None
    prepare: Callable[[httpx.Client, Target], Plan]


def _api_headers(target: Target) -> dict[str, str]:
    return {"X-API-Key": target.api_key or ""}


def _expect(response: httpx.Response, what: str) -> httpx.Response:
    if response.status_code in (401, 403):
        raise SetupError(f"{what}: la clave de API fue rechazada ({response.status_code}); creá una con "
                         "`minimarket apikey create --name carga --role encargado`")
    if response.status_code == 429:
        raise SetupError(f"{what}: 429, el límite de solicitudes frenó la preparación; la instancia de prueba "
                         "tiene que correr con RATE_LIMIT_PER_KEY alto (ver LOAD_TESTING.md)")
    if response.status_code >= 300:
        raise SetupError(f"{what}: respondió {response.status_code} {response.text[:200]}")
    return response


def prepare_health(client: httpx.Client, target: Target) -> Plan:
    client.get("/health")  # it answers at all; a 503 is measured (as errors), not a reason not to run
    return Plan([("GET", "/health", "")])


def prepare_metrics(client: httpx.Client, target: Target) -> Plan:
    headers = {"Authorization": f"Bearer {target.metrics_token}"} if target.metrics_token else {}
    response = client.get("/metrics", headers=headers)
    if response.status_code == 401:
        raise SetupError("GET /metrics pide el token de métricas: pasalo con --metrics-token o METRICS_TOKEN")
    _expect(response, "GET /metrics")
    return Plan([("GET", "/metrics", "")], headers=headers)


def prepare_inventory_read(client: httpx.Client, target: Target) -> Plan:
    headers = _api_headers(target)
    items = _expect(client.get("/api/inventory", params={"limit": 50}, headers=headers),
                    "GET /api/inventory").json()["items"]
    items = [i for i in items if not i["sku"].startswith("CARGA-")] or items
    if not items:
        raise SetupError("la tienda no tiene productos: probá sobre una copia con datos (o `minimarket demo`)")
    words = sorted({w for i in items for w in i["name"].split() if len(w) >= 4})[:10] or [items[0]["sku"]]
    plan = [("GET", f"/api/inventory/{quote(i['sku'], safe='')}", "") for i in items[:20]]
    plan += [("GET", f"/api/inventory?limit=50&q={quote(w)}", "") for w in words]
    plan += [("GET", "/api/inventory?limit=50&low_stock=true", ""), ("GET", "/api/inventory?limit=50", "")]
    return Plan(plan, headers=headers)


def prepare_inventory_write(client: httpx.Client, target: Target) -> Plan:
    """Movements on the scenario's own products: entrada and salida of 1 in turn, so stock ends where it was."""
    headers = _api_headers(target)
    for n in range(1, WRITE_PRODUCTS + 1):
        sku = WRITE_SKU.format(n)
        found = client.get(f"/api/inventory/{sku}", headers=headers)
        if found.status_code == 200:
            if found.json().get("active") is False:
                _expect(client.patch(f"/api/inventory/{sku}", json={"active": True}, headers=headers),
                        f"reactivar {sku}")
            continue
        if found.status_code != 404:
            _expect(found, f"GET /api/inventory/{sku}")
        body = {"sku": sku, "name": f"Producto de prueba de carga {n:03d}", "cost": "100", "price": "150",
                "initial_stock": WRITE_INITIAL_STOCK}
        _expect(client.post("/api/inventory", json=body, headers=headers), f"alta de {sku}")
    plan = []
    for n in range(1, WRITE_PRODUCTS + 1):
        path = f"/api/inventory/{WRITE_SKU.format(n)}/movements"
        for kind in ("entrada", "salida"):
            plan.append(("POST", path, json.dumps({"type": kind, "quantity": 1, "reference": WRITE_REFERENCE})))
    return Plan(plan, headers=headers, idempotent_posts=True)


def prepare_dashboard(client: httpx.Client, target: Target) -> Plan:
    """Signs in like a person (GET and POST /ingresar) and asks for the pages with that session."""
    form = client.get("/ingresar")
    token = client.cookies.get("mm_csrf_ingreso")
    if form.status_code != 200 or not token:
        raise SetupError(f"GET /ingresar respondió {form.status_code}: ¿es el servicio dashboard o el todo-en-uno?")
    signed = client.post("/ingresar", data={"username": target.username, "password": target.password,
                                            "csrf": token, "siguiente": "/"})
    session = client.cookies.get("mm_sesion")
    if signed.status_code != 303 or not session:
        raise SetupError(f"no se pudo ingresar como '{target.username}' ({signed.status_code}): revisá usuario y "
                         "contraseña (`minimarket user list`)")
    headers = {"Cookie": f"mm_sesion={session}"}
    plan = [("GET", p, "") for p in ("/", "/inventario", "/movimientos", "/alertas", "/reportes")]
    page = client.get("/api/inventory", params={"limit": 5}, headers=headers)
    if page.status_code == 200:
        plan += [("GET", f"/inventario/{quote(i['sku'], safe='')}", "") for i in page.json()["items"][:5]]
    for _, path, _ in plan:
        _expect(client.get(path, headers=headers), f"GET {path}")
    return Plan(plan, headers=headers)


SCENARIOS = {s.name: s for s in (
    Scenario("health", "GET /health (la base, la caché y los pares)", READ_P95_MS, None, prepare_health),
    Scenario("lectura", "GET /api/inventory/{sku}, búsquedas q= y low_stock=true", READ_P95_MS, "api_key",
             prepare_inventory_read),
    Scenario("escritura", "POST /api/inventory/{sku}/movements con Idempotency-Key", WRITE_P95_MS, "api_key",
             prepare_inventory_write),
    Scenario("dashboard", "páginas del dashboard con sesión: Inicio (KPIs), Inventario, Movimientos, Alertas, "
             "Reportes, producto", READ_P95_MS, "login", prepare_dashboard),
    Scenario("metrics", "GET /metrics (lo que lee Prometheus)", READ_P95_MS, None, prepare_metrics),
)}
