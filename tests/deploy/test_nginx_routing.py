"""Through the live nginx (tests/deploy/nginx_stack.py): every request lands on the process that serves
it, counted in each process's own http_requests_total; the body limit, gzip, the client's real address,
request ids and the per-address rate limit; a service down is a JSON 502 and the rest keeps working."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from prometheus_client.parser import text_string_to_metric_families

from minimarket.apps import ROUTERS
from tests.deploy.nginx_stack import BURST, MIB, NEGOCIO_AREAS, RATE, SERVICES, requests_samples, served_between
from tests.e2e.servers import Server

FLOOD_ADDRESS = "127.0.0.3"  # the rate-limit test's own client address: a bucket no other test drains


def test_runbook_inventory_curl_lands_on_the_dashboard(stack):
    """`curl http://localhost/api/inventory -H "X-API-Key: …"`, over HTTPS (port 80 redirects)."""
    url = f"https://127.0.0.1:{stack.https_port}/api/inventory"
    labels = {"service": "dashboard", "endpoint": "/api/inventory", "status": "200"}
    before = stack.requests("dashboard", "GET", **labels)
    curl = shutil.which("curl")

    def send() -> None:
        if curl:
            result = subprocess.run([curl, "-sS", "--cacert", str(stack.ca), "-o", "/dev/null", "-w", "%{http_code}",
                                     url, "-H", f"X-API-Key: {stack.key}"], capture_output=True, text=True,
                                    timeout=30, check=False)
            assert result.stdout == "200", result.stdout + result.stderr
        else:
            with stack.https(stack.key) as client:
                assert client.get("/api/inventory").status_code == 200

    landed = stack.landing("GET", send)
    assert landed == {"dashboard": 1, "deposito": 0, "negocio": 0}
    assert stack.requests("dashboard", "GET", **labels) == before + 1


def test_post_inventory_lands_on_the_deposito(stack):
    product = {"sku": "NGX-0001", "name": "Yerba mate 1 kg", "price": "4200.00", "cost": "2900.00"}
    responses = []

    def send() -> None:
        with stack.https(stack.key) as client:
            responses.append(client.post("/api/inventory", json=product))

    before = stack.requests("deposito", "POST", endpoint="/api/inventory", status="201")
    landed = stack.landing("POST", send)
    assert responses[0].status_code == 201, responses[0].text
    assert landed == {"dashboard": 0, "deposito": 1, "negocio": 0}
    assert stack.requests("deposito", "POST", endpoint="/api/inventory", status="201") == before + 1
    # The dashboard has no write routes: the same POST straight to it is refused.
    with stack.app("dashboard", stack.key) as client:
        assert client.post("/api/inventory", json={**product, "sku": "NGX-0002"}).status_code == 405
    with stack.https(stack.key) as client:  # and the product is there for the reads
        assert client.get("/api/inventory/NGX-0001").json()["sku"] == "NGX-0001"


def app_routes() -> dict[tuple[str, str], str]:
    """(method, path) of every /api route -> the service nginx must send it to (the first that serves it)."""
    owners: dict[tuple[str, str], str] = {}
    for service in SERVICES:
        for router in ROUTERS[service]:
            for route in router.routes:
                for method in sorted(route.methods):
                    owners.setdefault((method, route.path), service)
    return owners


def test_the_requests_reader_agrees_with_the_exposition_parser(stack):
    """requests_samples (what landing counts with) reads what prometheus_client's own parser reads."""
    with stack.https(stack.key) as client:
        assert client.get("/api/inventory").status_code == 200
        assert client.get("/api/suppliers").status_code == 200
    for service in SERVICES:
        text = httpx.get(stack.servers[service].base_url + "/metrics", timeout=10, trust_env=False).text
        parsed = sorted((sorted(sample.labels.items()), sample.value) for family in text_string_to_metric_families(text)
                        for sample in family.samples if sample.name == "http_requests_total")
        assert parsed, text[:2000]
        assert sorted((sorted(labels.items()), value) for labels, value in requests_samples(text)) == parsed


# The route tables send faster than nginx's 20 r/s per address: each client address sends fewer than
# the burst (so nginx never answers 429 itself) and is never used again (its bucket is full).
ROUTING_ADDRESSES = (f"127.0.1.{n}" for n in range(1, 255))
PER_ADDRESS = BURST - 10


def routed(stack, sends: list[tuple[str, str, str, dict]], key: str | None = None) -> list[str]:  # noqa: ANN001
    """Send each (method, path, owner, request arguments) with an X-Request-ID of its own; returns what went
    wrong: a request that nginx's access log shows sent elsewhere (its `upstream`; None: nginx answered it
    itself), or a process whose own http_requests_total did not grow by the requests it owns (the three
    scraped once before and once after)."""
    before = stack.served()
    sent = {}
    for start in range(0, len(sends), PER_ADDRESS):
        transport = httpx.HTTPTransport(local_address=next(ROUTING_ADDRESSES), verify=stack.tls())
        with httpx.Client(base_url=f"https://127.0.0.1:{stack.https_port}", transport=transport, timeout=30,
                          trust_env=False, headers={"X-API-Key": key} if key else {}) as client:
            for method, path, owner, arguments in sends[start:start + PER_ADDRESS]:
                request_id = uuid.uuid4().hex
                client.request(method, path, headers={"X-Request-ID": request_id}, **arguments)
                sent[request_id] = (method, path, owner)
    after = stack.served()
    landed = stack.upstreams(sent)
    wrong = [f"{method} {path}: esperado {owner}, llegó a {landed.get(request_id, 'sin línea en el registro')}"
             for request_id, (method, path, owner) in sent.items() if landed.get(request_id) != owner]
    for method in sorted({method for method, _, _ in sent.values()}):
        expected = {s: float(sum(1 for m, _, owner in sent.values() if m == method and owner == s)) for s in SERVICES}
        counted = served_between(before, after, method)
        if counted != expected:
            wrong.append(f"{method}: los procesos contaron {counted}, les correspondía {expected}")
    return wrong


def test_every_app_route_lands_on_the_service_that_serves_it(stack):
    routes = app_routes()
    assert {s for s in routes.values()} == {"dashboard", "deposito", "negocio"}
    assert ("POST", "/api/sales") in routes and ("GET", "/api/inventory") in routes
    assert routes[("GET", "/api/prices/{sku}/history")] == "negocio"
    assert routes[("POST", "/api/suppliers/{supplier_id}/merge")] == "negocio"
    assert routes[("POST", "/api/alerts/webhook")] == routes[("GET", "/api/alerts")] == "negocio"
    sends = [(method, re.sub(r"\{[^}]+\}", "NGX-RUTA", template), owner,
              {"json": {} if method in {"POST", "PATCH", "PUT"} else None})
             for (method, template), owner in sorted(routes.items())]
    wrong = routed(stack, sends, key="clave-invalida")  # 401 wherever it lands: nothing changes
    assert not wrong, "\n".join(wrong)


def test_negocio_areas_land_on_negocio(stack):
    sends = [("GET", path, "negocio", {}) for area in NEGOCIO_AREAS for path in (f"/api/{area}", f"/api/{area}/1")]
    sends.append(("GET", "/api/suppliersx", "dashboard", {}))  # a prefix look-alike is not negocio's
    wrong = routed(stack, sends, key=stack.key)
    assert not wrong, "\n".join(wrong)


def test_health_answers_on_both_ports_and_metrics_stays_inside(stack):
    with stack.https() as client:
        health = client.get("/health")
        assert health.status_code == 200 and health.json()["service"] == "dashboard"
        assert health.json()["checks"]["peer:deposito"]["status"] == "ok"
        assert client.get("/metrics").status_code == 404
    with stack.http() as client:
        health = client.get("/health")
        assert health.status_code == 200 and health.json()["service"] == "dashboard"


def test_body_over_one_mib_is_refused_by_nginx(stack):
    headers = {"Content-Type": "application/json"}
    responses = []
    with stack.https(stack.key) as client:
        landed = stack.landing("POST", lambda: responses.append(
            client.post("/api/inventory", content=b" " * (MIB + 1), headers=headers)))
        assert responses[0].status_code == 413
        assert responses[0].json()["error"]["code"] == "cuerpo_demasiado_grande"
        assert landed == {"dashboard": 0, "deposito": 0, "negocio": 0}  # never reached an app
        # Exactly the limit passes nginx: the deposito answers it (it is not JSON: 422).
        landed = stack.landing("POST", lambda: responses.append(
            client.post("/api/inventory", content=b" " * MIB, headers=headers)))
        assert responses[1].status_code not in {413, 502}, responses[1].text
        assert landed == {"dashboard": 0, "deposito": 1, "negocio": 0}


def test_large_json_is_gzipped(stack):
    with stack.app("deposito", stack.key) as deposito:  # straight to the app: not counted by nginx's limit
        for number in range(40):
            response = deposito.post("/api/inventory", json={"sku": f"GZ-{number:04d}", "name": f"Galletitas {number}",
                                                              "price": "1500.00", "category": "Almacén"})
            assert response.status_code == 201, response.text
    with stack.https(stack.key) as client:
        gzipped = client.get("/api/inventory?limit=100", headers={"Accept-Encoding": "gzip"})
        assert gzipped.status_code == 200
        assert gzipped.headers.get("content-encoding") == "gzip"
        assert "Accept-Encoding" in gzipped.headers.get("vary", "")
        assert gzipped.num_bytes_downloaded < len(gzipped.content) / 3
        plain = client.get("/api/inventory?limit=100", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert plain.json() == gzipped.json() and len(plain.json()["items"]) >= 40


def _auth_failures_logged(server: Server, marker: str) -> list[dict]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [json.loads(line) for line in server.log_path.read_text(encoding="utf-8").splitlines()
                 if line.startswith("{") and marker in line and '"auth_failed"' in line]
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no auth_failed line for {marker} in {server.log_tail()}")


def test_the_app_sees_the_real_client_through_nginx_and_a_forged_one_nowhere(stack):
    # A client on its own address (127.0.0.2, still loopback) that forges X-Forwarded-For.
    forged = {"X-Forwarded-For": "203.0.113.9", "X-API-Key": "mm_dead0000.adivinanza"}
    local = httpx.HTTPTransport(local_address="127.0.0.2", verify=stack.tls())
    through = f"/api/inventory/NGX-{uuid.uuid4().hex[:12]}"
    with httpx.Client(base_url=f"https://127.0.0.1:{stack.https_port}", transport=local, timeout=30,
                      trust_env=False) as client:
        assert client.get(through, headers=forged).status_code == 401
    (via_nginx,) = _auth_failures_logged(stack.servers["dashboard"], through)
    assert via_nginx["client_ip"] == "127.0.0.2", via_nginx  # nginx (127.0.0.1, trusted) named the real client
    direct = f"/api/inventory/NGX-{uuid.uuid4().hex[:12]}"
    with httpx.Client(base_url=stack.servers["dashboard"].base_url, transport=httpx.HTTPTransport(
            local_address="127.0.0.2"), timeout=30, trust_env=False) as client:
        assert client.get(direct, headers=forged).status_code == 401
    (straight,) = _auth_failures_logged(stack.servers["dashboard"], direct)
    assert straight["client_ip"] == "127.0.0.2", straight  # not a named proxy: its header is ignored


def test_request_id_passes_through_or_is_created_by_nginx(stack):
    with stack.https(stack.key) as client:
        given = client.get("/api/inventory?limit=1", headers={"X-Request-ID": "caja-1-ticket-42"})
        assert given.headers["x-request-id"] == "caja-1-ticket-42"
        marker = uuid.uuid4().hex
        created = client.get(f"/api/inventory?limit=1&marca={marker}")
    request_id = created.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    deadline = time.monotonic() + 5
    logged = []
    while time.monotonic() < deadline and not logged:
        lines = stack.access_log.read_text(encoding="utf-8").splitlines()
        logged = [json.loads(line) for line in lines if marker in line]
        time.sleep(0.05)
    (entry,) = logged
    # nginx logged the id it made up, and that same id is what the dashboard received and echoed.
    assert entry["request_id"] == request_id
    assert entry["upstream"] == stack.servers["dashboard"].base_url.removeprefix("http://")


def test_rate_limit_refuses_after_a_bounded_burst(stack):
    """From an address of its own (the zone counts per client address), so its bucket starts full
    whatever the other tests sent, and the bucket it drains is nobody else's."""
    statuses: list[int] = []

    def client() -> httpx.Client:
        return httpx.Client(base_url=f"https://127.0.0.1:{stack.https_port}", timeout=30, trust_env=False,
                            transport=httpx.HTTPTransport(local_address=FLOOD_ADDRESS, verify=stack.tls()))

    def flood(_: int) -> list[int]:
        with client() as flooding:  # no key: the dashboard's quick 401, nothing touches the database
            return [flooding.get("/api/inventory").status_code for _ in range(25)]

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        for chunk in pool.map(flood, range(8)):  # 200 requests in all
            statuses.extend(chunk)
    elapsed = time.monotonic() - started
    passed, limited = statuses.count(401), statuses.count(429)
    assert passed + limited == 200, sorted(set(statuses))
    assert limited > 0, f"200 solicitudes en {elapsed:.1f} s y ninguna 429"
    assert passed >= BURST, passed  # the burst is served at once (nodelay)
    assert passed <= BURST + 1 + RATE * elapsed + 5, (passed, elapsed)
    with client() as flooding:
        refused = flooding.get("/api/inventory")
        if refused.status_code == 429:
            assert refused.json()["error"]["code"] == "demasiadas_solicitudes"
        assert flooding.get("/health").status_code == 200  # /health is not rate limited
        deadline = time.monotonic() + 10
        while flooding.get("/api/inventory").status_code == 429:
            assert time.monotonic() < deadline, "el límite no se libera"
            time.sleep(0.2)


def test_every_dashboard_page_lands_on_the_dashboard(stack):
    """Each page route (from the dashboard's page-role table), /static and the event stream reach `dashboard`."""
    from tests.web.test_page_roles import PAGE_ROLES, PUBLIC_PAGES

    sends = [(method, re.sub(r"\{formato\}", "csv", re.sub(r"\{[^}]+\}", "NGX-RUTA", template)), "dashboard",
              {"data": {} if method == "POST" else None})
             for method, template in sorted(set(PAGE_ROLES) | PUBLIC_PAGES)]
    wrong = routed(stack, sends)  # no session: pages answer 303 to /ingresar, actions the same; nothing changes
    with stack.https() as client:
        for path in ("/static/app.css", "/static/app.js"):
            answer = client.get(path)
            assert answer.status_code == 200 and len(answer.content) > 500, path
        login = client.get("/ingresar")
        assert login.status_code == 200 and "Ingresar" in login.text
        # The page's own policy passes through nginx (no inline script or style).
        assert login.headers["content-security-policy"].startswith("default-src 'self'; script-src 'self'; "
                                                                   "style-src 'self'")
    assert not wrong, "\n".join(wrong)


def test_a_service_down_gives_a_json_502_and_the_rest_keeps_working(stack):
    stack.servers["negocio"].stop()
    try:
        with stack.https(stack.key) as client:
            down = client.get("/api/suppliers")
            assert down.status_code == 502, down.text
            assert down.json()["error"]["code"] == "servicio_no_disponible"
            assert down.headers["x-frame-options"] == "DENY"
            assert client.get("/api/inventory").status_code == 200
        assert stack.nginx.poll() is None, stack.nginx_log()
        assert os.path.exists(stack.directory / "nginx.pid")
    finally:
        stack.restart("negocio")  # the stack is the package's: the TLS tests read from negocio too
    with stack.https(stack.key) as client:
        assert client.get("/api/suppliers").status_code == 200  # and nginx sends to it again
