"""The idempotent write: a route's write runs once per Idempotency-Key (or natural key) and
retries get the first answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from minimarket.accounts.audit import Context
from minimarket.platform.idempotency import check_client_key, fingerprint, run_once


def write_once(
    request: Request,
    ctx: Context,
    *,
    payload: BaseModel | None,
    operation: Callable[[Session, str | None], BaseModel],
    status_code: int = 201,
    natural_key: tuple[str, str] | None = None,
) -> JSONResponse:
    """Run a write once per Idempotency-Key (or natural key) and answer retries with the first result.

    `operation` gets the session and the client's key (to store on ledger rows).
    """
    client_key = check_client_key(request.headers.get("idempotency-key"))
    if natural_key is not None:
        key, label = natural_key
    elif client_key is not None:
        # Scoped per client so that two clients' keys never collide; hashed to a fixed length.
        key = "k:" + fingerprint(ctx.principal_id or ctx.actor, client_key)
        label = f"La clave de idempotencia '{client_key}'"
    else:
        key, label = None, None
    route = getattr(request.scope.get("route"), "path", request.url.path)
    body: Any = payload.model_dump(mode="json") if payload is not None else None
    request_hash = fingerprint(request.method, route, dict(request.path_params), body)
    outcome = run_once(
        request.app.state.db,
        key=key,
        request_hash=request_hash,
        operation=lambda session: (status_code, operation(session, client_key).model_dump(mode="json")),
        label=label,
    )
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return JSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)
