"""The product lists (`GET /api/inventory`) at scale: the trigram indexes behind `q=` keep a short pending
list, a page is cut on ids before anything is joined, and a kept page is never served after a
write that changed it (with Redis shared by two replicas, and with the read caches off), and the caller
gate answers a kept page before the router exactly as the route does."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import structlog.testing
from fastapi.testclient import TestClient
from sqlalchemy import event, text

from minimarket.api.gate import Caller
from minimarket.apps import create_app
from minimarket.search import caseless
from minimarket.stock import inventory, list_reads
from minimarket.stock.list_reads import page_body
from minimarket.stock.schemas import ProductPage
from tests.helpers import REDIS_URL, make_settings, need_redis
from tests.integration.helpers import create_product, metric_value
from tests.integration.test_rate_limit_redis import new_key



@pytest.mark.postgres
def test_trigram_indexes_keep_a_short_pending_list(app, backend: str) -> None:  # noqa: ANN001
    if backend != "postgresql":
        pytest.skip("trigram indexes exist on PostgreSQL only")
    with app.state.db.read() as session:
        options = dict(session.execute(text(
            "SELECT c.relname, array_to_string(c.reloptions, ',') FROM pg_class c "
            "WHERE c.relname LIKE 'ix_productos_%_trgm'")).all())
    assert options == {f"ix_productos_{column}_trgm": "gin_pending_list_limit=256"
                       for column in ("nombre", "sku", "marca")}


def _walk(client, admin, limit: int, **filters) -> list[str]:  # noqa: ANN001, ANN003
    """Every SKU of a list, page by page through next_cursor."""
    seen, cursor = [], None
    for _ in range(100):
        response = client.get("/api/inventory", headers=admin,
                              params={"limit": limit, **filters, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        page = [item["sku"] for item in response.json()["items"]]
        assert len(page) <= limit
        seen.extend(page)
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return seen
        assert page, "a page with a next_cursor cannot be empty"
    raise AssertionError("pagination does not terminate")


@pytest.fixture
def yerbas(client, admin) -> dict[str, list[str]]:  # noqa: ANN001
    """Eleven yerbas (every third low, every fourth without stock, one inactive) and two other products."""
    expected: dict[str, list[str]] = {"q": [], "low": [], "out": [], "low_q_cat": []}
    for i in (7, 3, 10, 0, 5, 9, 1, 4, 8, 2, 6):  # created out of SKU order: ids and SKUs differ in order
        sku = f"YER-{i:02d}"
        stock = 0 if i % 4 == 0 else 10
        minimum = 20 if i % 3 == 0 else 1
        category = "Infusiones" if i % 2 else "Almacén"
        create_product(client, admin, sku, name=f"Yerba mate {i}", category=category, min_stock=minimum,
                       **({"initial_stock": stock} if stock else {}))
        if i == 5:
            assert client.delete(f"/api/inventory/{sku}", headers=admin).status_code == 200
            continue
        expected["q"].append(sku)
        if stock <= minimum:
            expected["low"].append(sku)
            if category == "Infusiones":
                expected["low_q_cat"].append(sku)
        if stock <= 0:
            expected["out"].append(sku)
    create_product(client, admin, "AZU-1", name="Azúcar", min_stock=5)  # low and out of stock, not a yerba
    create_product(client, admin, "TE-1", name="Té verde", initial_stock=3)
    return {name: sorted(skus) for name, skus in expected.items()}


@pytest.mark.parametrize("max_candidates", [5_000, 3])
def test_every_page_of_a_search_or_a_stock_filter_in_order_without_gaps(
        client, admin, yerbas, monkeypatch, max_candidates: int) -> None:  # noqa: ANN001
    # 3: more candidates than that, and PostgreSQL reads the page walking the SKU index instead (the same pages)
    monkeypatch.setattr(inventory, "MAX_CANDIDATES", max_candidates)
    for limit in (1, 2, 3, 50):
        assert _walk(client, admin, limit, q="yerba") == yerbas["q"]
        assert _walk(client, admin, limit, low_stock="true") == sorted(yerbas["low"] + ["AZU-1"])
        assert _walk(client, admin, limit, out_of_stock="true") == sorted(yerbas["out"] + ["AZU-1"])
        assert _walk(client, admin, limit, q="yerba", low_stock="true", category="infusiones") == yerbas["low_q_cat"]
        assert _walk(client, admin, limit, q="YER-") == yerbas["q"]  # a SKU fragment
        assert _walk(client, admin, limit, q="ye") == yerbas["q"]  # two letters: no trigram, the same answer
    assert _walk(client, admin, 2, q="yerba", active="false") == ["YER-05"]


@pytest.mark.parametrize("max_candidates", [5_000, 3])
def test_numbered_pages_sorted_by_any_column_cover_the_list_once(app, client, admin, yerbas, monkeypatch,  # noqa: ANN001
                                                                 max_candidates: int) -> None:
    monkeypatch.setattr(inventory, "MAX_CANDIDATES", max_candidates)
    for sort, descending in [("sku", False), ("nombre", True), ("precio", False)]:
        for filters, expected in [({"q": "yerba"}, yerbas["q"]), ({"low_stock": True}, yerbas["low"] + ["AZU-1"])]:
            seen, page = [], 1
            with app.state.db.read() as session:
                while True:
                    items, more = inventory.inventory_page(session, sort=sort, descending=descending, page=page,
                                                           per_page=2, **filters)
                    seen.extend(item.sku for item in items)
                    if not more:
                        break
                    page += 1
                beyond, more = inventory.inventory_page(session, sort=sort, page=page + 3, per_page=2, **filters)
            assert sorted(seen) == sorted(expected) and len(seen) == len(expected), (sort, filters)
            if sort == "nombre":
                names = {f"YER-{i:02d}": f"Yerba mate {i}" for i in range(11)} | {"AZU-1": "Azúcar"}
                assert [names[s] for s in seen] == sorted((names[s] for s in seen), reverse=True)
            assert (beyond, more) == ([], False)


# --- serializing and keeping pages -----------------------------------------------------------------


def test_a_page_is_serialized_exactly_as_the_validated_schema(app, client, admin) -> None:  # noqa: ANN001
    create_product(client, admin, "YERBA-1", name="Yerba Mate Suave", brand="Playadito", barcode="7790387000016",
                   category="Almacén", supplier=None, cost="2500.5", price="4200", vat_rate="10.5", min_stock=2,
                   max_stock=40, unit="kg", initial_stock="10.25")
    create_product(client, admin, "SAL-1", name="Sal fina", unit="kg", min_stock="0.5")  # never moved, no brand
    for filters in [{}, {"q": "yerba"}, {"low_stock": True}, {"limit": 1}]:
        with app.state.db.read() as session:
            items, next_cursor = inventory.list_inventory(session, **filters)
            rows, row_cursor = inventory.inventory_rows(session, **filters)
        validated = ProductPage(items=items, next_cursor=next_cursor).model_dump_json().encode()
        assert page_body(rows, row_cursor) == validated
        response = client.get("/api/inventory", headers=admin, params=filters)
        assert response.content == validated and response.headers["content-type"] == "application/json"


class _Reads:
    """Counts the pages read from the database (a kept page is answered without reading one)."""

    def __init__(self, monkeypatch) -> None:  # noqa: ANN001
        self.count = 0
        real = list_reads.inventory_rows

        def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(list_reads, "inventory_rows", counted)


@pytest.fixture(params=["redis", "off"])
def pair(request, database_url: str) -> Iterator[tuple[TestClient, TestClient]]:  # noqa: ANN001
    """Two app instances on one database sharing one Redis (each keeps pages in its own memory), or one app
    without Redis (nothing kept) playing both."""
    if request.param == "redis":
        need_redis()
        settings = make_settings(database_url, redis_url=REDIS_URL)
        apps = [create_app("all", settings), create_app("all", settings)]
    else:
        apps = [create_app("all", make_settings(database_url))]
    clients = [TestClient(a) for a in apps]
    for c in clients:
        c.__enter__()
    yield clients[0], clients[-1]
    for c, a in zip(clients, apps, strict=True):
        c.__exit__(None, None, None)
        a.state.db.dispose()


def _page(client: TestClient, key: str, **params) -> list[tuple[str, str]]:  # noqa: ANN003
    response = client.get("/api/inventory", headers={"X-API-Key": key}, params={"limit": 2, **params})
    assert response.status_code == 200, response.text
    return [(item["sku"], item["stock"]) for item in response.json()["items"]]


def _move(client: TestClient, key: str, sku: str, quantity: int) -> None:
    kind = "entrada" if quantity > 0 else "salida"
    response = client.post(f"/api/inventory/{sku}/movements", headers={"X-API-Key": key},
                           json={"type": kind, "quantity": abs(quantity), "reason": "prueba"})
    assert response.status_code == 201, response.text


def _kept(reads: _Reads, read) -> None:  # noqa: ANN001
    """`read` is answered from a kept page at least once in a few tries (another test sharing this Redis may
    bump the catalogue's version meanwhile: that only drops pages)."""
    for _ in range(6):
        before = reads.count
        read()
        if reads.count == before:
            return
    raise AssertionError("the page was read from the database every time")


@pytest.mark.redis
def test_a_kept_page_is_never_served_after_a_write_that_changed_it(pair, monkeypatch) -> None:  # noqa: ANN001
    a, b = pair
    kept = a is not b
    key = new_key(a.app)
    reads = _Reads(monkeypatch)
    headers = {"X-API-Key": key}
    create_product(a, headers, "ARROZ-1", name="Arroz largo fino", min_stock=5, initial_stock=3)  # low
    create_product(a, headers, "ARROZ-2", name="Arroz doble carolina", min_stock=5, initial_stock=2)  # low
    create_product(a, headers, "ARROZ-3", name="Arroz integral", min_stock=5, initial_stock=20)
    create_product(a, headers, "ARROZ-4", name="Arroz parboil", min_stock=1, initial_stock=1)  # low
    create_product(a, headers, "FIDEO-1", name="Fideos moñitos", min_stock=1, initial_stock=9)

    low = lambda: _page(b, key, low_stock="true")  # noqa: E731
    search = lambda: _page(b, key, q="arroz")  # noqa: E731
    assert low() == [("ARROZ-1", "3.000"), ("ARROZ-2", "2.000")]
    assert search() == [("ARROZ-1", "3.000"), ("ARROZ-2", "2.000")]
    if kept:
        _kept(reads, low)
        _kept(reads, search)

    _move(a, key, "ARROZ-2", 1)  # on the page: its stock (still low)
    assert low() == [("ARROZ-1", "3.000"), ("ARROZ-2", "3.000")]
    assert search() == [("ARROZ-1", "3.000"), ("ARROZ-2", "3.000")]

    _move(a, key, "FIDEO-1", -1)  # on no page, in no list's membership: the pages stay kept
    if kept:
        _kept(reads, low)
        _kept(reads, search)
    assert low() == [("ARROZ-1", "3.000"), ("ARROZ-2", "3.000")]

    _move(a, key, "ARROZ-1", 10)  # leaves "bajo mínimo": ARROZ-4 moves up onto the first page
    assert low() == [("ARROZ-2", "3.000"), ("ARROZ-4", "1.000")]
    assert search() == [("ARROZ-1", "13.000"), ("ARROZ-2", "3.000")]
    if kept:
        _kept(reads, low)
    _move(a, key, "ARROZ-3", -18)  # 20 -> 2: enters "bajo mínimo" from off the page
    second = _page(b, key, low_stock="true", cursor=_cursor(b, key, low_stock="true"))
    assert second == [("ARROZ-4", "1.000")]
    assert low() == [("ARROZ-2", "3.000"), ("ARROZ-3", "2.000")]

    out = lambda: _page(b, key, out_of_stock="true")  # noqa: E731
    assert out() == []
    if kept:
        _kept(reads, out)
    _move(a, key, "ARROZ-4", -1)  # 1 -> 0: crosses zero
    assert out() == [("ARROZ-4", "0.000")]
    assert _page(b, key, out_of_stock="false", q="arroz") == [("ARROZ-1", "13.000"), ("ARROZ-2", "3.000")]

    renamed = a.patch("/api/inventory/FIDEO-1", headers=headers, json={"name": "Arroz con fideos"})
    assert renamed.status_code == 200, renamed.text  # any catalogue write: every page
    assert _page(b, key, q="arroz", limit=10)[0] == ("ARROZ-1", "13.000")
    assert [s for s, _ in _page(b, key, q="arroz", limit=10)] == ["ARROZ-1", "ARROZ-2", "ARROZ-3", "ARROZ-4",
                                                                  "FIDEO-1"]
    assert a.delete("/api/inventory/ARROZ-2", headers=headers).status_code == 200
    assert low() == [("ARROZ-3", "2.000"), ("ARROZ-4", "0.000")]
    lowered = a.patch("/api/inventory/ARROZ-3", headers=headers, json={"min_stock": 1})
    assert lowered.status_code == 200, lowered.text
    assert low() == [("ARROZ-4", "0.000")]


@pytest.mark.redis
def test_a_kept_page_is_answered_before_the_router_like_the_route_answers_it(replicas, monkeypatch) -> None:  # noqa: ANN001
    """The caller gate serves a kept page of GET /api/inventory: same status, headers and bytes as the route's
    answer, no database work, metrics and log under the route template; only a query string the route itself
    accepted, and only to a caller with the route's role."""
    from minimarket.stock import list_reads
    from minimarket.stock.inventory_api import kept_list

    a, _ = replicas
    routed: list[int] = []
    answer = list_reads.page_answer

    async def counted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        routed.append(1)
        return await answer(*args, **kwargs)

    monkeypatch.setattr(list_reads, "page_answer", counted)
    key = new_key(a.app, "lectura")
    for n in (1, 2, 3):
        create_product(a, {"X-API-Key": new_key(a.app)}, f"PAGINA-GATE-{n}", min_stock=5, initial_stock=n)
    path = "/api/inventory?q=pagina-gate&low_stock=true&limit=2"
    checkouts: list[int] = []
    event.listen(a.app.state.db.engine, "checkout", lambda *_: checkouts.append(1))
    first = a.get(path, headers={"X-API-Key": key})  # read by the route: its versions remembered
    second = a.get(path, headers={"X-API-Key": key})  # read by the route under those versions, and kept
    checkouts.clear()
    routed.clear()
    with structlog.testing.capture_logs() as logs:
        hit = a.get(path, headers={"X-API-Key": key})
    assert routed == [], "a kept page is answered before FastAPI's router"
    assert checkouts == [], "a kept page needs no database connection"
    assert hit.status_code == second.status_code == first.status_code == 200
    assert hit.content == second.content == first.content
    assert [item["sku"] for item in hit.json()["items"]] == ["PAGINA-GATE-1", "PAGINA-GATE-2"]
    assert sorted(hit.headers.keys()) == sorted(second.headers.keys())
    for name in ("content-type", "content-length", "cache-control", "content-security-policy"):
        assert hit.headers[name] == second.headers[name], name
    line = next(entry for entry in logs if entry["event"] == "request")
    assert line["endpoint"] == "/api/inventory" and line["status"] == 200, line
    assert line["actor"] == "apikey:rl-lectura", line
    assert metric_value(a.get("/metrics").text, "http_requests_total", service="all", method="GET",
                        endpoint="/api/inventory", status="200") >= 3
    # A query string too long to keep (the route ignores unknown parameters) is read by the route every time.
    routed.clear()
    padded = f"{path}&relleno={'x' * 2_100}"
    assert all(a.get(padded, headers={"X-API-Key": key}).content == hit.content for _ in range(3))
    assert routed == [1, 1, 1]
    # What the route refuses is never known to the gate, whatever pages are kept.
    for refused in ("limit=0", "limit=abc", "low_stock=quizas"):
        assert a.get(f"/api/inventory?{refused}", headers={"X-API-Key": key}).status_code == 422, refused
        assert a.get(f"/api/inventory?{refused}", headers={"X-API-Key": key}).status_code == 422, refused
    assert a.get(path, headers={"X-API-Key": "mm_00000000.mala"}).status_code == 401

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/api/inventory", "app": a.app, "state": {},
             "query_string": path.split("?", 1)[1].encode()}
    assert kept_list.depends_on(scope) is not None
    outsider = Caller(actor="webhook:alertmanager", principal_id="webhook", role=None)
    assert asyncio.run(kept_list.serve(scope, send, outsider)) is False
    assert sent == []
    for other, method in [("/api/inventory/", "GET"), ("/api/inventory", "POST"), ("/api/inventoryx", "GET")]:
        assert kept_list.depends_on({**scope, "path": other, "method": method, "state": {}}) is None, other


def _cursor(client: TestClient, key: str, **params) -> str:  # noqa: ANN003
    response = client.get("/api/inventory", headers={"X-API-Key": key}, params={"limit": 2, **params})
    return response.json()["next_cursor"]


def test_caseless_text_is_only_ascii_without_letters() -> None:
    assert caseless("7790580000011") and caseless(" 1/2 ") and caseless("-77.5%") and caseless("_")
    assert not any(caseless(t) for t in ("ALC-00", "x", "ñ", "1 kg", "\u0307", "²", "Ⅻ", "K"))


@pytest.mark.parametrize("q", ["500", "7790580000011", "779058", "1/2", "-77", "3", "%", "_", " 2 "])
def test_a_search_without_letters_finds_what_lowering_would(client, admin, q: str) -> None:  # noqa: ANN001
    products = [("GAS-500", "Gaseosa 500 ml", "Manaos", "7790580000011"), ("COD-7790", "Ñandú 1/2 kg", "3M", None),
                ("X-77", "İstanbul 2 pack", None, "7791234567898"), ("PCT-1", "Alcohol 70% 1_2", "Porta", None),
                ("OTRO-1", "Sal fina", "Celusal", None)]
    for sku, name, brand, barcode in products:
        create_product(client, admin, sku, name=name, brand=brand, barcode=barcode)
    term = q.strip().lower()
    expected = sorted(sku for sku, name, brand, barcode in products
                      if any(term in (v or "").lower() for v in (name, sku, brand)) or barcode == q.strip())
    assert _walk(client, admin, 2, q=q) == expected
