"""The answer of GET /api/inventory (one page of the product list) as JSON bytes, kept in this process until a
write changes it.

A page depends on what decides which products it lists and on what those products show:

* `catalog`: any write but a stock movement (names, prices, categories, suppliers, a new or deactivated
  product...) bumps it, and so every kept page;
* `product:<SKU>` of each product on the page: a movement of one of them (its stock, its low flag);
* `lists:low` / `lists:out` (stock.totals), for a page filtered by `low_stock` / `out_of_stock`: a movement
  that moved a product in or out of "bajo mínimo" / "sin stock".

Which products are on a page is only known after reading it, and the versions must be read *before* the
database (platform.read_cache). So a page is kept in two steps: the first read of a page only remembers its
SKUs (`hints`); the next one reads the versions of those products first, then the database, and keeps the
answer if the page still holds exactly those SKUs. A movement of a product not on the page, or not crossing a
filter's line, leaves the page kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import TypeAdapter
from typing_extensions import TypedDict

from minimarket.db import Database
from minimarket.platform.read_cache import CATALOG, ReadCache, product_version
from minimarket.stock.inventory import inventory_rows, item_fields
from minimarket.stock.schemas import ProductOut
from minimarket.stock.totals import LOW_LISTS, OUT_LISTS


KEPT_LIMIT = 100  # larger pages (up to 500 items, ~250 kB) are read each time: they are exports, not screens


class PageCache:
    """Kept pages (a ReadCache) and, per page, the SKUs it held when last read."""

    def __init__(self, cache: ReadCache, *, max_hints: int = 1_000):
        self.cache = cache
        self._hints: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._max_hints = max_hints
        self._lock = threading.Lock()

    def hint(self, key: str) -> tuple[str, ...] | None:
        with self._lock:
            return self._hints.get(key)

    def remember(self, key: str, skus: tuple[str, ...]) -> None:
        with self._lock:
            self._hints[key] = skus
            self._hints.move_to_end(key)
            while len(self._hints) > self._max_hints:
                self._hints.popitem(last=False)


# ProductPage's shape as plain dicts: the same fields, types and serializers as the models (so the same bytes;
# a test compares them), without building a model per item (0.8 instead of 1.2 ms of CPU for 50 items).
_Item = TypedDict("_Item", {name: field.annotation for name, field in ProductOut.model_fields.items()})  # type: ignore[misc]
_Page = TypedDict("_Page", {"items": list[_Item], "next_cursor": str | None})  # type: ignore[misc, valid-type]
_PAGE = TypeAdapter(_Page)


def page_body(rows: Sequence[Mapping[str, Any]], next_cursor: str | None) -> bytes:
    """The JSON of ProductPage for these rows (typed columns from stock.inventory.inventory_rows, shaped by
    item_fields as the documented schema says), without validating each item again."""
    return _PAGE.dump_json({"items": [item_fields(row) for row in rows], "next_cursor": next_cursor})


def _versions(filters: Mapping[str, Any], skus: Sequence[str]) -> list[str]:
    names = [CATALOG]
    if filters.get("low_stock") is not None:
        names.append(LOW_LISTS)
    if filters.get("out_of_stock") is not None:
        names.append(OUT_LISTS)
    return names + [product_version(sku) for sku in skus]


def page_json(db: Database, pages: PageCache, **filters: Any) -> bytes:  # noqa: ANN401
    """One page of GET /api/inventory (filters: those of stock.inventory.inventory_rows) as JSON bytes."""
    key = "list:" + repr(sorted(filters.items()))
    token = None
    keep = pages.cache.enabled and filters.get("limit", 50) <= KEPT_LIMIT
    skus = pages.hint(key) if keep else None
    if skus is not None:
        kept, token = pages.cache.get(key, _versions(filters, skus))
        if kept is not None and kept[0] == skus:
            return kept[1]
    with db.lookup() as session:
        rows, next_cursor = inventory_rows(session, **filters)
    body = page_body(rows, next_cursor)
    read = tuple(row["sku"] for row in rows)
    if token is not None and read == skus:
        pages.cache.put(key, (read, body), token)
    elif keep:
        pages.remember(key, read)
    return body
