"""Who is using the dashboard: the session cookie, role checks, CSRF on every form, login and logout."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from minimarket.api.gate import AUTH_FAILURES, auth_failed
from minimarket.accounts.audit import Context
from minimarket.accounts.keys import AUTH_VERSION, LAST_SEEN_VERSION
from minimarket.accounts.sessions import (SESSION_COOKIE, SessionUser, end_session, kept_session, session_id_of,
                                          start_session, verified_session)
from minimarket.accounts.users import LoginRefused, verify_login
from minimarket.ar.dates import format_datetime
from minimarket.db import Database
from minimarket.platform.read_cache import note_changed, note_narrow, request_versions, token_of

LOGIN_CSRF_COOKIE = "mm_csrf_ingreso"  # double-submit token of the login form (there is no session yet)

router = APIRouter(include_in_schema=False)


class LoginRequired(Exception):
    """No valid session: the page answers with a redirect to /ingresar."""


class PageForbidden(Exception):
    """The signed-in role may not use this page or action, or a form's CSRF token did not match."""

    def __init__(self, user: SessionUser, message: str):
        super().__init__(message)
        self.user = user
        self.message = message


def _db(request: Request) -> Database:
    return request.app.state.db


def session_user(request: Request) -> SessionUser | None:
    """The signed-in user (kept verified sessions: accounts.sessions.verified_session); slides the idle timeout."""
    return verified_session(_db(request), getattr(request.app.state, "session_cache", None),
                            request.cookies.get(SESSION_COOKIE))


async def kept_user(request: Request) -> SessionUser | None:
    """The signed-in user from the kept verified sessions, on the event loop: the "auth" version is read in the
    request's own Redis round trip (already read when the kept pages' front or the rate limiter asked for it),
    so a page drawn anew does not wait for Redis again from its worker thread. None: ask `session_user`."""
    kept = getattr(request.app.state, "session_cache", None)
    session_id = session_id_of(request.cookies.get(SESSION_COOKIE))
    if kept is None or session_id is None or not kept.enabled:
        return None
    versions = await request_versions(request.scope, request.app.state.cache, (AUTH_VERSION,))
    return kept_session(kept, session_id, token_of(versions, (AUTH_VERSION,)))


def _admitted(request: Request, user: SessionUser | None, roles: frozenset[str]) -> SessionUser:
    if user is None:
        raise LoginRequired()
    request.scope.setdefault("state", {})["actor"] = user.actor
    if user.role not in roles:  # counted and logged like a refused API call
        auth_failed(request.scope, "forbidden", None)
        raise PageForbidden(user, "Tu rol no puede usar esta página.")
    return user


def page_user(roles: frozenset[str]) -> Callable[..., Awaitable[SessionUser]]:
    """Dependency of a page: the signed-in user, whose role must be in `roles`."""

    async def dependency(request: Request) -> SessionUser:
        user = await kept_user(request) or await run_in_threadpool(session_user, request)
        return _admitted(request, user, roles)

    dependency.page_roles = roles  # read by web/kept_pages.py: a kept page is served only to these roles
    return dependency


def page_context(request: Request, user: SessionUser) -> Context:
    """The audit context of a page action: the user, the request id, the user as idempotency scope."""
    return Context(actor=user.actor, request_id=request.scope.get("state", {}).get("request_id"),
                   principal_id=f"user:{user.user_id}")


def form_user(roles: frozenset[str]) -> Callable[..., SessionUser]:
    """Dependency of a form POST: a signed-in user of `roles` whose form carries the session's CSRF token."""
    def dependency(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> SessionUser:
        user = _admitted(request, session_user(request), roles)
        if not user.csrf_matches(csrf):
            AUTH_FAILURES.labels("csrf").inc()
            raise PageForbidden(user, "El formulario venció o no vino de esta página (control CSRF). "
                                      "Volvé a la página y reintentá.")
        return user

    return dependency


def _secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.app.state.settings.is_production


def _safe_next(target: str | None) -> str:
    # Only local paths: an open redirect would let a link send a fresh login elsewhere.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(request: Request, *, error: str | None = None, username: str = "", status: int = 200,
                target: str = "/") -> HTMLResponse:
    from minimarket.web.templating import render

    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = render(request, "login.html", None, status_code=status, login_csrf=token, error=error,
                      username=username, target=target)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request),
                        path="/ingresar")
    return response


@router.get("/ingresar")
def login_form(request: Request, siguiente: str | None = None) -> Response:
    if session_user(request) is not None:
        return RedirectResponse(_safe_next(siguiente), status_code=303)
    return _login_page(request, target=_safe_next(siguiente))


def _refusal_message(refused: LoginRefused) -> str:
    if refused.reason == "locked":
        return (f"Demasiados intentos fallidos: el usuario está bloqueado hasta las "
                f"{format_datetime(refused.locked_until)[-5:]}. Esperá y reintentá, o pedí a un administrador "
                "que cambie la contraseña.")
    if refused.reason == "disabled":
        return "El usuario está deshabilitado; pedí a un administrador que lo habilite."
    return "Usuario o contraseña incorrectos."


@router.post("/ingresar")
def login(
    request: Request,
    username: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=500)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
    siguiente: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    target = _safe_next(siguiente)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not expected or not secrets.compare_digest(expected, csrf):
        return _login_page(request, error="El formulario venció (control CSRF): volvé a intentar.", status=403,
                           username=username, target=target)
    if not username.strip() or not password:
        return _login_page(request, error="Completá Usuario y Contraseña.", status=422, username=username,
                           target=target)
    client_ip = request.scope.get("state", {}).get("client_ip")
    with _db(request).write() as session:
        found = verify_login(session, username=username, password=password)
        token = start_session(session, user=found, ip=client_ip) if not isinstance(found, LoginRefused) else None
        note_narrow(session.info)  # a login changes no cached read but Configuración's last logins
        note_changed(session.info, LAST_SEEN_VERSION)
    if isinstance(found, LoginRefused):
        status = 429 if found.reason == "locked" else 401
        return _login_page(request, error=_refusal_message(found), status=status, username=username, target=target)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="lax", secure=_secure(request), path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/ingresar")
    return response


@router.post("/salir")
def logout(request: Request, user: SessionUser = Depends(form_user(frozenset({"admin", "encargado", "deposito",
                                                                              "lectura"})))) -> Response:
    with _db(request).write() as session:
        end_session(session, request.cookies.get(SESSION_COOKIE))
        note_narrow(session.info)  # only the session (its "auth" version): no catalogue read depends on it
    response = RedirectResponse("/ingresar", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def login_redirect(request: Request) -> RedirectResponse:
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/ingresar?siguiente={quote(path, safe='')}", status_code=303)
