"""Cached reads on the hot path, correct across processes: a value is served only while the
versions it was read under have not moved.

A reader fetches the versions of what a value depends on *before* it reads the database, and keeps
the value under them; a writer bumps them *after* its commit (`invalidate_after_commit`, wired into
`Database.write`), before its answer goes out. So a read that starts after a write's answer went
out never meets a value older than that write, in any process sharing the cache. The values
themselves stay in this process (no decoding, no network for the value); only the versions are
shared, in Redis.

A request reads its versions on the event loop (`request_versions`): in the rate limiter's round trip
when that one counts the request, else in a round trip of its own; both go in the open batch of
platform/redis_batch.py, which is sent after the request joined it. Code in a worker thread reads
them with `ReadCache.get` (one MGET).

When the versions cannot be read (Redis down) nothing cached is served and everything kept is
dropped: reads go to the database until Redis answers again. Bumps that failed meanwhile are sent
first thing when it does; `ttl` bounds what a process that saw no request during the outage could
still hold.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from minimarket.platform.cache import Cache
from minimarket.platform.metrics import CACHE_HITS, CACHE_MISSES
from minimarket.platform.redis_batch import BackendDown

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


def to_bump(info: dict) -> list[str]:
    """What a committed unit of work bumps: what it noted; by default, the whole catalogue too."""
    names = set(info.get(BUMP, ()))
    if not info.get(NARROW):
        names.add(CATALOG)
    return sorted(names)


def invalidate_after_commit(cache: Cache) -> Callable[[dict], None]:
    """Database.on_commit: bump what the unit of work said it changed; by default, the whole catalogue."""

    def bump(info: dict) -> None:
        cache.bump(to_bump(info))

    return bump


async def invalidate_on_loop(cache: Cache, info: dict) -> None:
    """`invalidate_after_commit` for a write committed on the event loop: the bumps go in the open Redis batch
    (platform/redis_batch.py) and this returns once Redis did them, so the caller's answer goes out after them,
    as on the sync path. Redis down: they are owed and go first when it answers (and meanwhile every process
    keeps nothing, as on the sync path). Without Redis (one process) the in-process versions move at once."""
    names = to_bump(info)
    batcher = getattr(cache, "batcher", None)
    if batcher is None:
        cache.bump(names)
        return
    try:
        await batcher.run(None, 0, (), bumps=[cache.version_key(name) for name in names])
    except BackendDown:
        pass  # handed back to the cache as owed (RedisBatcher._failed)


VERSIONS = "versions"  # scope["state"]: {name: version} read by this request; None: Redis did not answer


def seen_versions(scope: dict) -> dict[str, str] | None:
    """The versions this request has read so far ({} if none; None if Redis did not answer it)."""
    return scope.get("state", {}).get(VERSIONS, {})


async def request_versions(scope: dict, cache: Cache, names: tuple[str, ...]) -> dict[str, str] | None:
    """The versions `names` for this request, read on the event loop after the request started (or
    already read by the rate limiter's round trip); None when Redis does not answer."""
    state = scope.setdefault("state", {})
    seen = state.get(VERSIONS, {})
    if seen is None:
        return None
    missing = [name for name in names if name not in seen]
    if not missing:
        return seen
    batcher = getattr(cache, "batcher", None)
    if batcher is None:
        state[VERSIONS] = None
        return None
    try:
        _, _, values = await batcher.run(None, 0, [cache.version_key(name) for name in missing])
    except BackendDown:
        state[VERSIONS] = None
        return None
    seen = state[VERSIONS] = {**seen, **dict(zip(missing, values, strict=True))}
    return seen


class ReadCache:
    """A bounded LRU of values kept under the versions they were read with."""

    def __init__(self, cache: Cache, *, ttl: float, max_items: int = 20_000, enabled: bool = True):
        self.cache = cache
        self.ttl = ttl
        self.enabled = enabled
        self._max = max_items
        self._items: OrderedDict[str, tuple[float, tuple[str, ...], Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = CACHE_HITS.labels(cache.kind)
        self._misses = CACHE_MISSES.labels(cache.kind)
        batcher = getattr(cache, "batcher", None)
        if enabled and batcher is not None:
            batcher.failure_listeners.append(self.clear)  # Redis stopped answering: trust nothing kept

    def get(self, key: str, depends_on: Iterable[str]) -> tuple[Any | None, tuple[str, ...] | None]:
        """(the kept value or None, the token to `put` a fresh value with; None: do not keep it).

        Reads the versions itself (blocking: for worker threads); on the event loop use
        `request_versions` and `kept`."""
        if not self.enabled:
            return None, None
        seen = self.cache.versions(list(depends_on))
        if seen is None:
            self.clear()
            self._misses.inc()
            return None, None
        token = tuple(seen)
        return self.kept(token=token, key=key), token

    def kept(self, key: str, token: tuple[str, ...] | None, *, count: bool = True) -> Any | None:  # noqa: ANN401
        """The value kept under exactly these versions, or None (a miss); no I/O."""
        if token is None or not self.enabled:
            if count:
                self._misses.inc()
            return None
        with self._lock:
            item = self._items.get(key)
            if item is not None and item[1] == token and item[0] > time.monotonic():
                self._items.move_to_end(key)
                if count:
                    self._hits.inc()
                return item[2]
        if count:
            self._misses.inc()
        return None

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


_JSON = (b"content-type", b"application/json")


async def send_kept_json(scope: dict, send: Callable, route: object, body: bytes) -> None:
    """Send a kept JSON answer as its route's `Response(body, media_type="application/json")` would (same
    status, headers and bytes), naming the route in the scope so metrics and log use its template."""
    scope["route"] = route
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode()), _JSON]})
    await send({"type": "http.response.body", "body": body})


def token_of(versions: dict[str, str] | None, names: Iterable[str]) -> tuple[str, ...] | None:
    """The token (versions in `names` order) to keep or look up a value with; None: keep nothing."""
    if versions is None:
        return None
    try:
        return tuple(versions[name] for name in names)
    except KeyError:
        return None
