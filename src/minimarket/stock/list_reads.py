"""The answer of GET /api/inventory (one page of the product list) as JSON bytes, kept in this process until a
write changes it.

A page depends on what decides which products it lists and on what those products show:

* `catalog`: any write but a stock movement (names, prices, categories, suppliers, a new or deactivated
  product...) bumps it, and so every kept page;
* `product:<SKU>` of each product on the page: a movement of one of them (its stock, its low flag);
* `lists:low` / `lists:out` (stock.totals), for a page filtered by `low_stock` / `out_of_stock`: a movement
  that moved a product in or out of "bajo mínimo" / "sin stock".

Which products are on a page is only known after reading it, and the versions must be read *before* the
database (platform.read_cache). So a page is kept in two steps: the first read of a page only remembers the
versions it depends on (`hints`); the next one reads those versions first, then the database, and keeps the
answer if the page still depends on exactly those. A movement of a product not on the page, or not crossing a
filter's line, leaves the page kept.

A page is known by its raw query string, which only the route's own validation has accepted (it alone
remembers pages): the same string is the same filters. So the caller gate (`KeptList`, api/gate.py) serves a
kept page on the event loop before FastAPI's router, with the versions read in the request's one Redis round
trip, without parsing the query again; a miss reaches the route, which reads the database in a worker thread
and keeps the page under those same versions.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool
from typing_extensions import TypedDict

from minimarket.db import Database
from minimarket.platform.read_cache import (CATALOG, ReadCache, product_version, request_versions, send_kept_json,
                                            token_of)
from minimarket.stock.inventory import inventory_rows, item_fields
from minimarket.stock.schemas import ProductOut
from minimarket.stock.totals import LOW_LISTS, OUT_LISTS

if TYPE_CHECKING:
    from minimarket.api.gate import Caller

PATH = "/api/inventory"
KEPT_LIMIT = 100  # larger pages (up to 500 items, ~250 kB) are read each time: they are exports, not screens
# The route ignores parameters it does not know, so a query string can be long; a longer one is read each time
# (what this process remembers stays bounded: 1,000 hints and 500 pages of at most this much key).
MAX_QUERY_BYTES = 2_048
_PAGE = "list_page"  # scope["state"]: (key, versions) of this request's page, fixed at its first look
_LOOKED = "list_page_looked"  # scope["state"]: the gate already counted this request's hit or miss


class PageCache:
    """Kept pages (a ReadCache) and, per page, the versions it depended on when last read."""

    def __init__(self, cache: ReadCache, *, max_hints: int = 1_000):
        self.cache = cache
        self._hints: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._max_hints = max_hints
        self._lock = threading.Lock()

    def hint(self, key: str) -> tuple[str, ...] | None:
        return self._hints.get(key)  # a dict read is atomic; writers hold the lock

    def remember(self, key: str, names: tuple[str, ...]) -> None:
        with self._lock:
            self._hints[key] = names
            self._hints.move_to_end(key)
            while len(self._hints) > self._max_hints:
                self._hints.popitem(last=False)


# ProductPage's shape as plain dicts: the same fields, types and serializers as the models (so the same bytes;
# a test compares them), without building a model per item (0.8 instead of 1.2 ms of CPU for 50 items).
_Item = TypedDict("_Item", {name: field.annotation for name, field in ProductOut.model_fields.items()})  # type: ignore[misc]
_Page = TypedDict("_Page", {"items": list[_Item], "next_cursor": str | None})  # type: ignore[misc, valid-type]
_PAGE_ADAPTER = TypeAdapter(_Page)


def page_body(rows: Sequence[Mapping[str, Any]], next_cursor: str | None) -> bytes:
    """The JSON of ProductPage for these rows (typed columns from stock.inventory.inventory_rows, shaped by
    item_fields as the documented schema says), without validating each item again."""
    return _PAGE_ADAPTER.dump_json({"items": [item_fields(row) for row in rows], "next_cursor": next_cursor})


def _versions(filters: Mapping[str, Any], skus: Sequence[str]) -> tuple[str, ...]:
    names = [CATALOG]
    if filters.get("low_stock") is not None:
        names.append(LOW_LISTS)
    if filters.get("out_of_stock") is not None:
        names.append(OUT_LISTS)
    return (*names, *(product_version(sku) for sku in skus))


def _page_of(scope: dict[str, Any], pages: PageCache) -> tuple[str | None, tuple[str, ...] | None]:
    """This request's page key (its raw query string; None: too long to keep) and the versions its kept answer
    depends on (None: not known yet); fixed at the first look, so the gate and the route use the versions the
    request read."""
    state = scope.setdefault("state", {})
    found = state.get(_PAGE)
    if found is None:
        query = scope.get("query_string", b"")
        key = "list:" + query.decode("latin-1") if len(query) <= MAX_QUERY_BYTES else None
        found = state[_PAGE] = (key, None if key is None else pages.hint(key))
    return found


async def _kept(scope: dict[str, Any], state: Any, key: str, names: tuple[str, ...],  # noqa: ANN401
                *, count: bool) -> tuple[bytes | None, tuple | None]:
    """(the kept page or None, the token to keep a fresh one with; None: keep nothing). The token holds the
    names with their values: a page is served only under the very versions it was kept with."""
    values = token_of(await request_versions(scope, state.cache, names), names)
    token = None if values is None else (names, values)
    return state.list_pages.cache.kept(key, token, count=count), token


class KeptList:
    """GET /api/inventory served from a kept page by the caller gate (see api.gate.KeptAnswer).

    `route` is the route it stands for (its template names the metrics and the log line); `permission` the
    roles the route requires. Only a page the route has read under this exact query string is known."""

    def __init__(self, route: Any, permission: frozenset[str]):  # noqa: ANN401
        self.route = route
        self.permission = permission

    def depends_on(self, scope: dict[str, Any]) -> tuple[str, ...] | None:
        if scope["method"] != "GET" or scope["path"] != PATH:
            return None
        pages: PageCache = scope["app"].state.list_pages
        return _page_of(scope, pages)[1] if pages.cache.enabled else None

    async def serve(self, scope: dict[str, Any], send: Any, caller: "Caller") -> bool:  # noqa: ANN401
        if caller.role not in self.permission:
            return False  # the route refuses it (403, counted and logged there)
        state = scope["app"].state
        if not state.list_pages.cache.enabled:
            return False
        key, names = _page_of(scope, state.list_pages)
        if names is None:
            return False
        body, _ = await _kept(scope, state, key, names, count=True)
        scope["state"][_LOOKED] = True
        if body is None:
            return False
        await send_kept_json(scope, send, self.route, body)
        return True


async def page_answer(scope: dict[str, Any], state: Any, **filters: Any) -> bytes:  # noqa: ANN401
    """One page of GET /api/inventory (filters: those of stock.inventory.inventory_rows, as the route validated
    them from this request's query string) as JSON bytes: kept, or read in a worker thread and kept."""
    pages: PageCache = state.list_pages
    key = names = token = None
    if pages.cache.enabled and filters.get("limit", 50) <= KEPT_LIMIT:
        key, names = _page_of(scope, pages)
        if names is not None:
            body, token = await _kept(scope, state, key, names, count=not scope["state"].get(_LOOKED))
            if body is not None:
                return body
    return await run_in_threadpool(_from_database, state.db, pages, key, names, token, filters)


def _from_database(db: Database, pages: PageCache, key: str | None, names: tuple[str, ...] | None,
                   token: tuple | None, filters: dict[str, Any]) -> bytes:
    with db.lookup() as session:
        rows, next_cursor = inventory_rows(session, **filters)
    body = page_body(rows, next_cursor)
    if key is not None:
        read = _versions(filters, [row["sku"] for row in rows])
        if token is not None and read == names:
            pages.cache.put(key, body, token)
        else:
            pages.remember(key, read)
    return body
