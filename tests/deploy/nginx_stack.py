"""deploy/nginx with the real nginx on loopback in front of real dashboard, deposito and negocio processes.

The config is rendered into a temporary directory: upstream hosts become 127.0.0.1 and the
ports of three `minimarket serve` processes sharing one SQLite file; listen 80/443 become free
high ports; certificate, logs, ACME root and temp paths point into the directory. Every other
line is the file in the repository. Without nginx the tests skip (with CI set they fail).

Shared by test_nginx_config.py (the files themselves), test_nginx_routing.py (what lands where,
limits) and test_nginx_tls.py (TLS, redirects, headers). The live stack is one per package
(tests/deploy/conftest.py: `stack`): three app processes and nginx started once for the three files.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.deploy.helpers import (
    APP_SERVICES,
    NGINX_CONF,
    SYSTEMD,
    UPSTREAMS_DOCKER,
    Processes,
    app_env,
    cli_command,
    free_port,
    parse_env_file,
)
from tests.e2e.servers import Server, tail, wait_healthy
from tests.helpers import skip_outside_ci

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
    processes: Processes

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

    def upstreams(self, request_ids: Iterable[str], timeout: float = 10.0) -> dict[str, str | None]:
        """Request id -> the service nginx sent it to, from the `upstream` of its access-log line (None: nginx
        answered itself); waits (bounded) until every id is logged."""
        wanted, by_address = set(request_ids), {f"127.0.0.1:{s.port}": name for name, s in self.servers.items()}
        deadline = time.monotonic() + timeout
        while True:
            found = {}
            for line in self.access_log.read_text(encoding="utf-8").splitlines():
                entry = json.loads(line)
                if entry["request_id"] in wanted:
                    upstream = entry["upstream"]
                    found[entry["request_id"]] = by_address.get(upstream, upstream) if upstream else None
            if len(found) == len(wanted) or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def nginx_log(self) -> str:
        return tail(self.directory / "logs" / "error.log")

    def restart(self, service: str) -> None:
        """Start `service` again on its port (same command and environment) if a test stopped it."""
        old = self.servers[service]
        if old.process.poll() is None:
            return
        self.servers[service] = self.processes.spawn(list(old.process.args), env=old.env, port=old.port,
                                                     service=service, database_url=old.database_url)


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


def directives(text: str) -> list[str]:
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]


@contextmanager
def running_stack(directory: Path) -> Iterator[Stack]:
    """The three app processes on one SQLite file, a key, and nginx in front of them; all stopped after."""
    nginx_binary()
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
                    ca=ca, conf=conf, nginx=nginx, acme=acme, processes=processes)
    finally:
        if nginx is not None:
            stop_process(nginx)
        processes.stop_all()
        shutil.rmtree(acme, ignore_errors=True)
