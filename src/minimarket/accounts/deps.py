"""FastAPI dependencies: the app's database and the authenticated, authorized caller."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from minimarket.accounts.audit import Context
from minimarket.accounts.keys import authenticate, touch_last_used
from minimarket.db import Database
from minimarket.errors import Forbidden, Unauthorized

api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="Clave de API (minimarket apikey create)")


async def get_db(request: Request) -> Database:  # async: no threadpool hop for a lookup
    return request.app.state.db


def require(permission: frozenset[str]) -> Callable[..., Context]:
    """Dependency: a valid X-API-Key whose role is in `permission`; returns the caller's Context."""

    def dependency(
        request: Request,
        presented: str | None = Security(api_key_header),
        db: Database = Depends(get_db),
    ) -> Context:
        if not presented:
            raise Unauthorized("Falta la clave de API: enviá el encabezado X-API-Key")
        with db.read() as session:
            found = authenticate(session, presented)
        if found is None:
            raise Unauthorized("Clave de API inválida o revocada")
        principal, touch_due = found
        request.scope.setdefault("state", {})["actor"] = principal.actor
        if principal.role not in permission:
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
