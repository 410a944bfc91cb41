"""Authentication before the body: every /api request is identified from its headers alone.

FastAPI reads and parses a route's JSON body before it runs the route's dependencies, so a
check done only in `require` lets anybody make the server parse a megabyte of JSON. This pure
ASGI middleware runs first: no credential, or a wrong one, is answered 401 without reading a
byte of the body (the rate limiter outside counts every 401 against the client's IP). A valid
caller is left in `scope["state"]["caller"]` for `require`, which then only checks the role.

Most routes take an API key (`X-API-Key`); without one, the dashboard's session cookie is accepted
(a write must also carry the session's `X-CSRF-Token`). A route with a credential of its own (a webhook
with a shared secret) is given its check by exact path in `checks`: the check receives the
ASGI scope and the app, runs in a worker thread, and returns the caller or a failure reason.

A key verified moments ago is known on the event loop, without a thread: the "auth" version is read
in the round trip that counted the request (platform/ratelimit.py) and the kept principal compared
with it. A route that keeps its answers (`KeptAnswer`, e.g. GET /api/inventory/{sku}) is answered
here on a hit, role checked, before FastAPI's router (on PostgreSQL a miss too, read on the event loop:
stock/product_reads.py); so is a write it can run on the event loop (`WriteOnLoop`: a stock movement on
PostgreSQL, stock/movement_on_loop.py); anything else goes on to the route.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog
from anyio import to_thread
from prometheus_client import Counter
from sqlalchemy.exc import InterfaceError, OperationalError

from minimarket.accounts.keys import (AUTH_VERSION, LAST_SEEN_VERSION, LAST_USED_RESOLUTION, Principal,
                                      authenticate_or_reason, key_digest, key_prefix, touch_last_used)
from minimarket.accounts.sessions import CSRF_HEADER, SESSION_COOKIE, verified_session
from minimarket.db_async import UNAVAILABLE
from minimarket.platform.errors import database_unavailable_body, error_body
from minimarket.platform.read_cache import VERSIONS, note_changed, note_narrow, request_versions, token_of

log = structlog.get_logger("minimarket.auth")
# The database did not answer: through SQLAlchemy (a worker thread's check) or psycopg's async API (db_async).
DATABASE_DOWN = (OperationalError, InterfaceError, *UNAVAILABLE)
AUTH_FAILURES = Counter("minimarket_auth_failures_total", "/api requests refused by authentication or role",
                        ["reason"])
for _reason in ("missing", "invalid", "revoked", "forbidden", "csrf"):
    AUTH_FAILURES.labels(_reason)  # every reason's series exists (at 0) before the first failure

MESSAGES = {
    "missing": "Falta la clave de API: enviá el encabezado X-API-Key",
    "invalid": "Clave de API inválida o revocada",
    "revoked": "Clave de API inválida o revocada",
}


@dataclass(frozen=True)
class Caller:
    """Who is calling: `actor` for the audit, `principal_id` for idempotency scopes, `role` for `require`."""

    actor: str
    principal_id: str
    role: str | None = None  # None: a credential that is no API key and passes no role check


@dataclass(frozen=True)
class Refusal:
    reason: str  # a label of minimarket_auth_failures_total
    message: str  # Spanish, for the caller
    presented: str | None = None  # the credential as sent, only for its public prefix in the log
    status: int = 401  # 403: a valid session whose write lacks its CSRF token; 503: a route whose own
    # credential is not configured yet
    challenge: str = "ApiKey"  # WWW-Authenticate of a 401 (a webhook's check says "Bearer")
    code: str = "no_autenticado"


CallerCheck = Callable[[dict[str, Any], Any], "Caller | Refusal"]


def header(scope: dict[str, Any], name: bytes) -> str | None:
    return next((v.decode("latin-1") for k, v in scope.get("headers") or [] if k == name), None)


def api_key_caller(scope: dict[str, Any], app: Any) -> Caller | Refusal:  # noqa: ANN401
    """The X-API-Key check: one indexed lookup by the key's public prefix, constant-time hash compare.

    A verified key is kept (by its SHA-256, never the key) in `app.state.key_cache` under the
    "auth" version, which every revocation bumps after its commit: a revoked key is refused by
    the next request in every process sharing the cache. Refusals are never kept. Blocking (it
    reads the version itself): for worker threads; the gate checks a kept key on the event loop.
    """
    presented = header(scope, b"x-api-key")
    if not presented and session_token(scope):
        return session_caller(scope, app)
    if not presented:
        return Refusal("missing", MESSAGES["missing"])
    keys = getattr(app.state, "key_cache", None)
    digest = key_digest(presented)
    kept, token = keys.get(digest, (AUTH_VERSION,)) if keys is not None else (None, None)
    return verified_key(app, presented, digest, kept, token)


def verified_key(app: Any, presented: str, digest: str, kept: Any, token: tuple[str, ...] | None  # noqa: ANN401
                 ) -> Caller | Refusal:
    """The caller of a key, from what was kept under `token` (the "auth" version read before) or from
    the database, then kept under `token`; writes the key's last use when it is due."""
    db = app.state.db
    keys = getattr(app.state, "key_cache", None)
    if kept is not None:
        principal, touched = kept
        if time.monotonic() - touched > LAST_USED_RESOLUTION.total_seconds():
            _touch(db, principal.key_id)
            keys.put(digest, (principal, time.monotonic()), token)
        return _api_key_caller(principal)
    with db.lookup() as session:
        found = authenticate_or_reason(session, presented)
    if isinstance(found, str):
        return Refusal(found, MESSAGES[found], presented)
    principal, touch_due = found
    if touch_due:
        _touch(db, principal.key_id)
    if keys is not None:
        keys.put(digest, (principal, time.monotonic()), token)
    return _api_key_caller(principal)


def _api_key_caller(principal: Principal) -> Caller:
    return Caller(actor=principal.actor, principal_id=f"apikey:{principal.key_id}", role=principal.role)


def _touch(db: Any, key_id: int) -> None:  # noqa: ANN401
    with db.write() as session:
        touch_last_used(session, key_id)
        note_narrow(session.info)  # bookkeeping: only Configuración shows it
        note_changed(session.info, LAST_SEEN_VERSION)


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def session_token(scope: dict[str, Any]) -> str | None:
    """The dashboard's session token from the Cookie header, if any."""
    cookies = header(scope, b"cookie") or ""
    for part in cookies.split(";"):
        name, _, value = part.strip().partition("=")
        if name == SESSION_COOKIE and value:
            return value
    return None


def session_caller(scope: dict[str, Any], app: Any) -> Caller | Refusal:  # noqa: ANN401
    """The dashboard's own script calling /api with its session: the user's role; writes need X-CSRF-Token."""
    # Kept verified (with Redis) like the pages' session, under the "auth" version a logout bumps; the idle
    # timeout slides there too (one write every few minutes at most).
    user = verified_session(app.state.db, getattr(app.state, "session_cache", None), session_token(scope))
    if user is None:
        return Refusal("invalid", "La sesión venció o no es válida: ingresá de nuevo en /ingresar (o enviá X-API-Key)")
    if scope.get("method") not in _SAFE_METHODS and not user.csrf_matches(header(scope, CSRF_HEADER.lower().encode())):
        return Refusal("csrf", f"Falta o no coincide el encabezado {CSRF_HEADER} de la sesión; recargá la página",
                       status=403)
    return Caller(actor=user.actor, principal_id=f"user:{user.user_id}", role=user.role)


def auth_failed(scope: dict[str, Any], reason: str, presented: str | None) -> None:
    """Count and log a refusal: the key's public prefix at most, never the key."""
    AUTH_FAILURES.labels(reason).inc()
    peer = scope.get("client")  # the rate limiter resolved X-Forwarded-For from trusted proxies
    client_ip = scope.get("state", {}).get("client_ip") or (peer[0] if peer else None)
    log.warning("auth_failed", reason=reason, key_prefix=key_prefix(presented) if presented else None,
                client_ip=client_ip, path=scope.get("path"))


def _is_api(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


class KeptAnswer(Protocol):
    """A route whose answers this process keeps (e.g. stock.product_reads.KeptProduct): the gate serves
    a kept one (or one it reads on the event loop) before FastAPI's router; anything else goes on to the route."""

    def depends_on(self, scope: dict[str, Any]) -> tuple[str, ...] | None:
        """The cache versions this request's answer depends on; None: not this route."""

    async def serve(self, scope: dict[str, Any], send: Any, caller: Caller) -> bool:  # noqa: ANN401
        """Send the answer if `caller` may have it and it is kept (or read here); False: the route answers."""


class WriteOnLoop(Protocol):
    """A write this gate runs on the event loop (e.g. stock.movement_on_loop.MovementOnLoop) when it can do it
    exactly as its route; anything else goes on to the route, with its body."""

    def matches(self, scope: dict[str, Any]) -> bool:
        """Whether this request is for its route."""

    async def serve(self, scope: dict[str, Any], receive: Any, send: Any, caller: Caller) -> Any:  # noqa: ANN401
        """Do the write and answer (None), or return the `receive` the route reads the request's body from."""


class CallerGate:
    """Pure ASGI middleware: /api requests reach the app only with a valid credential."""

    def __init__(self, app, *, checks: Mapping[str, CallerCheck] | None = None,  # noqa: ANN001
                 answers: Sequence[KeptAnswer] = (), writes: Sequence[WriteOnLoop] = ()):
        self.app = app
        self.checks = dict(checks or {})
        self.answers = tuple(answers)
        self.writes = tuple(writes)
        self.wanted = versions_wanted(self.answers)

    async def __call__(self, scope, receive, send):  # noqa: ANN001
        if scope["type"] != "http" or not _is_api(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        check = self.checks.get(scope["path"])
        try:
            # The routes' own checks, sessions and keys not kept go to a worker thread (they may touch the
            # database), like FastAPI's sync dependencies; a kept key is checked on the event loop.
            outcome = await (to_thread.run_sync(check, scope, scope["app"]) if check is not None
                             else _key_caller(scope, scope["app"], self.wanted))
        except DATABASE_DOWN as exc:
            await _database_down(scope, send, exc)
            return
        if isinstance(outcome, Refusal):
            auth_failed(scope, outcome.reason, outcome.presented)
            if outcome.status == 403:
                await _answer(send, 403, error_body("sin_permiso", outcome.message), [])
                return
            headers = [(b"www-authenticate", outcome.challenge.encode())] if outcome.status == 401 else []
            await _answer(send, outcome.status, error_body(outcome.code, outcome.message), headers)
            return
        state = scope.setdefault("state", {})
        state["caller"] = outcome
        state["actor"] = outcome.actor
        write = next((w for w in self.writes if w.matches(scope)), None)
        if write is not None:
            try:
                receive = await write.serve(scope, receive, send, outcome)
            except DATABASE_DOWN as exc:  # a write on the event loop (db_async) found no database
                await _database_down(scope, send, exc)
                return
            if receive is None:
                return
        kept, _ = _kept_answer(scope, self.answers)
        try:
            if kept is not None and await kept.serve(scope, send, outcome):
                return
        except DATABASE_DOWN as exc:  # an answer read on the event loop (db_async) found no database
            await _database_down(scope, send, exc)
            return
        await self.app(scope, receive, send)


def versions_wanted(answers: Sequence[KeptAnswer]) -> Callable[[dict[str, Any]], tuple[str, ...]]:
    """What the rate limiter's round trip reads for the gate: "auth" for a request with an API key
    (while verified keys are kept), and the versions of a kept answer it may serve."""

    def wanted(scope: dict[str, Any]) -> tuple[str, ...]:
        keys = getattr(scope["app"].state, "key_cache", None)
        if keys is None or not keys.enabled or not _is_api(scope.get("path", "")) or not header(scope, b"x-api-key"):
            return ()
        return (AUTH_VERSION, *_kept_answer(scope, answers)[1])

    return wanted


_UNREAD = object()
_KEPT = "kept_answer"  # scope["state"]: the KeptAnswer that may serve this request, and its versions


def _kept_answer(scope: dict[str, Any], answers: Sequence[KeptAnswer]) -> tuple[KeptAnswer | None, tuple[str, ...]]:
    state = scope.setdefault("state", {})
    found = state.get(_KEPT)
    if found is None:
        found = (None, ())
        for kept in answers:
            names = kept.depends_on(scope)
            if names is not None:
                found = (kept, names)
                break
        state[_KEPT] = found
    return found


async def _key_caller(scope: dict[str, Any], app: Any,  # noqa: ANN401
                      wanted: Callable[[dict[str, Any]], tuple[str, ...]]) -> Caller | Refusal:
    presented = header(scope, b"x-api-key")
    keys = getattr(app.state, "key_cache", None)
    if not presented or keys is None or not keys.enabled:
        return await to_thread.run_sync(api_key_caller, scope, app)
    # One round trip for every version this request may need (none if the rate limiter read them).
    versions = scope.setdefault("state", {}).get(VERSIONS, _UNREAD)
    if versions is _UNREAD:
        versions = await request_versions(scope, app.state.cache, wanted(scope))
    token = token_of(versions, (AUTH_VERSION,))
    digest = key_digest(presented)
    kept = keys.kept(digest, token)
    if kept is not None and time.monotonic() - kept[1] <= LAST_USED_RESOLUTION.total_seconds():
        return _api_key_caller(kept[0])
    return await to_thread.run_sync(verified_key, app, presented, digest, kept, token)


async def _database_down(scope: dict[str, Any], send: Any, exc: Exception) -> None:  # noqa: ANN401
    log.error("database_unavailable", path=scope.get("path"), error=str(exc).splitlines()[0][:200])
    await _answer(send, 503, database_unavailable_body(), [(b"retry-after", b"5")])


async def _answer(send, status: int, payload: dict, headers: list[tuple[bytes, bytes]]) -> None:  # noqa: ANN001
    body = json.dumps(payload, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": body})
