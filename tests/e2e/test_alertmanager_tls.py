"""Real Alertmanager and Prometheus (Debian packages) talking mutual TLS with `minimarket certs` material.

Alertmanager listens on loopback with a web config that demands a client certificate signed
by our CA; the tests prove that Prometheus' client certificate gets in, that a client with no
certificate, with a certificate from another CA or speaking plain HTTP does not, and that a
real Prometheus delivers a firing alert to it over mTLS; then the runbook's rotation (PB4) with
`certs generate --force` keeping the CA. Every wait is bounded and every
process is terminated in `finally`. A missing binary skips the tests that need it, or fails them when CI is set.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from typer.testing import CliRunner

from minimarket.ops.tls import generate_tls_material
from minimarket.cli.certs import certs_app
from tests.e2e.servers import free_port, measure, stop_process, tail
from tests.helpers import skip_outside_ci

STARTUP_TIMEOUT = 20.0
ALERT_TIMEOUT = 30.0
TEST_ALERT = "MinimarketTLSPrueba"
REPO = Path(__file__).resolve().parents[2]
REPO_AM_DIR = REPO / "observability" / "alertmanager"
CONTAINER_TLS_DIR = "/etc/alertmanager/tls"  # where docker-compose mounts observability/prometheus/tls
# The TLS alerts a server sends when it refuses the client's certificate (Go sends bad_certificate).
TLS_REFUSAL = re.compile(r"ALERT_(BAD_CERTIFICATE|CERTIFICATE_REQUIRED|UNKNOWN_CA|HANDSHAKE_FAILURE)")


def _binary(env_var: str, *candidates: str) -> str:
    """The first existing binary among $env_var and `candidates`; skip (or fail under CI) if none."""
    options = [os.environ.get(env_var, ""), *candidates]
    for option in options:
        if not option:
            continue
        found = shutil.which(option) or (option if os.access(option, os.X_OK) else None)
        if found:
            return found
    skip_outside_ci(f"no se encontró ninguno de {', '.join(o for o in options if o)} (definí {env_var} con el binario)")


@dataclass
class Proc:
    name: str
    process: subprocess.Popen
    log_path: Path
    base_url: str

    def log(self) -> str:
        return tail(self.log_path)

    def stop(self) -> None:
        stop_process(self.process)


def _start(name: str, argv: list[str], workdir: Path, base_url: str) -> Proc:
    log_path = workdir / f"{name}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=workdir, start_new_session=True)
    return Proc(name=name, process=process, log_path=log_path, base_url=base_url)


def _wait(proc: Proc, probe: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `probe` until it is true (bounded); fail early, with the log, if the process dies."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise AssertionError(f"{proc.name} exited with {proc.process.returncode} before {what}:\n{proc.log()}")
        try:
            if probe():
                return
        except (httpx.HTTPError, ssl.SSLError, OSError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.2)
    raise AssertionError(f"{proc.name}: no {what} within {timeout} s (last: {last}):\n{proc.log()}")


def _context(tls: Path, *, client_cert: bool = True, other: Path | None = None) -> ssl.SSLContext:
    """Trust `tls/ca.crt`; present `prometheus.crt/.key` from `other` (another CA) or `tls`, or none."""
    ctx = ssl.create_default_context(cafile=str(tls / "ca.crt"))
    if client_cert:
        source = other or tls
        ctx.load_cert_chain(str(source / "prometheus.crt"), str(source / "prometheus.key"))
    return ctx


def _client(ctx: ssl.SSLContext | bool) -> httpx.Client:
    return httpx.Client(verify=ctx, timeout=5.0, trust_env=False)


@dataclass
class Stack:
    tls: Path
    other_ca: Path
    work: Path
    alertmanager: Proc
    am_port: int


def _start_alertmanager(binary: str, work: Path, tls: Path, name: str = "alertmanager",
                        web_config: str | None = None) -> tuple[Proc, int]:
    """Alertmanager on 127.0.0.1:<free port> demanding a client certificate signed by tls/ca.crt."""
    (work / "alertmanager.yml").write_text(
        "route:\n  receiver: nadie\n  group_wait: 0s\nreceivers:\n  - name: nadie\n", encoding="utf-8")
    (work / "web.yml").write_text(web_config or (
        "tls_server_config:\n"
        f"  cert_file: {tls / 'alertmanager.crt'}\n"
        f"  key_file: {tls / 'alertmanager.key'}\n"
        f"  client_ca_file: {tls / 'ca.crt'}\n"
        "  client_auth_type: RequireAndVerifyClientCert\n"
        "  min_version: TLS12\n"), encoding="utf-8")
    (work / f"{name}-data").mkdir(exist_ok=True)
    port = free_port()
    proc = _start(name, [
        binary, f"--config.file={work / 'alertmanager.yml'}", f"--web.config.file={work / 'web.yml'}",
        f"--web.listen-address=127.0.0.1:{port}", f"--storage.path={work / f'{name}-data'}",
        "--cluster.listen-address=", "--log.level=debug",
    ], work, f"https://127.0.0.1:{port}")
    try:
        ctx = _context(tls)

        def ready() -> bool:
            with _client(ctx) as client:
                return client.get(proc.base_url + "/-/ready").status_code == 200

        _wait(proc, ready, STARTUP_TIMEOUT, "/-/ready over HTTPS")
    except BaseException:
        proc.stop()
        raise
    return proc, port


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    am_bin = _binary("ALERTMANAGER_BIN", "/usr/bin/prometheus-alertmanager", "alertmanager")
    work = tmp_path_factory.mktemp("am-tls")
    tls, other = work / "tls", work / "otra-ca"
    generate_tls_material(tls, days=30)
    generate_tls_material(other, days=30)
    proc, port = _start_alertmanager(am_bin, work, tls)
    try:
        yield Stack(tls=tls, other_ca=other, work=work, alertmanager=proc, am_port=port)
    finally:
        proc.stop()


def test_client_with_prometheus_certificate_is_served(stack: Stack) -> None:
    with _client(_context(stack.tls)) as client:
        r = client.get(stack.alertmanager.base_url + "/api/v2/status")
    assert r.status_code == 200, r.text
    assert r.json()["versionInfo"]["version"]
    # The SANs cover the names the runbook and the compose file use, not only the IP.
    with _client(_context(stack.tls)) as client:
        assert client.get(f"https://localhost:{stack.am_port}/api/v2/status").status_code == 200


def test_client_without_certificate_is_refused(stack: Stack) -> None:
    with _client(_context(stack.tls, client_cert=False)) as client, pytest.raises(httpx.TransportError) as info:
        client.get(stack.alertmanager.base_url + "/api/v2/status")
    # TLS 1.3: the client's handshake completes before the server checks the client certificate,
    # so the server's alert surfaces on the first read (ReadError), not at connect.
    assert isinstance(info.value, (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError))
    assert TLS_REFUSAL.search(str(info.value)), info.value


def test_tls12_client_without_certificate_fails_the_handshake(stack: Stack) -> None:
    ctx = _context(stack.tls, client_cert=False)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with _client(ctx) as client, pytest.raises(httpx.ConnectError, match=TLS_REFUSAL):
        client.get(stack.alertmanager.base_url + "/api/v2/status")


def test_client_certificate_from_another_ca_is_refused(stack: Stack) -> None:
    with _client(_context(stack.tls, other=stack.other_ca)) as client, pytest.raises(httpx.TransportError) as info:
        client.get(stack.alertmanager.base_url + "/api/v2/status")
    assert TLS_REFUSAL.search(str(info.value)), info.value


def test_client_that_does_not_trust_our_ca_rejects_the_server(stack: Stack) -> None:
    ctx = ssl.create_default_context(cafile=str(stack.other_ca / "ca.crt"))
    ctx.load_cert_chain(str(stack.tls / "prometheus.crt"), str(stack.tls / "prometheus.key"))
    with _client(ctx) as client, pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        client.get(stack.alertmanager.base_url + "/api/v2/status")


def test_plain_http_is_refused(stack: Stack) -> None:
    with httpx.Client(timeout=5.0, trust_env=False) as client:
        r = client.get(f"http://127.0.0.1:{stack.am_port}/api/v2/status")
    # Go's TLS listener answers a cleartext request with 400 and closes; no API data leaks.
    assert r.status_code == 400
    assert "versionInfo" not in r.text


def test_prometheus_delivers_alerts_over_mutual_tls(stack: Stack) -> None:
    prom_bin = _binary("PROMETHEUS_BIN", "/usr/bin/prometheus", "prometheus")
    work, tls = stack.work, stack.tls
    (work / "rules.yml").write_text(
        "groups:\n"
        "  - name: prueba-tls\n"
        "    interval: 1s\n"
        "    rules:\n"
        f"      - alert: {TEST_ALERT}\n"
        "        expr: vector(1)\n"
        "        for: 0s\n"
        "        labels:\n"
        "          severity: info\n"
        "        annotations:\n"
        "          summary: Alerta de prueba de TLS mutuo\n", encoding="utf-8")
    (work / "prometheus.yml").write_text(
        "global:\n"
        "  evaluation_interval: 1s\n"
        "  scrape_interval: 15s\n"
        "rule_files:\n"
        f"  - {work / 'rules.yml'}\n"
        "alerting:\n"
        "  alertmanagers:\n"
        "    - scheme: https\n"
        "      timeout: 5s\n"
        "      tls_config:\n"
        f"        ca_file: {tls / 'ca.crt'}\n"
        f"        cert_file: {tls / 'prometheus.crt'}\n"
        f"        key_file: {tls / 'prometheus.key'}\n"
        "      static_configs:\n"
        f"        - targets: ['localhost:{stack.am_port}']\n", encoding="utf-8")
    (work / "prom-data").mkdir()
    port = free_port()
    prometheus = _start("prometheus", [
        prom_bin, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'prom-data'}",
        f"--web.listen-address=127.0.0.1:{port}", "--log.level=debug",
        # The first notification usually precedes Alertmanager discovery (throttled to 5 s) and is
        # dropped; the default 1 m resend delay would then outlast the wait.
        "--rules.alert.resend-delay=1s",
    ], work, f"http://127.0.0.1:{port}")
    try:
        with httpx.Client(timeout=5.0, trust_env=False) as plain:
            _wait(prometheus, lambda: plain.get(prometheus.base_url + "/-/ready").status_code == 200,
                  STARTUP_TIMEOUT, "/-/ready")
        started = time.monotonic()
        with _client(_context(tls)) as client:
            def alert_arrived() -> bool:
                r = client.get(stack.alertmanager.base_url + "/api/v2/alerts",
                               params={"filter": f'alertname="{TEST_ALERT}"'})
                r.raise_for_status()
                return any(a["labels"].get("alertname") == TEST_ALERT for a in r.json())

            try:
                _wait(prometheus, alert_arrived, ALERT_TIMEOUT, f"{TEST_ALERT} in Alertmanager")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n--- alertmanager ---\n{stack.alertmanager.log()}") from None
            alerts = client.get(stack.alertmanager.base_url + "/api/v2/alerts").json()
        alert = next(a for a in alerts if a["labels"]["alertname"] == TEST_ALERT)
        assert alert["status"]["state"] == "active"
        assert alert["annotations"]["summary"] == "Alerta de prueba de TLS mutuo"
        # Prometheus' own view: the Alertmanager it discovered is the https one.
        with httpx.Client(timeout=5.0, trust_env=False) as plain:
            active = plain.get(prometheus.base_url + "/api/v1/alertmanagers").json()["data"]["activeAlertmanagers"]
        assert [a["url"] for a in active] == [f"https://localhost:{stack.am_port}/api/v2/alerts"]
        measure("Prometheus -> Alertmanager alert over mTLS", f"{time.monotonic() - started:.1f} s after ready")
    finally:
        prometheus.stop()


def _server_certificate(port: int, ctx: ssl.SSLContext) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as tls_sock:
        return tls_sock.getpeercert(binary_form=True)


def test_rotation_keeping_the_ca_as_in_the_runbook(tmp_path: Path) -> None:
    """PB4 on real processes: generate --force (backup, same CA), restart, old and new clients get in."""
    am_bin = _binary("ALERTMANAGER_BIN", "/usr/bin/prometheus-alertmanager", "alertmanager")
    tls = tmp_path / "tls"
    generate_tls_material(tls, days=5)
    result = CliRunner().invoke(certs_app, ["generate", "--dest", str(tls), "--force", "--days", "90"])
    assert result.exit_code == 0, result.output
    (backup,) = tls.glob("backup_*")
    assert (backup / "ca.crt").read_bytes() == (tls / "ca.crt").read_bytes()
    proc, port = _start_alertmanager(am_bin, tmp_path, tls)  # the "restart" after rotating
    try:
        new_cert = x509.load_pem_x509_certificate((tls / "alertmanager.crt").read_bytes())
        served = _server_certificate(port, _context(tls))
        assert served == new_cert.public_bytes(serialization.Encoding.DER)
        # A Prometheus still holding the previous certificate (same CA) keeps delivering until restarted.
        for source in (tls, backup):
            with _client(_context(tls, other=source)) as client:
                assert client.get(proc.base_url + "/api/v2/status").status_code == 200, source
        check = CliRunner().invoke(certs_app, ["check", "--dir", str(tls), "--warn-days", "30"])
        assert check.exit_code == 0, check.output
    finally:
        proc.stop()


def test_repo_web_config_and_compose_healthcheck_work_with_generated_material(tmp_path: Path) -> None:
    """observability/alertmanager/web.yml and amtool-http.yml (container paths pointed at tmp) with our certs."""
    web, amtool_http = REPO_AM_DIR / "web.yml", REPO_AM_DIR / "amtool-http.yml"
    # The repo's own files: a checkout without them is broken, so this fails instead of skipping.
    assert web.is_file() and amtool_http.is_file(), f"faltan {web} o {amtool_http} en el repositorio"
    am_bin = _binary("ALERTMANAGER_BIN", "/usr/bin/prometheus-alertmanager", "alertmanager")
    amtool = _binary("AMTOOL_BIN", "/usr/bin/amtool", "amtool")
    tls = tmp_path / "tls"
    generate_tls_material(tls)
    web_text = web.read_text(encoding="utf-8")
    assert CONTAINER_TLS_DIR in web_text and "RequireAndVerifyClientCert" in web_text
    (tmp_path / "amtool-http.yml").write_text(
        amtool_http.read_text(encoding="utf-8").replace(CONTAINER_TLS_DIR, str(tls)), encoding="utf-8")
    proc, port = _start_alertmanager(am_bin, tmp_path, tls, web_config=web_text.replace(CONTAINER_TLS_DIR, str(tls)))
    try:
        # The compose health check, verbatim but for the port.
        result = subprocess.run([amtool, f"--alertmanager.url=https://localhost:{port}",
                                 f"--http.config.file={tmp_path / 'amtool-http.yml'}", "config", "show"],
                                capture_output=True, text=True, timeout=20, check=False)
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{proc.log()}"
        assert "receiver: nadie" in result.stdout
        with _client(_context(tls, client_cert=False)) as client, pytest.raises(httpx.TransportError):
            client.get(proc.base_url + "/api/v2/status")
    finally:
        proc.stop()
