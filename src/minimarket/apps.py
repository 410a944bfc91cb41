"""Builds the four ASGI apps from the area routers: dashboard, deposito, negocio, all-in-one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import structlog
from prometheus_client import CollectorRegistry
from fastapi import APIRouter, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import RedirectResponse

from minimarket import __version__
from minimarket.alerts import api as alerts_api
from minimarket.catalog import api as catalog_api
from minimarket.config import Settings, csv_list, get_settings
from minimarket.db import Database
from minimarket.invoices import api as invoices_api
from minimarket.migrations.runner import SchemaCheck
from minimarket.api.gate import Caller, CallerGate, api_key_caller, versions_wanted
from minimarket.platform.cache import make_cache
from minimarket.platform.read_cache import ReadCache, invalidate_after_commit
from minimarket.stock.list_reads import PageCache
from minimarket.platform.docs import install_docs
from minimarket.platform.errors import install_error_handlers
from minimarket.platform.http import ObservedApp, route_table
from minimarket.platform.idempotency import purge_expired
from minimarket.platform.limiter import LimiterCollector, make_limiter
from minimarket.platform.ratelimit import RateLimited
from minimarket.platform.security import SecurityHeaders, TrustedHosts, bearer_token_ok
from minimarket.platform.service_routes import ProbeFront, Probes, service_router
from minimarket.pricing import api as pricing_api
from minimarket.ops.backup.scheduler import start_backup_scheduler
from minimarket.ops.store_metrics import StoreCollector
from minimarket.stock import api as stock_api
from minimarket.stock import inventory_api
from minimarket.suppliers import api as suppliers_api
from minimarket.purchasing import api as purchasing_api
from minimarket.purchasing import orders_api
from minimarket.web.install import install_web

log = structlog.get_logger("minimarket.apps")

SERVICES = {
    "all": "Mini Market (todo en uno)",
    "dashboard": "Mini Market — dashboard",
    "deposito": "Mini Market — agente-deposito",
    "negocio": "Mini Market — agente-negocio",
}
# Which routers each deployable service serves; nginx routes /api/... by the same split.
_READS = [inventory_api.read_router, catalog_api.read_router, stock_api.read_router]
_NEGOCIO = [pricing_api.router, suppliers_api.router, invoices_api.router, alerts_api.router,
            purchasing_api.forecast_router, purchasing_api.purchasing_router, orders_api.router]
ROUTERS = {
    "dashboard": _READS,
    "deposito": [*_READS, inventory_api.write_router, stock_api.write_router],
    "negocio": [inventory_api.read_router, catalog_api.read_router, *_NEGOCIO],
}
ROUTERS["all"] = [*ROUTERS["deposito"], *_NEGOCIO]
# The services that serve the dashboard's pages (web/); nginx sends page paths and /static to `dashboard`.
WEB_SERVICES = ("dashboard", "all")


def _peers(service: str, settings: Settings) -> dict[str, str]:
    urls = {"dashboard": settings.dashboard_url, "deposito": settings.deposito_url, "negocio": settings.negocio_url}
    return {f"peer:{name}": url for name, url in urls.items() if url and name != service}


def _purge_idempotency(app: FastAPI) -> int:
    with app.state.db.write() as session:
        return purge_expired(session, older_than_hours=app.state.settings.idempotency_ttl_hours)


async def _purge_idempotency_periodically(app: FastAPI) -> None:
    while True:
        try:
            # In a worker thread: the unit of work may wait for SQLite's writer lock, never the event loop.
            removed = await asyncio.to_thread(_purge_idempotency, app)
            if removed:
                log.info("idempotency_purged", removed=removed)
        except Exception as exc:  # noqa: BLE001 - a failed purge is retried next hour
            log.warning("idempotency_purge_failed", error=str(exc))
        await asyncio.sleep(3600)


def _sees_health_details(request: Request, settings: Settings) -> bool:
    """The metrics token or a valid API key (of any role) shows /health's error details."""
    if bearer_token_ok(request.scope, settings.metrics_token):
        return True
    if not request.headers.get("x-api-key"):
        return False
    try:
        return isinstance(api_key_caller(request.scope, request.app), Caller)
    except Exception:  # noqa: BLE001 - the database is down: no key can be checked, so no details
        return False


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    task = asyncio.create_task(_purge_idempotency_periodically(app))
    backup_task = start_backup_scheduler(app)
    try:
        yield
    finally:
        task.cancel()
        if backup_task is not None:
            backup_task.cancel()
        app.state.db.dispose()
        if hasattr(app.state.cache, "close"):
            app.state.cache.close()


def create_app(service: str = "all", settings: Settings | None = None) -> FastAPI:
    """One deployable service (or all of them): its routers, state, error handlers and middleware."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    settings = settings or get_settings()
    settings.check()
    app = FastAPI(
        title=SERVICES[service],
        version=__version__,
        description="API de Mini Market. Todas las rutas /api requieren el encabezado `X-API-Key`.",
        lifespan=_lifespan,
        docs_url=None,  # served by install_docs from the local package, not from a CDN
        redoc_url=None,
        # Observability here is Prometheus and the JSON log (platform/http.py). FastAPI's own OpenTelemetry
        # bridge, on by default, asked the global OTel providers on every request (~10 µs) to find none.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.service = service
    app.state.cache = make_cache(settings.redis_url)
    app.state.db = Database(settings.database_url, pool_size=settings.db_pool_size,
                            max_overflow=settings.db_max_overflow, on_commit=invalidate_after_commit(app.state.cache))
    _add_read_caches(app)
    # The first /health that reaches the database checks its revision (serve may start without it).
    app.state.schema = SchemaCheck()
    app.state.metrics = CollectorRegistry(auto_describe=False)
    # One Redis round trip per request counts its window and reads its cache versions (the cache's batcher).
    app.state.ratelimiter = make_limiter(settings.redis_url, batcher=getattr(app.state.cache, "batcher", None))
    app.state.metrics.register(LimiterCollector(app.state.ratelimiter))
    app.state.metrics.register(StoreCollector(service=service, db=app.state.db, cache=app.state.cache,
                                              cert_files=settings.cert_paths()))
    install_error_handlers(app)
    install_docs(app)
    # First: routes are matched in order, and a balancer probes /health many times a second.
    probes = Probes(service, settings, _peers(service, settings),
                    sees_details=lambda request: _sees_health_details(request, settings))
    operator = service_router(probes)
    app.include_router(operator)
    for router in ROUTERS[service]:
        app.include_router(router)
    # The templates of answers given before routing (401, 429, 413), listed now rather than at the first one.
    app.state.route_templates = route_table([operator, *ROUTERS[service]])
    if service in WEB_SERVICES:
        install_web(app)  # `/` is Inicio (or the login page); the API documentation stays at /docs
    else:
        @app.get("/", include_in_schema=False)
        def root() -> RedirectResponse:
            return RedirectResponse("/docs")  # deposito and negocio serve no pages
    _add_middleware(app, service, settings, probes, operator)
    return app


def _add_read_caches(app: FastAPI) -> None:
    """Verified API keys and product answers, kept in this process under versions shared through Redis.

    Only with Redis: every writer (each replica, each service, the CLI, the scheduler) bumps the
    versions there, so a read that starts after a committed write never meets an older value.
    Without Redis no other process could tell this one what it changed (a key revoked from the
    CLI, a movement recorded by deposito), so nothing is kept and every read goes to the database.
    """
    shared = app.state.cache.kind == "redis"
    app.state.key_cache = ReadCache(app.state.cache, ttl=60, max_items=2_000, enabled=shared)
    app.state.product_cache = ReadCache(app.state.cache, ttl=60, max_items=10_000, enabled=shared)
    # Pages of GET /api/inventory (~25 kB each at limit=50): stock.list_reads.
    app.state.list_pages = PageCache(ReadCache(app.state.cache, ttl=60, max_items=500, enabled=shared))


def _add_middleware(app: FastAPI, service: str, settings: Settings, probes: Probes, operator: APIRouter) -> None:
    # Outermost first: security headers (on every answer, 400/413/429 included) > request id,
    # metrics and log > Host check > CORS (so 429s carry its headers and preflights cost nothing)
    # > rate limit, which answers 429 before any route or dependency touches the database
    # > caller gate, which answers 401 before any route reads the body
    # > the probes' front, which answers GET /health and /health/live without FastAPI's routing.
    app.add_middleware(ProbeFront, probes=probes, router=operator)
    # Alertmanager's webhook brings its own bearer token instead of an API key.
    own_checks = ({alerts_api.WEBHOOK_PATH: alerts_api.webhook_caller}
                  if alerts_api.router in ROUTERS[service] else {})
    # A kept GET /api/inventory/{sku} or page of GET /api/inventory is answered by the gate, on the event loop,
    # before the router.
    kept = ([inventory_api.kept_product, inventory_api.kept_list] if inventory_api.read_router in ROUTERS[service]
            else [])
    # A stock movement is recorded there too (PostgreSQL): stock.movement_on_loop.
    writes = [stock_api.movement_on_loop] if stock_api.write_router in ROUTERS[service] else []
    app.add_middleware(CallerGate, checks=own_checks, answers=kept, writes=writes)
    app.add_middleware(RateLimited, settings=settings, limiter=app.state.ratelimiter, reads=versions_wanted(kept),
                       version_key=getattr(app.state.cache, "version_key", str))
    if origins := csv_list(settings.cors_origins):
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "PATCH", "DELETE"],
                           allow_headers=["X-API-Key", "Content-Type", "Idempotency-Key", "X-Request-ID"],
                           expose_headers=["Retry-After", "X-Request-ID"])
    if settings.is_production:
        app.add_middleware(TrustedHosts, allowed_hosts=csv_list(settings.allowed_hosts))
    app.add_middleware(ObservedApp, service=service, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeaders, production=settings.is_production)
