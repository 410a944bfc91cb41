"""ASGI middleware: request id, body size limit, metrics by route template, access log."""

from __future__ import annotations

import json
import re
import logging
import os
import time
from urllib.parse import parse_qsl

import structlog
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.routing import compile_path

from minimarket.platform.errors import error_body, internal_error_body
from minimarket.platform.logging import print_info
from minimarket.platform.metrics import HTTP_DURATION, HTTP_REQUESTS

log = structlog.get_logger("minimarket.http")
_stdlib_log = logging.getLogger("minimarket.http")
UNMATCHED = "<sin_ruta>"  # every unknown path shares one label value


def _too_large_message(limit: int) -> str:
    return f"El cuerpo de la solicitud supera el máximo de {limit} bytes; enviá lotes más chicos"


def _nul_in_url(scope) -> str | None:  # noqa: ANN001
    """The query parameter (or "ruta") carrying a NUL character, which no text column can hold."""
    if "\x00" in scope.get("path", ""):
        return "ruta"
    query = scope.get("query_string", b"")
    if b"%00" not in query and b"\x00" not in query:  # parse_qsl decodes once: only these become a NUL
        return None
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if "\x00" in name + value:
            return name.replace("\x00", "") or "consulta"
    return None


def _new_request_id() -> str:
    """32 lowercase hex digits from the OS's random source (uuid4().hex's format, without building a UUID)."""
    return os.urandom(16).hex()


def _access_line_wanted() -> bool:
    """False only when structlog is configured as `configure_logging` does (stdlib loggers, filtered
    by level first) and LOG_LEVEL is above INFO: then `filter_by_level` would drop the line anyway,
    after structlog built a bound logger for it (~10 µs a request for nothing)."""
    if _stdlib_log.isEnabledFor(logging.INFO):
        return True
    config = structlog.get_config()
    processors = config["processors"]
    return not (processors and processors[0] is structlog.stdlib.filter_by_level
                and isinstance(config["logger_factory"], structlog.stdlib.LoggerFactory))


def route_table(routers) -> list[tuple[re.Pattern, set[str], str]]:  # noqa: ANN001
    """(compiled path, methods, template) of every documented route of these routers, listed when the
    app is built: building app.openapi() instead, at the first refused request, stalled the event loop
    (0.8 s on a quiet machine, seconds on a loaded one)."""
    return [(route.path_regex, set(route.methods), route.path) for router in routers for route in router.routes
            if isinstance(route, APIRoute) and route.include_in_schema]


def _route_of(scope) -> str | None:  # noqa: ANN001
    """The route template a request would have reached, for answers given before routing (caller
    gate, rate limit, body too large). From the table create_app lists (`route_table`), or else from
    the app's OpenAPI paths, compiled once; only those pay for it."""
    app = scope.get("app")
    if app is None or not hasattr(app, "openapi"):
        return None
    table = getattr(app.state, "route_templates", None)
    if table is None:
        table = [(compile_path(path)[0], {m.upper() for m in operations}, path)
                 for path, operations in app.openapi().get("paths", {}).items()]
        app.state.route_templates = table
    path, method = scope.get("path", ""), scope.get("method", "GET")
    return next((template for regex, methods, template in table if method in methods and regex.match(path)), None)


class BodyTooLarge(HTTPException):
    """Raised while the app reads a streamed body; FastAPI turns it into a 413 response."""

    def __init__(self, limit: int):
        super().__init__(status_code=413, detail=_too_large_message(limit))


class ObservedApp:
    """Wraps the FastAPI app: one request id, one metrics sample and one log line per request.

    Per request it is on every answer's path, so it keeps its own work small: the labelled metric
    series are looked up once per (method, route template, status), the access line is printed
    straight to configure_logging's handler (platform.logging.print_info; the same line) or skipped
    when LOG_LEVEL drops it, and the query string is parsed only when it could carry a NUL."""

    MAX_SERIES = 4096  # cached (method, endpoint, status) triples; past it, prometheus' own lookup

    def __init__(self, app, *, service: str, max_body_bytes: int):  # noqa: ANN001
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes
        self._series: dict[tuple[str, str, str], tuple] = {}

    def _observe(self, method: str, endpoint: str, status: str, elapsed: float) -> None:
        key = (method, endpoint, status)
        series = self._series.get(key)
        if series is None:
            series = (HTTP_REQUESTS.labels(self.service, method, endpoint, status),
                      HTTP_DURATION.labels(self.service, method, endpoint))
            if len(self._series) < self.MAX_SERIES:
                self._series[key] = series
        series[0].inc()
        series[1].observe(elapsed)

    async def __call__(self, scope, receive, send):  # noqa: ANN001
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or _new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.bind_contextvars(request_id=request_id)
        start = time.perf_counter()
        status = 500
        started = False
        echoed = (b"x-request-id", request_id.encode())

        async def send_wrapper(message):  # noqa: ANN001
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                message["headers"] = [*(message.get("headers") or ()), echoed]
            await send(message)

        try:
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                await self._too_large(send_wrapper)
            elif (field := _nul_in_url(scope)) is not None:
                problem = "no puede contener el carácter NUL (%00)"
                await self._reject(send_wrapper, 422, error_body("datos_invalidos", f"{field}: {problem}",
                                                                 [{"field": field, "problem": problem}]))
            else:
                await self.app(scope, self._limited(receive), send_wrapper)
        except Exception as exc:  # noqa: BLE001 - the last stop: answered here, not by the server
            # Starlette's own catch-all sits outside every middleware, so its 500 would carry neither
            # the request id nor the security headers; answering here keeps both.
            log.exception("unhandled_error", path=scope.get("path"), error=type(exc).__name__)
            if started:
                raise  # headers already went out: only the server can end this response
            await self._reject(send_wrapper, 500, internal_error_body(request_id))
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            if route is None:  # answered before routing (caller gate, rate limit, 413): still by template
                endpoint = _route_of(scope) or UNMATCHED
            else:
                endpoint = getattr(route, "path", None) or UNMATCHED
            method = scope.get("method", "GET")
            self._observe(method, endpoint, str(status), elapsed)
            line = {"method": method, "path": scope.get("path"), "endpoint": endpoint, "status": status,
                    "duration_ms": round(elapsed * 1000, 2), "actor": scope.get("state", {}).get("actor")}
            if not print_info(_stdlib_log, "request", **line) and _access_line_wanted():
                log.info("request", **line)
            structlog.contextvars.unbind_contextvars("request_id")

    def _limited(self, receive):  # noqa: ANN001
        seen = 0
        limit = self.max_body_bytes

        async def wrapped():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        return wrapped

    async def _too_large(self, send) -> None:  # noqa: ANN001
        await self._reject(send, 413, error_body("cuerpo_demasiado_grande", _too_large_message(self.max_body_bytes)))

    @staticmethod
    async def _reject(send, status: int, payload: dict) -> None:  # noqa: ANN001
        body = json.dumps(payload, ensure_ascii=False).encode()
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        })
        await send({"type": "http.response.body", "body": body})
