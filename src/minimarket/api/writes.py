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
    else:
        key, label = client_key_scope(ctx, client_key)
    route = getattr(request.scope.get("route"), "path", request.url.path)
    request_hash = request_fingerprint(request.method, route, dict(request.path_params), payload)
    outcome = run_once(
        request.app.state.db,
        key=key,
        request_hash=request_hash,
        operation=lambda session: (status_code, operation(session, client_key).model_dump(mode="json")),
        label=label,
    )
    headers = {"Idempotent-Replayed": "true"} if outcome.replayed else None
    return JSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)


def client_key_scope(ctx: Context, client_key: str | None) -> tuple[str | None, str | None]:
    """(the stored key, the key as the client knows it, for errors) of an Idempotency-Key; (None, None) without one."""
    if client_key is None:
        return None, None
    # Scoped per client so that two clients' keys never collide; hashed to a fixed length.
    return "k:" + fingerprint(ctx.principal_id or ctx.actor, client_key), f"La clave de idempotencia '{client_key}'"


def request_fingerprint(method: str, route: str, path_params: dict, payload: BaseModel | None) -> str:
    """What a retry must repeat to get the stored answer: the method, the route's template, its path
    parameters and the validated body."""
    body: Any = payload.model_dump(mode="json") if payload is not None else None
    return fingerprint(method, route, path_params, body)
