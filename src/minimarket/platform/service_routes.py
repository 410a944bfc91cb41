"""Routes every service answers for the operator, with no business area behind them: /health,
/health/live and /metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from minimarket.config import Settings
from minimarket.platform.errors import error_body
from minimarket.platform.health import check_health, without_details
from minimarket.platform.metrics import render_metrics
from minimarket.platform.security import bearer_token_ok


def service_router(service: str, settings: Settings, peers: dict[str, str],
                   sees_details: Callable[[Request], bool]) -> APIRouter:
    """The operator's routes of one service. `peers` are the other services /health asks about;
    `sees_details(request)` says whether this caller may read /health's error details."""
    router = APIRouter(tags=["operación"])

    checked: dict[str, Any] = {"at": float("-inf"), "answer": None}
    checking = asyncio.Lock()

    async def current(request: Request) -> tuple[int, dict]:
        """The dependency checks, run at most once per HEALTH_CACHE_SECONDS: a probe every 100 ms from
        each of several balancers must not become a database round trip each."""
        async with checking:
            if time.monotonic() - checked["at"] >= settings.health_cache_seconds:
                state = request.app.state
                checked["answer"] = await run_in_threadpool(
                    lambda: check_health(service=service, db=state.db, cache=state.cache, peers=peers,
                                         schema=state.schema,
                                         limiter=state.ratelimiter if settings.rate_limit_enabled else None))
                checked["at"] = time.monotonic()
            return checked["answer"]

    @router.get("/health", summary="Estado del servicio y sus dependencias")
    async def health(request: Request) -> JSONResponse:
        status, body = await current(request)
        credentials = request.headers.get("x-api-key") or request.headers.get("authorization")
        if not credentials or not await run_in_threadpool(sees_details, request):
            body = without_details(body)
        return JSONResponse(body, status_code=status)

    @router.get("/health/live", summary="El proceso responde (sin revisar dependencias)")
    def live() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @router.get("/metrics", summary="Métricas Prometheus", response_class=PlainTextResponse)  # documented as text
    def metrics(request: Request) -> Response:
        if settings.metrics_token and not bearer_token_ok(request.scope, settings.metrics_token):
            return JSONResponse(error_body("no_autenticado", "Falta el token de métricas o no coincide: enviá "
                                           "Authorization: Bearer <METRICS_TOKEN>"),
                                status_code=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        payload, content_type = render_metrics(request.app.state.metrics)
        return Response(payload, media_type=content_type)

    return router
