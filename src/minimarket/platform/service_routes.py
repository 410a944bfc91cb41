"""Routes every service answers for the operator, with no business area behind them: /health,
/health/live and /metrics."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

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

    @router.get("/health", summary="Estado del servicio y sus dependencias")
    def health(request: Request) -> JSONResponse:
        status, body = check_health(service=service, db=request.app.state.db, cache=request.app.state.cache,
                                    peers=peers, schema=request.app.state.schema,
                                    limiter=request.app.state.ratelimiter if settings.rate_limit_enabled else None)
        if not sees_details(request):
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
