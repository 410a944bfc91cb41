"""deploy/nginx with the real nginx on loopback in front of real dashboard, deposito and negocio processes.

The config is rendered into a temporary directory: upstream hosts become 127.0.0.1 and the
ports of three `minimarket serve` processes sharing one SQLite file; listen 80/443 become free
high ports; certificate, logs, ACME root and temp paths point into the directory. Every other
line is the file in the repository. Without nginx the tests skip (with CI set they fail).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import warnings
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from prometheus_client.parser import text_string_to_metric_families

from minimarket.apps import ROUTERS
from minimarket.config import Settings
from tests.deploy.helpers import (
    APP_SERVICES,
    COMPOSE,
    ENV_PRODUCTION_EXAMPLE,
    NGINX_CONF,
    SYSTEMD,
    UPSTREAMS_BARE_METAL,
    UPSTREAMS_DOCKER,
    Processes,
    app_env,
    cli_command,
    free_port,
    parse_env_file,
)
from tests.e2e.servers import Server, tail, wait_healthy
from tests.helpers import skip_outside_ci
from tests.observability.helpers import load_yaml

SERVICES = ("dashboard", "deposito", "negocio")
DOCKER_HOSTS = {service: f"{name}:{port}" for name, (service, port) in APP_SERVICES.items()}
SECURITY_HEADERS = ("strict-transport-security", "x-content-type-options", "x-frame-options", "referrer-policy",
                    "permissions-policy", "content-security-policy")
NGINX_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
NOT_ROUTED = {"/metrics", "/health", "/health/live"}  # what the tests themselves ask each process directly
NEGOCIO_AREAS = ("suppliers", "invoices", "prices", "purchase-orders", "purchasing", "forecast", "alerts")
RATE, BURST = 20, 40  # limit_req_zone ... rate=20r/s; limit_req ... burst=40
MIB = 1_048_576


def nginx_binary() -> str:
    path = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin:/sbin")
    if path is None:
        skip_outside_ci("nginx no está instalado (apt-get install nginx)")
    return path


# --------------------------------------------------------------------------- rendering


def replace_all(text: str, old: str, new: str, *, count: int | None = None) -> str:
    found = text.count(old)
    assert found and (count is None or found == count), f"{old!r} aparece {found} veces"
    return text.replace(old, new)


def render(directory: Path, *, upstreams: str, listen: tuple[int, int] | None = None,
           acme_root: Path | None = None) -> Path:
    """nginx.conf with its paths (and, given `listen`, its ports) pointed into `directory`."""
    for sub in ("logs", "tls", "acme", "temp"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    (directory / "upstreams.conf").write_text(upstreams, encoding="utf-8")
    text = NGINX_CONF.read_text(encoding="utf-8")
    text = replace_all(text, "include /etc/nginx/minimarket/upstreams.conf;",
                       f"include {directory}/upstreams.conf;", count=1)
    for directive in ("ssl_certificate /etc/nginx/tls/", "ssl_certificate_key /etc/nginx/tls/"):
        text = replace_all(text, directive, directive.replace("/etc/nginx/tls/", f"{directory}/tls/"), count=1)
    for directive in ("error_log /var/log/nginx/", "access_log /var/log/nginx/"):
        text = replace_all(text, directive, directive.replace("/var/log/nginx/", f"{directory}/logs/"), count=1)
    text = replace_all(text, "root /var/www/acme;", f"root {acme_root or directory / 'acme'};", count=1)
    if not Path("/etc/nginx/mime.types").exists():
        (directory / "mime.types").write_text("types { text/html html; application/json json; }\n")
        text = replace_all(text, "include /etc/nginx/mime.types;", f"include {directory}/mime.types;", count=1)
    if listen:
        http_port, https_port = listen
        text = replace_all(text, "listen 80 default_server;", f"listen 127.0.0.1:{http_port} default_server;",
                           count=1)
        text = replace_all(text, "listen 443 ssl default_server;",
                           f"listen 127.0.0.1:{https_port} ssl default_server;", count=1)
    # Temp paths are compiled in (/var/lib/nginx/... on Debian): keep them in the test directory.
    temp = "".join(f"    {kind}_temp_path {directory}/temp/{kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    text = replace_all(text, "\nhttp {\n", "\nhttp {\n" + temp, count=1)
    outside = [line for line in directives(text) if re.search(r"\s/(etc|var|run|usr)/", line)
               and line != "include /etc/nginx/mime.types;"]
    assert not outside, f"el archivo renderizado todavía usa rutas del sistema: {outside}"
    path = directory / "nginx.conf"
    path.write_text(text, encoding="utf-8")
    return path


def local_upstreams(ports: dict[str, int]) -> str:
    """The compose upstreams file with each service host:port replaced by 127.0.0.1:<real port>."""
    text = UPSTREAMS_DOCKER.read_text(encoding="utf-8")
    for service, host in DOCKER_HOSTS.items():
        text = replace_all(text, f"server {host} ", f"server 127.0.0.1:{ports[service]} ", count=1)
    return text


def nginx_command(conf: Path, *extra: str) -> list[str]:
    directory = conf.parent
    return [nginx_binary(), "-p", f"{directory}/", "-c", str(conf), "-e", f"{directory}/logs/error.log",
            "-g", f"daemon off; pid {directory}/nginx.pid;", *extra]


def nginx_test(conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(nginx_command(conf, "-t"), capture_output=True, text=True, timeout=30, check=False)


def self_signed_certificate(directory: Path) -> Path:
    """server.crt / server.key for 127.0.0.1 and localhost; the certificate is its own trust anchor."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (directory / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                             serialization.PrivateFormat.PKCS8,
                                                             serialization.NoEncryption()))
    (directory / "server.key").chmod(0o600)
    path = directory / "server.crt"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def wait_listening(port: int, process: subprocess.Popen, log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"nginx terminó con {process.returncode}:\n{tail(log)}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nginx no escucha en {port} después de {timeout} s:\n{tail(log)}")


def stop_process(process: subprocess.Popen, timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGQUIT)  # nginx: graceful shutdown
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


# --------------------------------------------------------------------------- the stack


@dataclass
class Stack:
    directory: Path
    http_port: int
    https_port: int
    servers: dict[str, Server]
    key: str
    ca: Path
    conf: Path
    nginx: subprocess.Popen
    acme: Path

    @property
    def access_log(self) -> Path:
        return self.directory / "logs" / "access.log"

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def https(self, key: str | None = None, **kwargs) -> httpx.Client:  # noqa: ANN003
        headers = {"X-API-Key": key} if key else {}
        return httpx.Client(base_url=f"https://127.0.0.1:{self.https_port}", verify=self.tls(), headers=headers,
                            timeout=30, trust_env=False, **kwargs)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{self.http_port}", timeout=30, trust_env=False)

    def app(self, service: str, key: str | None = None) -> httpx.Client:
        return self.servers[service].client(key)

    def requests(self, process: str, method: str, /, **labels: str) -> float:
        """http_requests_total of one process for `method` (and `labels`), the tests' own probes left out."""
        text = httpx.get(self.servers[process].base_url + "/metrics", timeout=10, trust_env=False).text
        total = 0.0
        for sample_labels, value in requests_samples(text):
            if sample_labels.get("method") != method or sample_labels.get("endpoint") in NOT_ROUTED:
                continue
            if all(sample_labels.get(k) == v for k, v in labels.items()):
                total += value
        return total

    def landing(self, method: str, send) -> dict[str, float]:  # noqa: ANN001
        """How many requests of `method` each process served while `send()` ran."""
        before = self.served()
        send()
        return served_between(before, self.served(), method)

    def served(self) -> dict[str, dict[str, float]]:
        """Each process's http_requests_total by method (the tests' own probes left out), scraped at once."""
        def scrape(process: str) -> dict[str, float]:
            text = httpx.get(self.servers[process].base_url + "/metrics", timeout=10, trust_env=False).text
            totals: dict[str, float] = {}
            for labels, value in requests_samples(text):
                if labels.get("endpoint") not in NOT_ROUTED:
                    totals[labels["method"]] = totals.get(labels["method"], 0.0) + value
            return totals

        with ThreadPoolExecutor(max_workers=len(SERVICES)) as pool:
            return dict(zip(SERVICES, pool.map(scrape, SERVICES)))

    def nginx_log(self) -> str:
        return tail(self.directory / "logs" / "error.log")


_REQUESTS_LINE = re.compile(r"^http_requests_total\{(.*)\} (\S+)$", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def requests_samples(text: str) -> list[tuple[dict[str, str], float]]:
    """The http_requests_total samples of a /metrics answer: (labels, value).

    Only those lines are read: the full exposition parser spent 50 ms a scrape on the histograms'
    thousands of bucket lines, and the routing tests scrape each process once per route. Label values
    are endpoint templates, methods, services and statuses: no escaped characters to undo.
    """
    return [({k: v for k, v in _LABEL.findall(labels)}, float(value))
            for labels, value in _REQUESTS_LINE.findall(text)]


def served_between(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]], method: str) -> dict[str, float]:
    """Requests of `method` each process served between two Stack.served() scrapes."""
    return {s: after[s].get(method, 0.0) - before[s].get(method, 0.0) for s in SERVICES}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    nginx_binary()
    directory = tmp_path_factory.mktemp("nginx")
    processes = Processes(directory / "apps", [])
    database = f"sqlite:///{directory / 'shared.db'}"  # one SQLite file for the three services
    ports = {service: free_port() for service in SERVICES}
    peers = {f"{s.upper()}_URL": f"http://127.0.0.1:{ports[s]}" for s in SERVICES}
    nginx = None
    # Run as root, nginx's workers are `nobody` and cannot enter pytest's 0700 directories: the
    # ACME files they serve live in a directory of their own that anyone may read.
    acme = Path(tempfile.mkdtemp(prefix="minimarket-acme-"))
    acme.chmod(0o755)
    try:
        servers = {}
        for service in SERVICES:  # one after the other: the first one migrates the SQLite file
            command = cli_command() + ["serve", "--service", service, "--host", "127.0.0.1",
                                       "--port", str(ports[service])]
            # The proxy setting of deploy/systemd/minimarket.env.example: the local nginx, nobody else.
            env = app_env(database, TRUSTED_PROXIES=parse_env_file(SYSTEMD / "minimarket.env.example")["TRUSTED_PROXIES"], **peers)
            servers[service] = processes.spawn(command, env=env, port=ports[service],
                                               service=service, ready="/health/live", database_url=database)
        for server in servers.values():
            wait_healthy(server)  # now that every peer is up
        key = servers["deposito"].create_key(name="nginx", role="admin")
        http_port, https_port = free_port(), free_port()
        conf = render(directory, upstreams=local_upstreams(ports), listen=(http_port, https_port), acme_root=acme)
        ca = self_signed_certificate(directory / "tls")
        checked = nginx_test(conf)
        assert checked.returncode == 0, checked.stderr
        log = directory / "logs" / "nginx.out"
        with open(log, "w", encoding="utf-8") as out:
            nginx = subprocess.Popen(nginx_command(conf), stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_listening(http_port, nginx, directory / "logs" / "error.log")
        wait_listening(https_port, nginx, directory / "logs" / "error.log")
        yield Stack(directory=directory, http_port=http_port, https_port=https_port, servers=servers, key=key,
                    ca=ca, conf=conf, nginx=nginx, acme=acme)
    finally:
        if nginx is not None:
            stop_process(nginx)
        processes.stop_all()
        shutil.rmtree(acme, ignore_errors=True)


# --------------------------------------------------------------------------- static


def directives(text: str) -> list[str]:
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


def test_config_leaves_user_pid_and_daemon_to_each_nginx():
    lines = directives(NGINX_CONF.read_text(encoding="utf-8"))
    # Debian's nginx.service passes pid and daemon with -g; a second one would be a duplicate.
    assert not [line for line in lines if re.match(r"(user|pid|daemon)\s", line)]
    assert "include /etc/nginx/mime.types;" in lines
    assert "error_log /var/log/nginx/error.log warn;" in lines


def test_body_limit_is_the_apps_max_body_bytes():
    text = NGINX_CONF.read_text(encoding="utf-8")
    size, unit = re.search(r"client_max_body_size (\d+)([km]?);", text).groups()
    nginx_bytes = int(size) * {"": 1, "k": 1024, "m": MIB}[unit]
    assert nginx_bytes == Settings(_env_file=None).max_body_bytes == MIB
    assert int(parse_env_file(ENV_PRODUCTION_EXAMPLE)["MAX_BODY_BYTES"]) == nginx_bytes
    assert f"supera el máximo de {nginx_bytes} bytes" in text  # nginx's 413 says what the app's says
    buffer, unit = re.search(r"client_body_buffer_size (\d+)([km]?);", text).groups()
    assert int(buffer) * {"": 1, "k": 1024, "m": MIB}[unit] == nginx_bytes  # bodies never spill to disk


def test_tls_material_is_never_committed():
    tls = NGINX_CONF.parent / "tls"
    for name in ("server.crt", "server.key", "server.pem"):
        result = subprocess.run(["git", "check-ignore", "-q", str(tls / name)], cwd=tls, check=False)
        assert result.returncode == 0, f"deploy/nginx/tls/{name} no está ignorado"
    listed = subprocess.run(["git", "ls-files", "."], cwd=tls, capture_output=True, text=True, check=True).stdout
    assert not [f for f in listed.split() if f.endswith((".crt", ".key", ".pem"))]


def upstream_blocks(path: Path) -> dict[str, tuple[str, list[str]]]:
    """upstream name -> (server address, every other directive of the block, server parameters first)."""
    blocks = {}
    for name, body in re.findall(r"upstream (\w+) \{(.*?)\}", path.read_text(encoding="utf-8"), re.DOTALL):
        (server,) = re.findall(r"^\s*server (\S+) ([^;]*);", body, re.MULTILINE)
        others = [line for line in directives(body) if not line.startswith("server ")]
        blocks[name] = (server[0], [server[1], *others])
    return blocks


def test_docker_and_bare_metal_upstreams_differ_only_in_the_address():
    docker, bare = upstream_blocks(UPSTREAMS_DOCKER), upstream_blocks(UPSTREAMS_BARE_METAL)
    assert set(docker) == set(bare) == set(SERVICES)
    compose = load_yaml(COMPOSE)["services"]
    for service in SERVICES:
        host, port = docker[service][0].split(":")
        assert compose[host]["environment"]["PORT"] == port  # the compose service listening there
        assert bare[service][0] == f"127.0.0.1:{port}"
        assert docker[service][1] == bare[service][1]
        parameters = docker[service][1]
        assert "max_fails=3 fail_timeout=10s" in parameters[0]
        assert any(line.startswith("keepalive ") for line in parameters[1:])


def test_the_bare_metal_config_passes_nginx_t(tmp_path):
    conf = render(tmp_path, upstreams=UPSTREAMS_BARE_METAL.read_text(encoding="utf-8"))
    self_signed_certificate(tmp_path / "tls")
    result = nginx_test(conf)
    assert result.returncode == 0, result.stderr


def test_nginx_t_catches_a_broken_config(tmp_path):
    broken = UPSTREAMS_BARE_METAL.read_text(encoding="utf-8").replace("upstream negocio", "upstream otro")
    conf = render(tmp_path, upstreams=broken)
    self_signed_certificate(tmp_path / "tls")
    result = nginx_test(conf)
    assert result.returncode != 0 and "negocio" in result.stderr


# --------------------------------------------------------------------------- live: routing


def test_rendered_config_passes_nginx_t(stack):
    result = nginx_test(stack.conf)
    assert result.returncode == 0, result.stderr


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


def test_every_app_route_lands_on_the_service_that_serves_it(stack):
    routes = app_routes()
    assert {s for s in routes.values()} == {"dashboard", "deposito", "negocio"}
    assert ("POST", "/api/sales") in routes and ("GET", "/api/inventory") in routes
    assert routes[("GET", "/api/prices/{sku}/history")] == "negocio"
    assert routes[("POST", "/api/suppliers/{supplier_id}/merge")] == "negocio"
    assert routes[("POST", "/api/alerts/webhook")] == routes[("GET", "/api/alerts")] == "negocio"
    wrong = []
    with stack.https("clave-invalida") as client:  # 401 wherever it lands: nothing changes
        before = stack.served()  # each route's "after" is the next one's "before": nothing else asks between
        for (method, template), owner in sorted(routes.items()):
            path = re.sub(r"\{[^}]+\}", "NGX-RUTA", template)
            body = {} if method in {"POST", "PATCH", "PUT"} else None
            client.request(method, path, json=body)
            after = stack.served()
            got = served_between(before, after, method)
            before = after
            expected = {s: (1 if s == owner else 0) for s in SERVICES}
            if got != expected:
                wrong.append(f"{method} {path}: esperado {owner}, llegó a {got}")
    assert not wrong, "\n".join(wrong)


def test_negocio_areas_land_on_negocio(stack):
    with stack.https(stack.key) as client:
        for area in NEGOCIO_AREAS:
            for path in (f"/api/{area}", f"/api/{area}/1"):
                landed = stack.landing("GET", lambda path=path: client.get(path))
                assert landed == {"dashboard": 0, "deposito": 0, "negocio": 1}, path
        # A prefix look-alike is not negocio's.
        assert stack.landing("GET", lambda: client.get("/api/suppliersx")) == {"dashboard": 1, "deposito": 0,
                                                                               "negocio": 0}


def test_health_answers_on_both_ports_and_metrics_stays_inside(stack):
    with stack.https() as client:
        health = client.get("/health")
        assert health.status_code == 200 and health.json()["service"] == "dashboard"
        assert health.json()["checks"]["peer:deposito"]["status"] == "ok"
        assert client.get("/metrics").status_code == 404
    with stack.http() as client:
        health = client.get("/health")
        assert health.status_code == 200 and health.json()["service"] == "dashboard"


def test_http_redirects_to_https_except_acme(stack):
    token = stack.acme / ".well-known" / "acme-challenge" / "token-123"
    token.parent.mkdir(parents=True, exist_ok=True)
    token.write_text("desafio-acme")
    with stack.http() as client:
        for method, path in (("GET", "/api/inventory?limit=1"), ("POST", "/api/inventory"), ("GET", "/")):
            response = client.request(method, path)
            assert response.status_code == 301, (method, path)
            assert response.headers["location"] == f"https://127.0.0.1{path}"
        acme = client.get("/.well-known/acme-challenge/token-123")
        assert acme.status_code == 200 and acme.text == "desafio-acme"


# --------------------------------------------------------------------------- live: limits and headers


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


def test_security_headers_once_on_every_answer(stack):
    with stack.https(stack.key) as client, stack.https() as anonymous:
        answers = {
            "GET /api/inventory (200)": client.get("/api/inventory"),
            "GET /api/inventory sin clave (401)": anonymous.get("/api/inventory"),
            "GET /api/suppliers (200 de negocio)": client.get("/api/suppliers"),
            "GET /docs": client.get("/docs"),
            "POST 2 MiB (413 de nginx)": client.post("/api/inventory", content=b"x" * (2 * MIB)),
            "GET /metrics (404 de nginx)": client.get("/metrics"),
        }
    for label, response in answers.items():
        for name in SECURITY_HEADERS:
            values = response.headers.get_list(name)
            assert len(values) == 1, f"{label}: {name} = {values}"
        assert response.headers["x-content-type-options"] == "nosniff", label
        assert response.headers["x-frame-options"] == "DENY", label
        assert response.headers["strict-transport-security"] == "max-age=31536000", label
        assert response.headers["server"] == "nginx", label  # server_tokens off: no version
    assert answers["POST 2 MiB (413 de nginx)"].headers["content-security-policy"] == NGINX_CSP


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


def test_tls_12_and_13_only(stack):
    def handshake(minimum: ssl.TLSVersion, maximum: ssl.TLSVersion) -> str:
        context = stack.tls()
        context.minimum_version, context.maximum_version = minimum, maximum
        with socket.create_connection(("127.0.0.1", stack.https_port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                return tls.version()

    assert handshake(ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert handshake(ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        pytest.skip("el OpenSSL de este Python no puede ni intentar TLS 1.1")
    with socket.create_connection(("127.0.0.1", stack.https_port), timeout=5) as raw:
        with pytest.raises(ssl.SSLError) as refused:
            old.wrap_socket(raw, server_hostname="localhost")
    if "ALERT_PROTOCOL_VERSION" not in str(refused.value):  # nginx's alert, not our own client giving up
        pytest.skip(f"este cliente no llegó a ofrecer TLS 1.1: {refused.value}")


def test_the_compose_nginx_healthcheck_command(stack):
    (kind, *command) = load_yaml(COMPOSE)["services"]["nginx"]["healthcheck"]["test"]
    assert kind == "CMD" and command[0] == "bash"
    here = [command[0], command[1], replace_all(command[2], "/dev/tcp/127.0.0.1/80 ",
                                                f"/dev/tcp/127.0.0.1/{stack.http_port} ", count=1)]
    assert subprocess.run(here, capture_output=True, timeout=30, check=False).returncode == 0
    closed = [command[0], command[1], command[2].replace("/dev/tcp/127.0.0.1/80 ", f"/dev/tcp/127.0.0.1/{free_port()} ")]
    assert subprocess.run(closed, capture_output=True, timeout=30, check=False).returncode != 0


# The last two change the stack's state (a drained rate-limit bucket, a stopped service): keep them last.


def test_rate_limit_refuses_after_a_bounded_burst(stack):
    time.sleep(BURST / RATE + 0.5)  # whatever the earlier tests used of the bucket has refilled
    statuses: list[int] = []

    def flood(_: int) -> list[int]:
        with stack.https() as client:  # no key: the dashboard's quick 401, nothing touches the database
            return [client.get("/api/inventory").status_code for _ in range(25)]

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
    with stack.https() as client:
        refused = client.get("/api/inventory")
        if refused.status_code == 429:
            assert refused.json()["error"]["code"] == "demasiadas_solicitudes"
        assert client.get("/health").status_code == 200  # /health is not rate limited
        deadline = time.monotonic() + 10
        while client.get("/api/inventory").status_code == 429:
            assert time.monotonic() < deadline, "el límite no se libera"
            time.sleep(0.2)


def test_every_dashboard_page_lands_on_the_dashboard(stack):
    """Each page route (from the dashboard's page-role table), /static and the event stream reach `dashboard`."""
    from tests.web.test_page_roles import PAGE_ROLES, PUBLIC_PAGES

    wrong = []
    with stack.https() as client:  # no session: pages answer 303 to /ingresar, actions the same; nothing changes
        before = stack.served()  # each page's "after" is the next one's "before": nothing else asks between
        for method, template in sorted(set(PAGE_ROLES) | PUBLIC_PAGES):
            path = re.sub(r"\{formato\}", "csv", re.sub(r"\{[^}]+\}", "NGX-RUTA", template))
            client.request(method, path, data={} if method == "POST" else None)
            after = stack.served()
            got = served_between(before, after, method)
            before = after
            if got != {"dashboard": 1, "deposito": 0, "negocio": 0}:
                wrong.append(f"{method} {path}: llegó a {got}")
        for path in ("/static/app.css", "/static/app.js"):
            answer = client.get(path)
            assert answer.status_code == 200 and len(answer.content) > 500, path
        login = client.get("/ingresar")
        assert login.status_code == 200 and "Ingresar" in login.text
        # The page's own policy passes through nginx (no inline script or style).
        assert login.headers["content-security-policy"].startswith("default-src 'self'; script-src 'self'; "
                                                                   "style-src 'self'")
    assert not wrong, "\n".join(wrong)


# Stops negocio for the rest of the module-scoped stack: keep it the last test of the file.
def test_a_service_down_gives_a_json_502_and_the_rest_keeps_working(stack):
    stack.servers["negocio"].stop()
    with stack.https(stack.key) as client:
        down = client.get("/api/suppliers")
        assert down.status_code == 502, down.text
        assert down.json()["error"]["code"] == "servicio_no_disponible"
        assert down.headers["x-frame-options"] == "DENY"
        assert client.get("/api/inventory").status_code == 200
    assert stack.nginx.poll() is None, stack.nginx_log()
    assert os.path.exists(stack.directory / "nginx.pid")
