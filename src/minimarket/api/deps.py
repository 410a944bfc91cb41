"""FastAPI dependencies every router uses: the app's database, its environment settings, and the
authenticated, authorized caller (`require`)."""

from __future__ import annotations

from collections.abc import Callable

import structlog
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from prometheus_client import Counter

from minimarket.accounts.audit import Context
from minimarket.accounts.keys import authenticate_or_reason, key_prefix, touch_last_used
from minimarket.config import Settings
from minimarket.db import Database
from minimarket.errors import Forbidden, Unauthorized

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Clave de API (minimarket apikey create)")
log = structlog.get_logger("minimarket.auth")
AUTH_FAILURES = Counter("minimarket_auth_failures_total", "/api requests refused by authentication or role",
                        ["reason"])
for _reason in ("missing", "invalid", "revoked", "forbidden"):
    AUTH_FAILURES.labels(_reason)  # every reason's series exists (at 0) before the first failure


def _auth_failed(request: Request, reason: str, presented: str | None) -> None:
    """Count and log a refusal: the key's public prefix at most, never the key."""
    AUTH_FAILURES.labels(reason).inc()
    peer = request.scope.get("client")  # the rate limiter resolved X-Forwarded-For from trusted proxies
    client_ip = request.scope.get("state", {}).get("client_ip") or (peer[0] if peer else None)
    log.warning("auth_failed", reason=reason, key_prefix=key_prefix(presented) if presented else None,
                client_ip=client_ip, path=request.url.path)


async def get_db(request: Request) -> Database:  # async: no threadpool hop for a lookup
    return request.app.state.db


async def get_env_settings(request: Request) -> Settings:  # the environment's, not the store's (`ajustes`)
    return request.app.state.settings


def require(permission: frozenset[str]) -> Callable[..., Context]:
    """Dependency: a valid X-API-Key whose role is in `permission`; returns the caller's Context."""

    def dependency(
        request: Request,
        presented: str | None = Security(api_key_header),
        db: Database = Depends(get_db),
    ) -> Context:
        if not presented:
            _auth_failed(request, "missing", None)
            raise Unauthorized("Falta la clave de API: enviá el encabezado X-API-Key")
        with db.read() as session:
            found = authenticate_or_reason(session, presented)
        if isinstance(found, str):
            _auth_failed(request, found, presented)
            raise Unauthorized("Clave de API inválida o revocada")
        principal, touch_due = found
        request.scope.setdefault("state", {})["actor"] = principal.actor
        if principal.role not in permission:
            _auth_failed(request, "forbidden", presented)
            raise Forbidden(
                f"El rol '{principal.role}' no puede realizar esta operación; "
                f"se necesita uno de: {', '.join(sorted(permission))}"
            )
        if touch_due:
            with db.write() as session:
                touch_last_used(session, principal.key_id)
        return Context(actor=principal.actor, request_id=request.scope.get("state", {}).get("request_id"),
                       principal_id=f"apikey:{principal.key_id}")

    return dependency
