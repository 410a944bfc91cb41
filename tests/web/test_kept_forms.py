"""The forms and read pages kept besides Inicio, Inventario and Movimientos (web/kept_pages.py: KEPT), with two
app processes on one database and one Redis: each is answered without a database statement once kept, drawn
again after any committed write in the other process that could change it (a catalogue write for all; a stock
movement for those that show stock; a new store day for those that show "today"), never with another view's
form retry key, and only to a role its route admits."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text

from minimarket.accounts.audit import Context
from minimarket.accounts.keys import create_api_key
from tests.integration.helpers import create_product
from tests.web.helpers import a_purchase_order, form_key, order_supplier, sign_in
from tests.web.test_page_roles import a_draft_invoice, a_supplier

CATALOG_ONLY = ["/movimientos/nuevo", "/movimientos/nuevo?producto=YERBA-1", "/recuento", "/alertas", "/proveedores",
                "/facturas", "/facturas/nueva", "/facturas/{invoice}", "/precios", "/pedidos", "/reportes"]
WITH_STOCK = ["/proveedores/{supplier}", "/pedidos/nuevo", "/pedidos/nuevo?proveedor={order_supplier}",
              "/pedidos/{order}", "/pronostico"]
DAILY = ["/pedidos/nuevo", "/pedidos/nuevo?proveedor={order_supplier}", "/pronostico"]


@contextmanager
def _statements(client: TestClient) -> Iterator[list[str]]:
    """The SQL statements the client's app runs inside the block."""
    seen: list[str] = []
    engine = client.app.state.db.engine

    def note(conn, cursor, statement, *args) -> None:  # noqa: ANN001, ARG001
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def _queries(client: TestClient, path: str) -> int:
    """How many statements answering `path` took (0: the kept page)."""
    with _statements(client) as seen:
        answer = client.get(path)
    assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
    return len(seen)


def _kept(client: TestClient, path: str) -> str:
    """The page once kept (a session's first page verifies the session, so that view is not kept yet)."""
    views = [client.get(path) for _ in range(2)]
    assert all(v.status_code == 200 for v in views), (path, [v.status_code for v in views])
    assert _queries(client, path) == 0, f"{path} was not kept"
    return views[-1].text


@pytest.fixture
def store(replicas):  # noqa: ANN001, ANN201
    a, b = replicas
    with a.app.state.db.write() as session:
        _, plaintext = create_api_key(session, Context(actor="test"), name="test", role="admin")
    key = {"X-API-Key": plaintext}
    create_product(a, key, "YERBA-1", name="Yerba mate suave 1 kg", barcode="7790001000019", cost="1234.56",
                   price="2000.00", min_stock=5, initial_stock=100)
    supplier = a_supplier(a.app)
    ids = {"supplier": supplier, "invoice": a_draft_invoice(a.app, unmatched=False),
           "order_supplier": order_supplier(a.app), "order": a_purchase_order(a.app, sent=True, quantity=1)}
    with a.app.state.db.engine.begin() as conn:  # YERBA-1 from Distribuidora Norte, so its page lists it
        conn.execute(text("UPDATE productos SET proveedor_id = :s WHERE sku = 'YERBA-1'"), {"s": supplier})
    return a, b, key, {path: path.format(**ids) for path in {*CATALOG_ONLY, *WITH_STOCK}}


@pytest.mark.redis
def test_each_page_is_kept_until_a_catalogue_write_in_the_other_process(store) -> None:  # noqa: ANN001
    a, b, key, paths = store
    sign_in(b.app, b, "admin", username="dueno")
    for path in paths.values():
        _kept(b, path)
    with b.app.state.db.engine.begin() as conn:  # behind the apps' back: no version moves
        conn.execute(text("UPDATE ubicaciones SET nombre = 'Depósito escondido' WHERE codigo = 'DEP'"))
        conn.execute(text("UPDATE proveedores SET nombre = 'Norte escondido' WHERE nombre = 'Distribuidora Norte'"))
    assert "Depósito escondido" not in b.get(paths["/movimientos/nuevo"]).text  # kept
    assert "Norte escondido" not in b.get(paths["/proveedores"]).text

    changed = a.patch("/api/inventory/YERBA-1", json={"name": "Yerba mate 1 kg"}, headers=key)  # a catalogue write
    assert changed.status_code == 200, changed.text
    for path in paths.values():
        assert _queries(b, path) > 0, f"{path} was served as kept after a catalogue write"
    assert "Depósito escondido" in b.get(paths["/movimientos/nuevo"]).text
    assert "Depósito escondido" in b.get(paths["/recuento"]).text
    assert "Depósito escondido" in b.get(paths["/reportes"]).text
    for path in ("/proveedores", "/proveedores/{supplier}", "/facturas", "/facturas/{invoice}", "/facturas/nueva"):
        assert "Norte escondido" in b.get(paths[path]).text, path


@pytest.mark.redis
def test_a_movement_redraws_the_pages_that_show_stock_and_no_other(store) -> None:  # noqa: ANN001
    a, b, key, paths = store
    sign_in(b.app, b, "admin", username="dueno")
    page = _kept(b, paths["/proveedores/{supplier}"])
    assert "100" in re.search(r'data-label="Stock" class="num">([^<]+)<', page).group(1)
    for path in paths.values():
        _kept(b, path)
    moved = a.post("/api/inventory/YERBA-1/movements", json={"type": "salida", "quantity": "96"}, headers=key)
    assert moved.status_code == 201, moved.text
    for template, path in paths.items():
        if template in WITH_STOCK:
            assert _queries(b, path) > 0, f"{path} was served as kept after a movement"
        else:
            assert _queries(b, path) == 0, f"{path} shows no stock, yet a movement redrew it"
    page = b.get(paths["/proveedores/{supplier}"]).text
    assert re.search(r'data-label="Stock" class="num">([^<]+)<', page).group(1).startswith("4 ")


@pytest.mark.redis
def test_pages_that_show_today_are_kept_for_the_store_day_only(store, monkeypatch) -> None:  # noqa: ANN001
    from minimarket.web import kept_pages

    _, b, _, paths = store
    sign_in(b.app, b, "admin", username="dueno")
    for path in paths.values():
        _kept(b, path)
    today = kept_pages.store_day_start()
    monkeypatch.setattr(kept_pages, "store_day_start", lambda: today + timedelta(days=1))
    for template, path in paths.items():
        assert (_queries(b, path) > 0) == (template in DAILY), path


@pytest.mark.redis
def test_a_kept_form_never_repeats_a_retry_key(store) -> None:  # noqa: ANN001
    a, b, key, paths = store
    csrf = sign_in(b.app, b, "deposito", username="repositor")
    _kept(b, "/movimientos/nuevo")
    views = [b.get("/movimientos/nuevo").text for _ in range(4)]
    keys = [form_key(view) for view in views]
    assert len(set(keys)) == 4
    assert {view.replace(k, "") for view, k in zip(views, keys, strict=True)} == {views[0].replace(keys[0], "")}
    assert csrf in views[0]  # the session's own CSRF token: valid for the form

    form = {"csrf": csrf, "producto": "YERBA-1", "cantidad": "2", "tipo": "entrada", "ubicacion": "DEP"}
    for view_key in keys[:2]:  # two views of the form, the same movement typed twice: both are recorded
        done = b.post("/movimientos/nuevo", data={**form, "idempotency_key": view_key})
        assert done.status_code == 201, done.text
    again = b.post("/movimientos/nuevo", data={**form, "idempotency_key": keys[1]})  # a double tap: once
    assert again.status_code == 201
    assert float(a.get("/api/inventory/YERBA-1", headers=key).json()["stock"]) == 104

    batch = a.post("/api/prices/bulk", json={"filter": {"all_products": True}, "operation": "price_percent",
                                              "percent": "1"}, headers=key)  # /precios shows its undo form
    assert batch.status_code in (200, 201), batch.text
    admin_csrf = sign_in(b.app, b, "admin", username="dueno")
    for path in ("/precios", "/facturas/{invoice}", "/pedidos/nuevo?proveedor={order_supplier}", "/pedidos/{order}"):
        _kept(b, paths[path])
        shown = {form_key(b.get(paths[path]).text) for _ in range(3)}
        assert len(shown) == 3, path
        assert admin_csrf in b.get(paths[path]).text


@pytest.mark.redis
def test_a_kept_form_is_served_only_to_a_role_its_route_admits(store) -> None:  # noqa: ANN001
    _, b, _, paths = store
    sign_in(b.app, b, "deposito", username="repositor")
    _kept(b, "/recuento")
    reader = TestClient(b.app, follow_redirects=False)
    sign_in(b.app, reader, "lectura", username="mirador")
    for path in ("/recuento", "/movimientos/nuevo", "/facturas/nueva", "/pedidos/nuevo"):
        for _ in range(2):
            assert reader.get(paths[path]).status_code == 403, path


def test_every_kept_page_takes_the_roles_of_its_route(app) -> None:  # noqa: ANN001
    from minimarket.accounts.permissions import CATALOG_WRITE, READ, STOCK_WRITE
    from minimarket.web.kept_pages import KeptPages

    front = app.build_middleware_stack()
    while not isinstance(front, KeptPages):
        front = front.app
    roles = {page.template: r for page, _, r in front.exact.values()}
    roles.update({page.template: r for _, (page, _, r), _ in front.templated})
    assert roles["/movimientos/nuevo"] == roles["/recuento"] == STOCK_WRITE
    assert roles["/facturas/nueva"] == roles["/pedidos/nuevo"] == CATALOG_WRITE
    assert roles["/alertas"] == roles["/facturas/{invoice_id}"] == roles["/"] == READ


@pytest.mark.redis
def test_configuracion_is_kept_until_a_key_is_used_or_a_user_logs_in(store) -> None:  # noqa: ANN001
    from tests.web.helpers import PASSWORD, add_user, login_form_token

    a, b, _, _ = store
    sign_in(b.app, b, "admin", username="dueno")
    with a.app.state.db.write() as session:  # a catalogue write: b draws the page again
        _, used = create_api_key(session, Context(actor="test"), name="caja-7", role="lectura")
    name = add_user(a.app, "encargado", username="cajera")
    row = lambda html, text: re.search(rf"<tr><td[^>]*>{text}</td>.*?</tr>", html, re.S).group(0)  # noqa: E731
    page = _kept(b, "/configuracion")
    assert "—" in row(page, "caja-7") and "—" in row(page, name)  # never used, never logged in

    assert a.get("/api/inventory?limit=1", headers={"X-API-Key": used}).status_code == 200  # its first use
    assert _queries(b, "/configuracion") > 0
    assert "—" not in row(b.get("/configuracion").text, "caja-7").split("Último uso", 1)[1]
    assert _queries(b, "/configuracion") == 0

    visitor = TestClient(a.app, follow_redirects=False)
    logged = visitor.post("/ingresar", data={"username": name, "password": PASSWORD,
                                             "csrf": login_form_token(visitor)})
    assert logged.status_code == 303, logged.text
    assert _queries(b, "/configuracion") > 0
    assert "—" not in row(b.get("/configuracion").text, name).split("Último ingreso", 1)[1]


@pytest.mark.redis
def test_the_nightly_forecast_redraws_the_pages_that_show_it(store, tmp_path) -> None:  # noqa: ANN001
    from minimarket.ops.backup.scheduler import BackupScheduler, ScheduleConfig

    a, b, _, paths = store
    sign_in(b.app, b, "admin", username="dueno")
    for path in ("/pronostico", "/pedidos/nuevo?proveedor={order_supplier}"):
        _kept(b, paths[path])
    assert "Todavía no se calculó el pronóstico" in b.get("/pronostico").text
    config = ScheduleConfig(enabled=True, dest=tmp_path, include_config=False)
    BackupScheduler(a.app.state.settings.database_url, config, on_commit=a.app.state.db.on_commit)._recompute_forecast()
    for path in ("/pronostico", "/pedidos/nuevo?proveedor={order_supplier}"):
        assert _queries(b, paths[path]) > 0, f"{path} still shows the forecast from before the nightly run"
    assert "Cada uno usa el método que menos se equivocó" in b.get("/pronostico").text
