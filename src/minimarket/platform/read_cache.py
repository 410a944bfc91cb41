"""Cached reads on the hot path, correct across processes: a value is served only while the
versions it was read under have not moved.

A reader fetches the versions of what a value depends on (one MGET on Redis, a dict lookup in
memory) *before* it reads the database, and keeps the value under them; a writer bumps them
*after* its commit (`invalidate_after_commit`, wired into `Database.write`). So a read that
starts after a write's answer went out never meets a value older than that write, in any
process sharing the cache. The values themselves stay in this process (no decoding, no
network for the value); only the versions are shared.

When the versions cannot be read (Redis down) nothing cached is served and everything kept is
dropped: reads go to the database until Redis answers again. Bumps that failed meanwhile are sent
first thing when it does (`RedisCache._flush_pending`); `ttl` bounds what a process that saw no
request during the outage could still hold.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from minimarket.platform.cache import Cache
from minimarket.platform.metrics import CACHE_HITS, CACHE_MISSES

# session.info keys a write unit of work uses to say what it changed (read by invalidate_after_commit).
BUMP = "cache_bump"  # set of version names to bump
NARROW = "cache_narrow"  # True: only BUMP changed; otherwise the whole catalogue ("catalog") is bumped too
CATALOG = "catalog"  # products, prices, categories, suppliers: anything a product's answer shows


def note_changed(info: dict, *names: str) -> None:
    """Record in a write session's `info` which versions its commit must bump (besides the catalogue's)."""
    info.setdefault(BUMP, set()).update(names)


def note_narrow(info: dict) -> None:
    """Said by the one who knows the whole unit of work (a route, a bookkeeping write): it changes
    nothing but what it noted with note_changed, so the catalogue's version is left alone."""
    info[NARROW] = True


def product_version(sku: str) -> str:
    return f"product:{sku}"


def invalidate_after_commit(cache: Cache) -> Callable[[dict], None]:
    """Database.on_commit: bump what the unit of work said it changed; by default, the whole catalogue."""

    def bump(info: dict) -> None:
        names = set(info.get(BUMP, ()))
        if not info.get(NARROW):
            names.add(CATALOG)
        cache.bump(sorted(names))

    return bump


class ReadCache:
    """A bounded LRU of values kept under the versions they were read with."""

    def __init__(self, cache: Cache, *, ttl: float, max_items: int = 20_000, enabled: bool = True):
        self.cache = cache
        self.ttl = ttl
        self.enabled = enabled
        self._max = max_items
        self._items: OrderedDict[str, tuple[float, tuple[str, ...], Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, depends_on: Iterable[str]) -> tuple[Any | None, tuple[str, ...] | None]:
        """(the kept value or None, the token to `put` a fresh value with; None: do not keep it)."""
        if not self.enabled:
            return None, None
        seen = self.cache.versions(list(depends_on))
        if seen is None:
            self.clear()
            CACHE_MISSES.labels(self.cache.kind).inc()
            return None, None
        token = tuple(seen)
        now = time.monotonic()
        with self._lock:
            item = self._items.get(key)
            if item is not None and item[0] > now and item[1] == token:
                self._items.move_to_end(key)
                CACHE_HITS.labels(self.cache.kind).inc()
                return item[2], token
        CACHE_MISSES.labels(self.cache.kind).inc()
        return None, token

    def peek(self, key: str, depends_on: Iterable[str]) -> Any | None:  # noqa: ANN401
        """The kept value when it can be checked without I/O (in-process versions), else None: lets the
        event loop answer a hit without a worker thread; with Redis the caller goes through `get`."""
        if not self.enabled or self.cache.kind != "memory":
            return None
        token = tuple(self.cache.versions(list(depends_on)) or ())
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] <= time.monotonic() or item[1] != token:
                return None
            self._items.move_to_end(key)
        CACHE_HITS.labels(self.cache.kind).inc()
        return item[2]

    def put(self, key: str, value: Any, token: tuple[str, ...] | None) -> None:  # noqa: ANN401
        if token is None or not self.enabled:
            return
        with self._lock:
            self._items[key] = (time.monotonic() + self.ttl, token, value)
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def drop(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
