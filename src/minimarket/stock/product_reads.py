"""One product's answer for GET /api/inventory/{sku}, kept in this process until it changes.

Kept under two versions: the product's own (`product:<SKU>`, bumped by every stock movement
of it, after the commit: stock.ledger) and the whole catalogue's (`catalog`, bumped by any
other write: prices, names, suppliers, categories). A barcode is answered from the database
each time (its product's SKU, and so its version, is only known after the read).
"""

from __future__ import annotations

from minimarket.db import Database
from minimarket.platform.read_cache import CATALOG, ReadCache, product_version
from minimarket.stock.inventory import product_detail_by_ref


def _key(ref: str) -> tuple[str, str]:
    stripped = ref.strip()
    sku = stripped.upper() if stripped.isascii() else stripped
    return "product:" + sku, sku


def kept_json(cache: ReadCache, ref: str) -> bytes | None:
    """The kept answer when it can be checked without I/O (see ReadCache.peek), else None."""
    key, sku = _key(ref)
    return cache.peek(key, (CATALOG, product_version(sku)))


def product_json(db: Database, cache: ReadCache, ref: str) -> bytes:
    """The JSON of ProductDetail for a SKU or barcode; NotFound when neither exists."""
    key, sku = _key(ref)
    kept, token = cache.get(key, (CATALOG, product_version(sku)))
    if kept is not None:
        return kept
    with db.lookup() as session:
        detail = product_detail_by_ref(session, ref)
    body = detail.model_dump_json().encode()
    if detail.sku == sku:
        cache.put(key, body, token)
    return body
