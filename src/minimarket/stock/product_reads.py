"""One product's answer for GET /api/inventory/{sku}, kept in this process until it changes.

Kept under two versions: the product's own (`product:<SKU>`, bumped by every stock movement
of it, after the commit: stock.ledger) and the whole catalogue's (`catalog`, bumped by any
other write: prices, names, suppliers, categories). A barcode is answered from the database
each time (its product's SKU, and so its version, is only known after the read).

A hit is answered by the caller gate (`KeptProduct`, api/gate.py) on the event loop, before
FastAPI's router, with the versions read in the request's one Redis round trip. On PostgreSQL a miss
is answered there too, through psycopg's async API (db_async): the misses that meet in one event-loop
turn are read in one statement (`MissBatch`: stock.inventory.PRODUCTS_BY_REFS, the route's
PRODUCT_BY_REF for several references), each request's rows picked out and turned into the answer by
the route's own function, kept under that request's versions (read before the database, so the kept
answer is never older than they say). On SQLite, and for a reference that names
no product (its 404), the request goes on to the route, which reads in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter
from starlette.concurrency import run_in_threadpool
from typing_extensions import TypedDict

from minimarket.db import Database
from minimarket.db_async import UNAVAILABLE, AsyncReads
from minimarket.errors import NotFound
from minimarket.platform.read_cache import (CATALOG, ReadCache, product_version, request_versions, send_kept_json,
                                            token_of)
from minimarket.stock.inventory import PRODUCT_BY_REF, PRODUCTS_BY_REFS, detail_fields, ref_params, rows_of_ref
from minimarket.stock.schemas import LocationStock, ProductDetail

if TYPE_CHECKING:
    from minimarket.api.gate import Caller

PREFIX = "/api/inventory/"
MAX_REF = 60  # the route's Path(max_length=60): longer ones go on to be refused there
_LOOKED = "product_cache_looked"  # scope["state"]: the gate already counted this request's hit or miss
MAX_BATCH = 64  # references in one statement; more in the same turn open another batch


class MissBatch:
    """The misses of one event-loop turn, read from PostgreSQL in one statement (PRODUCTS_BY_REFS).

    A request joins the batch still open (not sent yet), like the Redis batch (platform/redis_batch.py): it
    read its versions before it joins, so the rows it gets are never older than they say. The batch is sent
    at the end of the turn; each request gets the rows PRODUCT_BY_REF would have given it (`rows_of_ref`).
    One statement, one round trip and one pass through psycopg's async machinery for the ~10 misses of a turn
    under load, instead of one each. PostgreSQL down: every request of the batch gets the error (the gate's
    503); any other error of the shared statement: each request reads alone, as before batching."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._open: list[tuple[Mapping[str, str], asyncio.Future]] | None = None
        self._reading: set[asyncio.Task] = set()  # referenced until done (the loop keeps only weak references)

    async def rows(self, reads: AsyncReads, params: Mapping[str, str]) -> list[Mapping[str, Any]]:
        """PRODUCT_BY_REF's rows for one reference's `params` (ref_params), read with the turn's other misses."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._open, self._reading = loop, None, set()  # a new loop (a new TestClient): nothing of the old one
        batch = self._open
        if batch is None or len(batch) >= MAX_BATCH:
            batch = self._open = []
            loop.call_soon(self._close, reads, batch)
        future = loop.create_future()
        batch.append((params, future))
        found = await future
        if found is None:  # the shared statement failed on something else than the connection
            return await reads.mappings(PRODUCT_BY_REF, params)
        return found

    def _close(self, reads: AsyncReads, batch: list) -> None:
        if self._open is batch:
            self._open = None
        task = asyncio.ensure_future(self._read(reads, batch))
        self._reading.add(task)
        task.add_done_callback(self._reading.discard)

    @staticmethod
    async def _read(reads: AsyncReads, batch: list[tuple[Mapping[str, str], asyncio.Future]]) -> None:
        skus = list(dict.fromkeys(params["sku"] for params, _ in batch))
        refs = list(dict.fromkeys(params["ref"] for params, _ in batch))
        try:
            rows = await reads.mappings(PRODUCTS_BY_REFS, {"skus": skus, "refs": refs})
        except UNAVAILABLE as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except Exception:  # noqa: BLE001 - one reference's trouble must not fail the others: each reads alone
            rows = None
        except BaseException:
            for _, future in batch:
                future.cancel()
            raise
        for params, future in batch:
            if not future.done():
                future.set_result(None if rows is None else rows_of_ref(rows, params))


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
        self.misses = MissBatch()

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
                rows = await self.misses.rows(reads, ref_params(ref))
                body = _keep(cache, detail_fields(rows, ref), key, sku, token)
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
        rows = session.execute(PRODUCT_BY_REF, ref_params(ref)).mappings().all()
    return _keep(cache, detail_fields(rows, ref), key, sku, token)


# ProductDetail's shape as plain dicts: the same fields, types and serializers as the models (so the same bytes;
# a test compares them with the validated model), without building and validating a model per answer (a miss:
# ~14 -> ~9 us of CPU), as stock.list_reads does for a page.
_Location = TypedDict(  # type: ignore[misc]
    "_Location", {name: field.annotation for name, field in LocationStock.model_fields.items()})
_Detail = TypedDict(  # type: ignore[misc]
    "_Detail", {name: list[_Location] if name == "locations" else field.annotation  # type: ignore[valid-type]
                for name, field in ProductDetail.model_fields.items()})
_DETAIL = TypeAdapter(_Detail)


def detail_body(fields: dict[str, Any]) -> bytes:
    """The JSON of ProductDetail for stock.inventory.detail_fields's fields."""
    return _DETAIL.dump_json(fields)


def _keep(cache: ReadCache, fields: dict[str, Any], key: str, sku: str,
          token: tuple[str, ...] | None) -> bytes:
    """The answer's bytes, kept under `token` (the versions read before the database) when it was asked
    for by its SKU (a barcode's product, and so its version, is only known after the read)."""
    body = detail_body(fields)
    if fields["sku"] == sku:
        cache.put(key, body, token)
    return body
