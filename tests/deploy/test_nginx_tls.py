"""TLS in front of the store (tests/deploy/nginx_stack.py): only TLS 1.2 and 1.3, port 80 only redirects
(except the ACME challenge), the security headers once on every answer, and no TLS material committed."""

from __future__ import annotations

import socket
import ssl
import subprocess
import warnings

import pytest

from tests.deploy.nginx_stack import MIB, NGINX_CSP, SECURITY_HEADERS
from tests.deploy.helpers import NGINX_CONF


def test_tls_material_is_never_committed():
    tls = NGINX_CONF.parent / "tls"
    for name in ("server.crt", "server.key", "server.pem"):
        result = subprocess.run(["git", "check-ignore", "-q", str(tls / name)], cwd=tls, check=False)
        assert result.returncode == 0, f"deploy/nginx/tls/{name} no está ignorado"
    listed = subprocess.run(["git", "ls-files", "."], cwd=tls, capture_output=True, text=True, check=True).stdout
    assert not [f for f in listed.split() if f.endswith((".crt", ".key", ".pem"))]


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
