"""FastAPI dependencies every router uses: the app's database, its environment settings, and the
authenticated, authorized caller (`require`)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request, Security
from fastapi.security import APIKeyHeader
from starlette.concurrency import run_in_threadpool

from minimarket.accounts.audit import Context
from minimarket.api.gate import Caller, Refusal, api_key_caller, auth_failed
from minimarket.config import Settings
from minimarket.db import Database
from minimarket.errors import Forbidden, Unauthorized

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Clave de API (minimarket apikey create)")


async def get_db(request: Request) -> Database:  # async: no threadpool hop for a lookup
    return request.app.state.db


async def get_env_settings(request: Request) -> Settings:  # the environment's, not the store's (`ajustes`)
    return request.app.state.settings


def require(permission: frozenset[str]) -> Callable[..., Context]:
    """Dependency: the caller (identified by api.gate before the body was read) with a role in `permission`."""

    async def dependency(request: Request, presented: str | None = Security(api_key_header)) -> Context:
        state = request.scope.setdefault("state", {})
        caller = state.get("caller")
        if caller is None:  # a route outside /api: the gate did not run, so the key is checked here
            outcome = await run_in_threadpool(api_key_caller, request.scope, request.app)
            if isinstance(outcome, Refusal):
                auth_failed(request.scope, outcome.reason, outcome.presented)
                raise Unauthorized(outcome.message)
            caller = state["caller"] = outcome
            state["actor"] = caller.actor
        if caller.role not in permission:
            auth_failed(request.scope, "forbidden", presented)
            raise Forbidden(
                f"El rol '{caller.role}' no puede realizar esta operación; "
                f"se necesita uno de: {', '.join(sorted(permission))}"
            )
        return caller_context(request.scope, caller)

    return dependency


def caller_context(scope: dict, caller: Caller) -> Context:
    """The Context of a request's use case: who (the gate's caller) and which request (for the audit)."""
    return Context(actor=caller.actor, request_id=scope.get("state", {}).get("request_id"),
                   principal_id=caller.principal_id, role=caller.role)
