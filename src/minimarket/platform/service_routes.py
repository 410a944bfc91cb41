"""Routes every service answers for the operator, with no business area behind them: /health,
/health/live and /metrics.

A balancer probes /health and /health/live many times a second, so `ProbeFront` answers GET on
both before FastAPI's routing and dependency solving (the answer is the same the documented routes
give: they call the same `Probes`), still inside every middleware: security headers, request id,
metrics by route template, the access log line, the Host check and CORS.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from minimarket.config import Settings
from minimarket.platform.errors import error_body
from minimarket.platform.health import check_health, without_details
from minimarket.platform.metrics import render_metrics
from minimarket.platform.security import bearer_token_ok

HEALTH, LIVE = "/health", "/health/live"


def _json(content: Any) -> bytes:
    """The bytes Starlette's JSONResponse renders for `content`."""
    return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode("utf-8")


def _has_credentials(scope) -> bool:  # noqa: ANN001
    """An X-API-Key or an Authorization header with a value (the first of each, as Request.headers.get)."""
    seen: set[bytes] = set()
    for name, value in scope.get("headers") or ():
        if name in (b"x-api-key", b"authorization") and name not in seen:
            if value:
                return True
            seen.add(name)
    return False


class Probes:
    """What /health and /health/live answer. `peers` are the other services /health asks about;
    `sees_details(request)` says whether this caller may read /health's error details."""

    def __init__(self, service: str, settings: Settings, peers: dict[str, str],
                 sees_details: Callable[[Request], bool]):
        self.service = service
        self.settings = settings
        self.peers = peers
        self.sees_details = sees_details
        self.live_body = _json({"status": "ok", "service": service})
        self._at = float("-inf")
        self._answer: tuple[int, dict] | None = None
        self._checking = asyncio.Lock()
        self._anonymous: tuple[Any, bytes] = (None, b"")  # (answer, its body without details, rendered)

    async def current(self, app: FastAPI) -> tuple[int, dict]:
        """The dependency checks, run at most once per HEALTH_CACHE_SECONDS: a probe every 100 ms from
        each of several balancers must not become a database round trip each."""
        seconds = self.settings.health_cache_seconds
        if self._answer is not None and time.monotonic() - self._at < seconds:
            return self._answer  # fresh: no lock to take (a stale answer waits for the check below)
        async with self._checking:
            if time.monotonic() - self._at >= seconds:
                state, settings = app.state, self.settings
                self._answer = await run_in_threadpool(
                    lambda: check_health(service=self.service, db=state.db, cache=state.cache, peers=self.peers,
                                         schema=state.schema,
                                         limiter=state.ratelimiter if settings.rate_limit_enabled else None))
                self._at = time.monotonic()
            return self._answer

    async def health(self, scope) -> tuple[int, bytes]:  # noqa: ANN001
        """/health's status and JSON body for this request: error details only for the metrics token
        or a valid API key (checked in a worker thread: it may read the key from the database)."""
        answer = await self.current(scope["app"])
        status, body = answer
        if _has_credentials(scope) and await run_in_threadpool(self.sees_details, Request(scope)):
            return status, _json(body)
        rendered_from, payload = self._anonymous
        if rendered_from is not answer:  # rendered once per check, not once per probe
            payload = _json(without_details(body))
            self._anonymous = (answer, payload)
        return status, payload


class ProbeFront:
    """Pure ASGI, the innermost middleware: answers GET /health and GET /health/live from `Probes`
    without FastAPI's routing (~200 routes in the all-in-one app) and dependency solving. It sets the
    scope's route to the documented one (the route object FastAPI itself would set), so metrics and the
    log line still name it by template. Any other method (HEAD, POST: 405 as before), path, or a mounted
    root_path goes on to FastAPI. `router` is `service_router(probes)`, included in the app."""

    def __init__(self, app, *, probes: Probes, router: APIRouter):  # noqa: ANN001
        self.app = app
        self.probes = probes
        self.routes = {route.path: route for route in router.routes
                       if isinstance(route, APIRoute) and route.path in (HEALTH, LIVE) and "GET" in route.methods}
        if set(self.routes) != {HEALTH, LIVE}:
            raise ValueError("ProbeFront needs the router of service_router(), with GET /health and /health/live")

    async def __call__(self, scope, receive, send):  # noqa: ANN001
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            route = self.routes.get(scope["path"])
            if route is not None:
                scope["route"] = route
                scope["endpoint"] = route.endpoint
                if route.path == LIVE:
                    status, body = 200, self.probes.live_body
                else:
                    status, body = await self.probes.health(scope)
                await send({"type": "http.response.start", "status": status,
                            "headers": [(b"content-length", str(len(body)).encode()),
                                        (b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def service_router(probes: Probes) -> APIRouter:
    """The operator's routes of one service, as documented in OpenAPI; GET on /health and /health/live
    is answered by `ProbeFront` with the same `probes` (these endpoints answer when it is not installed)."""
    router = APIRouter(tags=["operación"])
    settings = probes.settings

    @router.get(HEALTH, summary="Estado del servicio y sus dependencias")
    async def health(request: Request) -> JSONResponse:
        status, body = await probes.health(request.scope)
        return Response(body, status_code=status, media_type="application/json")

    @router.get(LIVE, summary="El proceso responde (sin revisar dependencias)")
    async def live() -> dict[str, str]:  # async: no worker thread for a constant
        return {"status": "ok", "service": probes.service}

    @router.get("/metrics", summary="Métricas Prometheus", response_class=PlainTextResponse)  # documented as text
    def metrics(request: Request) -> Response:
        if settings.metrics_token and not bearer_token_ok(request.scope, settings.metrics_token):
            return JSONResponse(error_body("no_autenticado", "Falta el token de métricas o no coincide: enviá "
                                           "Authorization: Bearer <METRICS_TOKEN>"),
                                status_code=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        payload, content_type = render_metrics(request.app.state.metrics)
        return Response(payload, media_type=content_type)

    return router
