"""Verified sessions kept in the process (with Redis): a logout, a disabled user or a new password on one
replica ends the session on the other at once; without Redis nothing is kept."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from minimarket.accounts.audit import Context
from minimarket.accounts.keys import create_api_key
from minimarket.accounts.sessions import SESSION_COOKIE
from minimarket.accounts.users import disable_user, reset_password
from tests.web.helpers import sign_in


def _signed_in_on_both(a: TestClient, b: TestClient, username: str) -> str:
    csrf = sign_in(a.app, a, "encargado", username=username)
    b.cookies.set(SESSION_COOKIE, a.cookies.get(SESSION_COOKIE))
    for _ in range(2):  # the second request of b is answered from its kept session
        assert b.get("/movimientos").status_code == 200
    assert b.app.state.session_cache.enabled and b.app.state.session_cache._items  # noqa: SLF001
    return csrf


@pytest.mark.redis
def test_a_logout_on_one_replica_ends_the_session_on_the_other_at_once(replicas) -> None:  # noqa: ANN001
    a, b = replicas
    csrf = _signed_in_on_both(a, b, "cajera")
    out = a.post("/salir", data={"csrf": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/ingresar"
    refused = b.get("/movimientos")
    assert refused.status_code == 303 and refused.headers["location"].startswith("/ingresar")


@pytest.mark.redis
@pytest.mark.parametrize("change", ["disable", "reset_password"])
def test_a_disabled_user_or_new_password_ends_the_session_on_every_replica(replicas, change: str) -> None:  # noqa: ANN001
    a, b = replicas
    _signed_in_on_both(a, b, "repositor")
    with a.app.state.db.write() as session:  # as `minimarket user disable|reset-password` does it
        if change == "disable":
            disable_user(session, Context(actor="test"), username="repositor")
        else:
            reset_password(session, Context(actor="test"), username="repositor", password="otra-clave-larga-123")
    refused = b.get("/movimientos")
    assert refused.status_code == 303 and refused.headers["location"].startswith("/ingresar")


@pytest.mark.redis
def test_an_unrelated_write_keeps_the_session(replicas) -> None:  # noqa: ANN001
    a, b = replicas
    _signed_in_on_both(a, b, "deposito1")
    sign_in(a.app, TestClient(a.app), "admin", username="otro-admin")  # somebody else logs in
    assert b.get("/movimientos").status_code == 200


def test_without_redis_no_session_is_kept_and_a_logout_is_seen_at_once(app, client) -> None:  # noqa: ANN001
    assert not app.state.session_cache.enabled
    csrf = sign_in(app, client, "lectura")
    assert client.get("/movimientos", follow_redirects=False).status_code == 200
    assert not app.state.session_cache._items  # noqa: SLF001
    token = client.cookies.get(SESSION_COOKIE)
    assert client.post("/salir", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    client.cookies.set(SESSION_COOKIE, token)  # the old cookie, replayed
    assert client.get("/movimientos", follow_redirects=False).headers["location"].startswith("/ingresar")


@pytest.mark.redis
def test_the_dashboards_api_calls_use_the_kept_session_and_a_logout_ends_them_on_every_replica(replicas) -> None:  # noqa: ANN001
    """/api with the session cookie (the dashboard's own script): the session is checked from what the
    process kept, as for the pages, with no database read; a logout on another replica is seen at once."""
    a, b = replicas
    with a.app.state.db.write() as session:
        _, key = create_api_key(session, Context(actor="test"), name="alta", role="admin")
    assert a.post("/api/inventory", headers={"X-API-Key": key},
                  json={"sku": "MATE-SES", "name": "Mate de calabaza"}).status_code == 201
    csrf = _signed_in_on_both(a, b, "vendedor")
    for _ in range(2):  # the session, and the product's answer, kept by b
        assert b.get("/api/inventory/MATE-SES").status_code == 200
    checkouts: list[int] = []
    event.listen(b.app.state.db.engine, "checkout", lambda *_: checkouts.append(1))
    assert b.get("/api/inventory/MATE-SES").json()["sku"] == "MATE-SES"
    assert checkouts == [], "a kept session and a kept answer need no database connection"
    # A write still needs the session's CSRF token: refused before anything is read or written.
    assert b.post("/api/inventory/MATE-SES/movements", json={"type": "entrada", "quantity": 1}).status_code == 403
    assert a.post("/salir", data={"csrf": csrf}).status_code == 303
    refused = b.get("/api/inventory/MATE-SES")
    assert refused.status_code == 401, refused.text
