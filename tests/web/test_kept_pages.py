"""Kept pages (web/kept_pages.py) with two app processes on one database and one Redis: a page one of them
keeps is served as kept until a committed write in the other changes what it shows, and only to its own
session; without Redis nothing is kept."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from minimarket.accounts.audit import Context
from minimarket.accounts.keys import create_api_key
from minimarket.accounts.sessions import SESSION_COOKIE
from tests.integration.helpers import create_product
from tests.web.helpers import sign_in

PAGES = ["/", "/inventario", "/inventario?estado=bajo", "/inventario/YERBA-1", "/movimientos"]
# A change written behind the apps' back (no version bumped), and what each page shows once it is drawn again.
SNEAKED = {
    "/": ("UPDATE productos SET costo = 1000 WHERE sku = 'YERBA-1'", "$ 4.000,00"),  # 4 left × 1000
    "/inventario": ("UPDATE productos SET nombre = 'Yerba escondida' WHERE sku = 'YERBA-1'", "Yerba escondida"),
    "/inventario?estado=bajo": ("UPDATE productos SET nombre = 'Baja escondida' WHERE sku = 'BAJA-1'",
                                "Baja escondida"),
    "/inventario/YERBA-1": ("UPDATE ubicaciones SET nombre = 'Depósito escondido' WHERE codigo = 'DEP'",
                            "Depósito escondido"),
    "/movimientos": ("UPDATE ubicaciones SET nombre = 'Depósito escondido' WHERE codigo = 'DEP'",
                     "Depósito escondido"),
}


def _api_key(client: TestClient) -> dict[str, str]:
    with client.app.state.db.write() as session:
        _, plaintext = create_api_key(session, Context(actor="test"), name="test", role="admin")
    return {"X-API-Key": plaintext}


def _kept(client: TestClient, path: str) -> str:
    """The page once this process keeps it: a list is kept at its second view, and served at the third."""
    pages = [client.get(path) for _ in range(3)]
    assert all(p.status_code == 200 for p in pages), [p.status_code for p in pages]
    return pages[-1].text


def _sneak(client: TestClient, sql: str) -> None:
    with client.app.state.db.engine.begin() as conn:
        conn.execute(text(sql))


@pytest.mark.redis
def test_a_kept_page_is_served_until_a_write_in_another_process_changes_it(replicas) -> None:  # noqa: ANN001
    a, b = replicas
    key = _api_key(a)
    create_product(a, key, "YERBA-1", name="Yerba mate suave 1 kg", cost="1234.56", price="2000.00", min_stock=5,
                   initial_stock=100)
    create_product(a, key, "BAJA-1", name="Producto sin stock", cost="10", price="20", min_stock=2)
    sign_in(b.app, b, "admin", username="dueno")
    kept = {path: _kept(b, path) for path in PAGES}
    assert "YERBA-1" not in kept["/inventario?estado=bajo"] and _lagging_of(kept["/"]) == "1"  # YERBA-1
    for sql, _ in {sql for sql in SNEAKED.values()}:
        _sneak(b, sql)
    for path in PAGES:  # nothing bumped: the kept page (the proof that it was kept)
        again = b.get(path)
        assert again.text == kept[path], f"{path} was drawn again: it was not kept"
    assert again.headers["content-type"] == "text/html; charset=utf-8" and again.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in again.headers["content-security-policy"] and again.headers["x-request-id"]

    # A movement in the other process: YERBA-1 goes down to 4, below its minimum of 5.
    moved = a.post("/api/inventory/YERBA-1/movements", json={"type": "salida", "quantity": "96"}, headers=key)
    assert moved.status_code == 201, moved.text
    for path in PAGES:
        fresh = b.get(path).text
        assert SNEAKED[path][1] in fresh, f"{path} still shows what it kept before the movement"
    assert "YERBA-1" in b.get("/inventario?estado=bajo").text  # it entered the list: no version of its own there

    # The sneaked cost of 1000 took YERBA-1 out of the lagging prices; a price in the other process puts BAJA-1
    # below its target (10 × 1.35 × 1.21): Inicio's count follows at once.
    assert _lagging_of(_kept(b, "/")) == "0"
    lowered = a.patch("/api/inventory/BAJA-1", json={"price": "12.00"}, headers=key)
    assert lowered.status_code == 200, lowered.text
    assert _lagging_of(b.get("/").text) == "1"


def _lagging_of(html: str) -> str:
    return re.search(r'href="/precios/atrasados".*?kpi-value">([^<]+)<', html, re.S).group(1)


@pytest.mark.redis
def test_a_kept_page_is_only_its_sessions_and_ends_with_it(replicas) -> None:  # noqa: ANN001
    a, b = replicas
    csrf = sign_in(a.app, a, "admin", username="dueno")
    b.cookies.set(SESSION_COOKIE, a.cookies.get(SESSION_COOKIE))
    owners = _kept(b, "/movimientos")
    assert "dueno" in owners and csrf in owners and "Registrar movimiento" in owners
    reader = TestClient(b.app, follow_redirects=False)
    reader_csrf = sign_in(b.app, reader, "lectura", username="mirador")
    theirs = _kept(reader, "/movimientos")
    assert "mirador" in theirs and reader_csrf in theirs
    assert "dueno" not in theirs and csrf not in theirs and "Registrar movimiento" not in theirs
    assert a.post("/salir", data={"csrf": csrf}).status_code == 303  # the owner logs out on the other process
    gone = b.get("/movimientos")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/ingresar")
    assert _kept(reader, "/movimientos") == theirs  # the other session's page is still good


def test_without_redis_no_page_is_kept(app, client, shop) -> None:  # noqa: ANN001
    sign_in(app, client, "lectura")
    before = [client.get("/inventario").text for _ in range(3)][-1]
    assert not app.state.kept_pages.cache.enabled and not app.state.kept_pages.cache._items  # noqa: SLF001
    _sneak(client, "UPDATE productos SET nombre = 'Yerba escondida' WHERE sku = 'YERBA-1'")
    after = client.get("/inventario").text
    assert "Yerba escondida" in after and "Yerba escondida" not in before
