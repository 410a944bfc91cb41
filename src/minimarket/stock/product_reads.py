"""One product's answer for GET /api/inventory/{sku}, kept in this process until it changes.

Kept under two versions: the product's own (`product:<SKU>`, bumped by every stock movement
of it, after the commit: stock.ledger) and the whole catalogue's (`catalog`, bumped by any
other write: prices, names, suppliers, categories). A barcode is answered from the database
each time (its product's SKU, and so its version, is only known after the read).

A hit is answered by the caller gate (`KeptProduct`, api/gate.py) on the event loop, before
FastAPI's router, with the versions read in the request's one Redis round trip. On PostgreSQL a miss
is answered there too: the route's own statement (stock.inventory.PRODUCT_BY_REF) through psycopg's
async API (db_async), the same rows-to-answer function, kept under those same versions (read before the
database, so the kept answer is never older than they say). On SQLite, and for a reference that names
no product (its 404), the request goes on to the route, which reads in a worker thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool

from minimarket.db import Database
from minimarket.db_async import AsyncReads
from minimarket.errors import NotFound
from minimarket.platform.read_cache import (CATALOG, ReadCache, product_version, request_versions, send_kept_json,
                                            token_of)
from minimarket.stock.inventory import PRODUCT_BY_REF, detail_from_rows, product_detail_by_ref, ref_params
from minimarket.stock.schemas import ProductDetail

if TYPE_CHECKING:
    from minimarket.api.gate import Caller

PREFIX = "/api/inventory/"
MAX_REF = 60  # the route's Path(max_length=60): longer ones go on to be refused there
_LOOKED = "product_cache_looked"  # scope["state"]: the gate already counted this request's hit or miss


def _key(ref: str) -> tuple[str, str]:
    sku = ref_params(ref)["sku"]  # the SKU as stored, by the statement's own rule
    return "product:" + sku, sku


def _depends_on(sku: str) -> tuple[str, str]:
    return CATALOG, product_version(sku)


class KeptProduct:
    """GET /api/inventory/{sku} served by the caller gate (see api.gate.KeptAnswer): the kept answer, or on
    PostgreSQL one read on the event loop.

    `route` is the route it stands for (scope["route"]: the metrics and the log name its template, as
    for any answer of the route); `permission` the roles the route requires."""

    def __init__(self, route: Any, permission: frozenset[str]):  # noqa: ANN401
        self.route = route
        self.permission = permission

    def depends_on(self, scope: dict[str, Any]) -> tuple[str, ...] | None:
        path = scope["path"]
        if scope["method"] != "GET" or not path.startswith(PREFIX):
            return None
        ref = path[len(PREFIX):]
        if not ref or "/" in ref or len(ref) > MAX_REF:
            return None
        return _depends_on(_key(ref)[1])

    async def serve(self, scope: dict[str, Any], send: Any, caller: "Caller") -> bool:  # noqa: ANN401
        if caller.role not in self.permission:
            return False  # the route refuses it (403, counted and logged there)
        state = scope["app"].state
        cache: ReadCache = state.product_cache
        reads: AsyncReads | None = state.db.aio  # PostgreSQL: a miss is read here too; SQLite: by the route
        if not cache.enabled and reads is None:
            return False
        ref = scope["path"][len(PREFIX):]
        key, sku = _key(ref)
        body = token = None
        if cache.enabled:
            names = _depends_on(sku)
            token = token_of(await request_versions(scope, state.cache, names), names)
            body = cache.kept(key, token)
            scope["state"][_LOOKED] = True
        if body is None:
            if reads is None:
                return False
            try:
                rows = await reads.mappings(PRODUCT_BY_REF, ref_params(ref))
                body = _keep(cache, detail_from_rows(rows, ref), key, sku, token)
            except NotFound:
                return False  # the route answers it: its 404, from the same statement
        await send_kept_json(scope, send, self.route, body)
        return True


async def product_answer(scope: dict[str, Any], state: Any, ref: str) -> bytes:  # noqa: ANN401
    """The JSON of ProductDetail for a SKU or barcode (kept, or read in a worker thread and kept);
    NotFound when neither exists."""
    cache: ReadCache = state.product_cache
    key, sku = _key(ref)
    token = None
    if cache.enabled:
        names = _depends_on(sku)
        token = token_of(await request_versions(scope, state.cache, names), names)
        kept = cache.kept(key, token, count=not scope.get("state", {}).get(_LOOKED))
        if kept is not None:
            return kept
    return await run_in_threadpool(_from_database, state.db, cache, ref, key, sku, token)


def _from_database(db: Database, cache: ReadCache, ref: str, key: str, sku: str,
                   token: tuple[str, ...] | None) -> bytes:
    with db.lookup() as session:
        detail = product_detail_by_ref(session, ref)
    return _keep(cache, detail, key, sku, token)


def _keep(cache: ReadCache, detail: ProductDetail, key: str, sku: str, token: tuple[str, ...] | None) -> bytes:
    """The answer's bytes, kept under `token` (the versions read before the database) when it was asked
    for by its SKU (a barcode's product, and so its version, is only known after the read)."""
    body = detail.model_dump_json().encode()
    if detail.sku == sku:
        cache.put(key, body, token)
    return body
