"""Security headers on every response, and the production host check in the one error shape."""

from __future__ import annotations

import hmac
import json

from starlette.middleware.trustedhost import TrustedHostMiddleware

from minimarket.platform.errors import error_body

CSP_API = "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
# /docs serves Swagger UI from the installed swagger-ui-bundle package (no CDN: it works on the
# store LAN without internet); its page boots with an inline script, so only it gets 'unsafe-inline'.
CSP_DOCS = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
            "frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'")
# The dashboard's pages (web/): own scripts and styles only, never inline; SVG charts are inline markup.
CSP_PAGES = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
             "font-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'")
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
# One year; no includeSubDomains: other devices on the store's domain (printers, routers) may only speak HTTP.
HSTS = "max-age=31536000"


def bearer_token_ok(scope, token: str | None) -> bool:  # noqa: ANN001
    """True when `token` is set and the request's `Authorization: Bearer …` is exactly it (constant time)."""
    if not token:
        return False
    sent = next((v for k, v in scope.get("headers") or [] if k == b"authorization"), b"")
    scheme, _, credentials = sent.partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), token.encode())


def _is_docs(path: str) -> bool:
    return path == "/docs" or path.startswith("/docs/")


def _is_api(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


def _csp(path: str) -> str:
    if _is_docs(path):
        return CSP_DOCS
    return CSP_API if _is_api(path) else CSP_PAGES


class SecurityHeaders:
    """Pure ASGI middleware: adds the security headers to every HTTP response start.

    The header lists are built once per kind of path (docs, API, pages), not once per request."""

    def __init__(self, app, *, production: bool):  # noqa: ANN001
        self.app = app
        self.production = production
        common = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
        ]
        hsts = [(b"strict-transport-security", HSTS.encode())] if production else []
        self._extra = {csp: (*common, (b"content-security-policy", csp.encode()),
                             (b"permissions-policy", PERMISSIONS_POLICY.encode()), *hsts)
                       for csp in (CSP_API, CSP_DOCS, CSP_PAGES)}

    async def __call__(self, scope, receive, send):  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        extra = self._extra[_csp(path)]
        api = _is_api(path)

        async def send_with_headers(message):  # noqa: ANN001
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or ())
                if api:  # API answers carry stock and prices: never keep them in a browser or proxy cache
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    headers.append((b"cache-control", b"no-store"))
                present = {k.lower() for k, _ in headers}
                headers.extend(header for header in extra if header[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class TrustedHosts(TrustedHostMiddleware):
    """Starlette's Host check, refusing in the one error shape and in Spanish instead of plain English."""

    _PASSED = "minimarket.host_ok"

    def __init__(self, app, *, allowed_hosts: list[str]):  # noqa: ANN001
        async def passed(scope, receive, send):  # noqa: ANN001
            scope[self._PASSED] = True
            await app(scope, receive, send)

        super().__init__(passed, allowed_hosts=allowed_hosts, www_redirect=False)

    async def __call__(self, scope, receive, send):  # noqa: ANN001
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return

        async def spanish(message):  # noqa: ANN001
            if scope.get(self._PASSED):
                await send(message)
            elif message["type"] == "http.response.start":
                body = json.dumps(error_body(
                    "host_no_permitido",
                    "El nombre con que se llegó al servicio (encabezado Host) no está en ALLOWED_HOSTS",
                ), ensure_ascii=False).encode()
                await send({"type": "http.response.start", "status": message["status"],
                            "headers": [(b"content-type", b"application/json"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
            # the refusal's own plain-text body is dropped

        await super().__call__(scope, receive, spanish)
