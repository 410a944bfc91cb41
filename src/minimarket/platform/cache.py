"""Cache: Redis when REDIS_URL is set (shared by replicas), in-process otherwise."""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from typing import Any, Protocol

import redis

from minimarket.platform.metrics import CACHE_HITS, CACHE_MISSES


def _count(kind: str, value: Any | None) -> Any | None:
    (CACHE_MISSES if value is None else CACHE_HITS).labels(kind).inc()
    return value


class Cache(Protocol):
    kind: str

    def get_json(self, key: str) -> Any | None: ...
    def set_json(self, key: str, value: Any, ttl: int) -> None: ...
    def delete(self, *keys: str) -> None: ...
    def ping(self) -> None: ...


class MemoryCache:
    """Bounded LRU with expiry; enough for one process on one store PC."""

    kind = "memory"

    def __init__(self, max_items: int = 2048):
        self._items: OrderedDict[str, tuple[float, str]] = OrderedDict()
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


class RedisCache:
    kind = "redis"

    def __init__(self, url: str, prefix: str = "minimarket:"):
        self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._prefix = prefix

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
        self._client.ping()

    def close(self) -> None:
        self._client.close()


def make_cache(redis_url: str | None) -> Cache:
    return RedisCache(redis_url) if redis_url else MemoryCache()
