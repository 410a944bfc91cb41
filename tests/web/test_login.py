"""Login, sessions, lock-out, logout, and the session calling the same /api services (both backends)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from minimarket.accounts.models import AuditEntry, User
from minimarket.accounts.sessions import SESSION_COOKIE
from minimarket.accounts.users import FREE_ATTEMPTS
from minimarket.types import utcnow
from tests.integration.helpers import metric_value
from tests.web.helpers import PASSWORD, add_user, alerts, login_form_token, sign_in


def login(client, username: str, password: str, token: str | None = None):  # noqa: ANN001, ANN201
    token = token if token is not None else login_form_token(client)
    return client.post("/ingresar", data={"username": username, "password": password, "csrf": token,
                                          "siguiente": "/inventario"}, follow_redirects=False)


def test_login_page_has_its_labels_and_no_session_goes_there(client):
    first = client.get("/", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/ingresar?siguiente=%2F"
    page = client.get("/ingresar").text
    for text in ('<label for="username">Usuario</label>', '<label for="password">Contraseña</label>',
                 '<button type="submit" class="primary big">Ingresar</button>', 'lang="es-AR"'):
        assert text in page
    assert "/docs" not in first.headers["location"]
    assert client.get("/docs").status_code == 200  # the API documentation stays


def test_login_sets_a_safe_cookie_and_goes_where_it_was_asked(client, app):
    add_user(app, "encargado", "maria")
    answer = login(client, "  MARIA ", PASSWORD)
    assert answer.status_code == 303 and answer.headers["location"] == "/inventario"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(f"{SESSION_COOKIE}="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP on the LAN; behind TLS it is set (next test)
    assert client.get("/inventario").status_code == 200
    with app.state.db.read() as session:
        user = session.scalars(select(User).where(User.username == "maria")).one()
        assert user.last_login_at is not None and user.failed_logins == 0
        assert session.scalars(select(AuditEntry.action).where(AuditEntry.actor == "usuario:maria")).all() == [
            "session.login"]


def test_cookie_is_secure_behind_tls(app):
    from fastapi.testclient import TestClient

    add_user(app, "admin", "ana")
    with TestClient(app, base_url="https://tienda.lan") as tls:
        answer = login(tls, "ana", PASSWORD)
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith(f"{SESSION_COOKIE}="))
    assert "Secure" in cookie


def test_wrong_password_and_unknown_user_look_the_same(client, app):
    add_user(app, "admin", "ana")
    wrong, unknown = login(client, "ana", "no-es-esta-clave"), login(client, "nadie", "no-es-esta-clave")
    for answer in (wrong, unknown):
        assert answer.status_code == 401
        assert alerts(answer.text) == ["Usuario o contraseña incorrectos."]
        assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")


def test_login_without_its_csrf_token_is_refused(client, app):
    add_user(app, "admin", "ana")
    login_form_token(client)
    for token in ("", "inventado"):
        answer = login(client, "ana", PASSWORD, token=token)
        assert answer.status_code == 403 and "CSRF" in answer.text
    assert client.get("/", follow_redirects=False).status_code == 303


def test_lock_out_with_back_off_counted_in_a_metric(client, app):
    add_user(app, "admin", "ana")
    metrics = lambda: client.get("/metrics").text  # noqa: E731
    lockouts = metric_value(metrics(), "minimarket_login_lockouts_total")
    locked_refusals = metric_value(metrics(), "minimarket_login_failures_total", reason="locked")
    for attempt in range(1, FREE_ATTEMPTS):
        assert login(client, "ana", f"mala-{attempt}").status_code == 401
    locked = login(client, "ana", "mala-final")
    assert locked.status_code == 429 and "bloqueado" in alerts(locked.text)[0]
    assert metric_value(metrics(), "minimarket_login_lockouts_total") == lockouts + 1
    # While locked even the right password is refused, and counted.
    assert login(client, "ana", PASSWORD).status_code == 429
    assert metric_value(metrics(), "minimarket_login_failures_total", reason="locked") == locked_refusals + 1
    with app.state.db.write() as session:
        user = session.scalars(select(User).where(User.username == "ana")).one()
        first_lock = user.locked_until - utcnow()
        assert timedelta(seconds=20) < first_lock <= timedelta(seconds=30)
        user.locked_until = utcnow() - timedelta(seconds=1)  # the wait is over
    # One more failure after the wait locks for twice as long (back-off).
    assert login(client, "ana", "otra-mala").status_code == 429
    with app.state.db.write() as session:
        user = session.scalars(select(User).where(User.username == "ana")).one()
        assert timedelta(seconds=50) < user.locked_until - utcnow() <= timedelta(seconds=60)
        user.locked_until = utcnow() - timedelta(seconds=1)
    assert login(client, "ana", PASSWORD).status_code == 303
    with app.state.db.read() as session:
        assert session.scalars(select(User.failed_logins).where(User.username == "ana")).one() == 0


def test_a_disabled_user_cannot_log_in_and_loses_open_sessions(client, app):
    from minimarket.accounts.audit import Context
    from minimarket.accounts.users import disable_user

    sign_in(app, client, "deposito", "pepe")
    assert client.get("/movimientos/nuevo").status_code == 200
    with app.state.db.write() as session:
        disable_user(session, Context(actor="test"), username="pepe")
    assert client.get("/movimientos/nuevo", follow_redirects=False).status_code == 303
    client.cookies.clear()
    answer = login(client, "pepe", PASSWORD)
    assert answer.status_code == 401 and "deshabilitado" in alerts(answer.text)[0]


def test_logout_ends_the_session_for_good(client, app):
    csrf = sign_in(app, client, "lectura")
    token = client.cookies.get(SESSION_COOKIE)
    out = client.post("/salir", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/ingresar"
    client.cookies.set(SESSION_COOKIE, token)  # the old cookie, replayed
    assert client.get("/", follow_redirects=False).status_code == 303
    assert client.get("/api/locations").status_code == 401


def test_the_login_redirect_stays_on_this_site(client, app):
    add_user(app, "admin", "ana")
    for target in ("https://otro.sitio/", "//otro.sitio", "/\\otro.sitio"):
        token = login_form_token(client)
        answer = client.post("/ingresar", data={"username": "ana", "password": PASSWORD, "csrf": token,
                                                "siguiente": target}, follow_redirects=False)
        assert answer.headers["location"] == "/", target
        client.cookies.delete(SESSION_COOKIE)


def test_a_session_calls_the_api_with_its_role_and_csrf_for_writes(client, app, shop):
    csrf = sign_in(app, client, "deposito", "pepe")
    assert client.get("/api/inventory/YERBA-1").json()["stock"] == "100.000"
    body = {"type": "entrada", "quantity": "2"}
    refused = client.post("/api/inventory/YERBA-1/movements", json=body)
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["error"]["message"]
    done = client.post("/api/inventory/YERBA-1/movements", json=body, headers={"X-CSRF-Token": csrf})
    assert done.status_code == 201 and done.json()["actor"] == "usuario:pepe"
    forbidden = client.patch("/api/inventory/YERBA-1", json={"price": "1"}, headers={"X-CSRF-Token": csrf})
    assert forbidden.status_code == 403  # deposito may not change the catalog, by session or by key
    client.cookies.set(SESSION_COOKIE, "inventada")
    assert client.get("/api/locations").status_code == 401
