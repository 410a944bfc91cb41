"""Helpers for the dashboard's tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import html
import re

from minimarket.accounts.audit import Context
from minimarket.accounts.sessions import SESSION_COOKIE, load_session, start_session
from minimarket.accounts.users import create_user

PASSWORD = "contrasena-de-prueba"


def add_user(app, role: str, username: str | None = None, password: str = PASSWORD) -> str:  # noqa: ANN001
    with app.state.db.write() as session:
        return create_user(session, Context(actor="test"), username=username or f"u-{role}", role=role,
                           password=password).username


def sign_in(app, client, role: str, username: str | None = None) -> str:  # noqa: ANN001
    """A user of `role` with an open session whose cookie the client now carries; returns its CSRF token."""
    from minimarket.accounts.users import get_user

    name = username or f"u-{role}"
    with app.state.db.write() as session:
        try:
            user = get_user(session, name)
        except Exception:  # noqa: BLE001 - first sign-in of this user
            user = create_user(session, Context(actor="test"), username=name, role=role, password=PASSWORD)
        token = start_session(session, user=user, ip="127.0.0.1")
    client.cookies.set(SESSION_COOKIE, token)
    with app.state.db.read() as session:
        return load_session(session, token).csrf


def login_form_token(client) -> str:  # noqa: ANN001
    page = client.get("/ingresar")
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def form_key(html: str) -> str:
    return re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)


def alerts(page: str) -> list[str]:
    """The error messages a page shows, unescaped."""
    return [html.unescape(m) for m in re.findall(r'role="alert">([^<]+)<', page)]
