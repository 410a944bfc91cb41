"""Fixed-window counters for the rate limiter: in Redis (shared by replicas) or in this process.

With REDIS_URL set, the counters live in Redis; while Redis does not answer, this process
counts in its own memory instead (the limits still hold, per process), says so in
`minimarket_ratelimit_backend` and `/health`, and goes back to Redis as soon as it answers.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import structlog
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

from minimarket.platform.redis_batch import BackendDown, RedisBatcher

log = structlog.get_logger("minimarket.ratelimit")

RATELIMIT_BACKEND_ERRORS = Counter(
    "minimarket_ratelimit_backend_errors_total",
    "/api requests counted in this process's memory because Redis did not answer",
)
PREFIX = "minimarket:rl:"


@dataclass(frozen=True)
class Window:
    count: int
    reset_in: float  # seconds until the window ends


class Limiter(Protocol):
    @property
    def kind(self) -> str: ...  # the store counting right now: "redis" or "memory"

    @property
    def degraded(self) -> bool: ...  # Redis is configured but not answering

    async def hit(self, bucket: str, window: int) -> Window:
        """Add one to `bucket` (opening a window of `window` s if none) and return it."""
        ...

    async def hit_reading(self, bucket: str, window: int, keys: tuple[str, ...] | list[str]
                          ) -> tuple[Window, list[str] | None]:
        """`hit`, and the values of `keys` (cache versions) read from Redis in the same round trip;
        None when they could not be read."""
        ...

    async def close(self) -> None: ...


class MemoryLimiter:
    """Per-process windows; a bounded LRU so a flood of made-up keys cannot grow it without end."""

    kind = "memory"
    degraded = False

    def __init__(self, max_buckets: int = 10_000):
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()  # bucket -> [count, resets_at]
        self._lock = threading.Lock()
        self._max = max_buckets

    async def hit(self, bucket: str, window: int) -> Window:
        now = time.monotonic()
        with self._lock:
            entry = self._buckets.get(bucket)
            if entry is None or entry[1] <= now:
                entry = [0, now + window]
                self._buckets[bucket] = entry
            entry[0] += 1
            self._buckets.move_to_end(bucket)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
            return Window(int(entry[0]), entry[1] - now)

    async def hit_reading(self, bucket: str, window: int, keys: tuple[str, ...] | list[str]  # noqa: ARG002
                          ) -> tuple[Window, None]:
        return await self.hit(bucket, window), None  # no Redis: nothing to read

    async def close(self) -> None:
        return None


class RedisLimiter:
    """Windows in Redis under `minimarket:rl:`, shared by every replica and service.

    Counted through the app's RedisBatcher (platform/redis_batch.py): the INCR and the expiry in one
    atomic script, in the same round trip as the cache versions the request's answer depends on
    (`hit_reading`), shared with the other requests of the same event-loop turn.
    """

    kind = "redis"
    degraded = False

    def __init__(self, url: str, *, timeout: float = 0.5, batcher: RedisBatcher | None = None):
        self._batcher = batcher or RedisBatcher(url, timeout=timeout)

    async def hit(self, bucket: str, window: int) -> Window:
        counted, _ = await self.hit_reading(bucket, window, ())
        return counted

    async def hit_reading(self, bucket: str, window: int, keys: tuple[str, ...] | list[str]
                          ) -> tuple[Window, list[str]]:
        """Count one hit and read the values of `keys` (cache versions) in one round trip."""
        count, reset_in, values = await self._batcher.run(PREFIX + bucket, window, keys)
        return Window(int(count), reset_in), values

    async def close(self) -> None:
        await self._batcher.close()


class FallbackLimiter:
    """Redis while it answers; this process's memory while it does not, retried every RETRY_SECONDS.

    A cache outage must neither stop the tills (refusing everything) nor lift every limit
    (failing open): the memory windows keep each process's limits until Redis is back.
    """

    RETRY_SECONDS = 2.0  # while down, one request in this interval tries Redis; the rest go straight to memory

    def __init__(self, primary: RedisLimiter, fallback: MemoryLimiter | None = None):
        self._primary = primary
        self._fallback = fallback or MemoryLimiter()
        self._down_since: float | None = None
        self._retry_at = 0.0

    @property
    def kind(self) -> str:
        return "memory" if self.degraded else "redis"

    @property
    def degraded(self) -> bool:
        return self._down_since is not None

    async def hit(self, bucket: str, window: int) -> Window:
        counted, _ = await self.hit_reading(bucket, window, ())
        return counted

    async def hit_reading(self, bucket: str, window: int, keys: tuple[str, ...] | list[str]
                          ) -> tuple[Window, list[str] | None]:
        """Count one hit and read `keys` from Redis; while Redis does not answer, count in memory and
        read nothing (None)."""
        if self._down_since is None or time.monotonic() >= self._retry_at:
            try:
                counted = await self._primary.hit_reading(bucket, window, keys)
            except BackendDown as exc:
                self._retry_at = time.monotonic() + self.RETRY_SECONDS
                if self._down_since is None:  # one line per outage, not one per request
                    self._down_since = time.monotonic()
                    log.warning("ratelimit_backend_down", error=str(exc), counting_in="memory")
            else:
                if self._down_since is not None:
                    log.info("ratelimit_backend_recovered", down_seconds=round(time.monotonic() - self._down_since, 1))
                    self._down_since = None
                return counted
        RATELIMIT_BACKEND_ERRORS.inc()
        return await self._fallback.hit(bucket, window), None

    async def close(self) -> None:
        await self._primary.close()


def make_limiter(redis_url: str | None, *, batcher: RedisBatcher | None = None) -> Limiter:
    """Redis (through `batcher`, the cache's, when given) with the memory fallback; memory alone without Redis."""
    return FallbackLimiter(RedisLimiter(redis_url, batcher=batcher)) if redis_url else MemoryLimiter()


class LimiterCollector:
    """Scrape-time gauges: where the windows are counted now, and whether that is a fallback."""

    def __init__(self, limiter: Limiter):
        self._limiter = limiter

    def collect(self):  # noqa: ANN201
        kind = self._limiter.kind
        backend = GaugeMetricFamily("minimarket_ratelimit_backend",
                                    "Store of the /api rate-limit windows in use now (1) in this process",
                                    labels=["backend"])
        for name in ("redis", "memory"):
            backend.add_metric([name], 1.0 if kind == name else 0.0)
        yield backend
        yield GaugeMetricFamily("minimarket_ratelimit_degraded",
                                "1 while REDIS_URL is set but Redis does not answer: limits count per process",
                                value=1.0 if self._limiter.degraded else 0.0)
