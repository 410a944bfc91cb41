"""Cache: Redis when REDIS_URL is set (shared by replicas), in-process otherwise.

Besides values with a TTL, the cache keeps *versions*: counters that writers bump after they
commit (`bump`) and that readers fetch before they read the database (`versions`). A value kept
under the versions it was read with is still good exactly while those versions did not move, in
every process that shares the cache (see platform/read_cache.py).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import OrderedDict
from typing import Any, Protocol

import redis

from minimarket.platform.metrics import CACHE_HITS, CACHE_MISSES
from minimarket.platform.redis_batch import RedisBatcher


def _count(kind: str, value: Any | None) -> Any | None:
    (CACHE_MISSES if value is None else CACHE_HITS).labels(kind).inc()
    return value


class Cache(Protocol):
    kind: str

    def get_json(self, key: str) -> Any | None: ...
    def set_json(self, key: str, value: Any, ttl: int) -> None: ...
    def delete(self, *keys: str) -> None: ...
    def ping(self) -> None: ...
    def versions(self, names: list[str]) -> list[str] | None: ...
    def bump(self, names: list[str]) -> None: ...


class MemoryCache:
    """Bounded LRU with expiry; enough for one process on one store PC."""

    kind = "memory"

    def __init__(self, max_items: int = 2048):
        self._items: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._versions: dict[str, int] = {}
        self._lock = threading.Lock()
        self._max = max_items

    def get_json(self, key: str) -> Any | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None and item[0] < time.monotonic():
                del self._items[key]
                item = None
            if item is None:
                return _count(self.kind, None)
            self._items.move_to_end(key)
        return _count(self.kind, json.loads(item[1]))

    def set_json(self, key: str, value: Any, ttl: int) -> None:
        raw = json.dumps(value, default=str)
        with self._lock:
            self._items[key] = (time.monotonic() + ttl, raw)
            self._items.move_to_end(key)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def delete(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._items.pop(key, None)

    def ping(self) -> None:
        return None

    def versions(self, names: list[str]) -> list[str] | None:
        with self._lock:
            return [str(self._versions.get(name, 0)) for name in names]

    def bump(self, names: list[str]) -> None:
        with self._lock:
            for name in names:
                self._versions[name] = self._versions.get(name, 0) + 1


class RedisCache:
    kind = "redis"

    # Bump each version; one that does not exist yet starts at a random number (like a first read does),
    # never at 1, so a Redis that restarted empty cannot hand out a version some process kept before.
    _BUMP = """
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('INCR', KEYS[i]) else redis.call('SET', KEYS[i], ARGV[1]) end
end
return #KEYS
"""

    def __init__(self, url: str, prefix: str = "minimarket:"):
        self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._prefix = prefix
        self._bump_script = self._client.register_script(self._BUMP)
        # Bumps that failed while Redis was down: sent before anything is read from it again.
        self._pending: set[str] = set()
        self._pending_lock = threading.Lock()
        # The event loop's way in (requests): versions read in shared batches, owed bumps sent first.
        self.batcher = RedisBatcher(url, owed=self._take_pending, give_back=self._give_back)

    def version_key(self, name: str) -> str:
        return f"{self._prefix}v:{name}"

    def get_json(self, key: str) -> Any | None:
        try:
            raw = self._client.get(self._prefix + key)
        except redis.RedisError:
            return _count(self.kind, None)  # a cache outage slows reads down; it must not fail them
        return _count(self.kind, None if raw is None else json.loads(raw))

    def set_json(self, key: str, value: Any, ttl: int) -> None:
        try:
            self._client.set(self._prefix + key, json.dumps(value, default=str), ex=ttl)
        except redis.RedisError:
            pass

    def delete(self, *keys: str) -> None:
        if not keys:
            return
        try:
            self._client.delete(*(self._prefix + k for k in keys))
        except redis.RedisError:
            pass

    def ping(self) -> None:
        """Redis answers; the bumps owed since an outage go out with the first answer (as /health probes)."""
        self._client.ping()
        self._flush_pending()

    def versions(self, names: list[str]) -> list[str] | None:
        """The current versions, or None when Redis does not answer (nothing cached may be trusted)."""
        keys = [self.version_key(name) for name in names]
        try:
            self._flush_pending()
            values = self._client.mget(keys)
            if any(v is None for v in values):
                # A first use, or a Redis that restarted empty: start at a random number, so that a value
                # kept before the restart can never meet its old version again.
                for key, value in zip(keys, values, strict=True):
                    if value is None:
                        self._client.set(key, secrets.randbits(62), nx=True)
                values = self._client.mget(keys)
        except redis.RedisError:
            return None
        return [v.decode() if isinstance(v, bytes) else str(v) for v in values]

    def bump(self, names: list[str]) -> None:
        if not names:
            return
        try:
            self._flush_pending()
            self._bump_script(keys=[self.version_key(name) for name in names], args=[secrets.randbits(62)])
        except redis.RedisError:
            with self._pending_lock:
                self._pending.update(names)

    @property
    def owes_bumps(self) -> bool:
        return bool(self._pending)

    def _take_pending(self) -> list[str]:
        """The owed bumps as keys, handed to the next batch (RedisBatcher sends them before its reads)."""
        if not self._pending:
            return []
        with self._pending_lock:
            names, self._pending = sorted(self._pending), set()
        return [self.version_key(name) for name in names]

    def _give_back(self, keys) -> None:  # noqa: ANN001 - the batch that carried them failed
        cut = len(self.version_key(""))
        with self._pending_lock:
            self._pending.update(key[cut:] for key in keys)

    def _flush_pending(self) -> None:
        if not self._pending:
            return
        with self._pending_lock:
            names, self._pending = list(self._pending), set()
        try:
            self._bump_script(keys=[self.version_key(name) for name in names], args=[secrets.randbits(62)])
        except redis.RedisError:
            with self._pending_lock:
                self._pending.update(names)
            raise

    def close(self) -> None:
        self._client.close()


def make_cache(redis_url: str | None) -> Cache:
    return RedisCache(redis_url) if redis_url else MemoryCache()
