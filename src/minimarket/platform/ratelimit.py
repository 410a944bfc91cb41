"""Rate limiting of /api: fixed windows per API key and per client IP, in Redis or in memory.

Every /api request with an X-API-Key counts against that key's window (the key is identified
by a salted SHA-256 of the header, never the key itself). Requests without a key, and keyed
requests the app answers 401 (invalid or revoked key: guessing), count against the client
IP's window; once that is full, every /api request from the IP is refused until it resets.
The check runs before the app, so a refused request never reaches the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import math
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import redis
import redis.asyncio
import structlog
from prometheus_client import Counter

from minimarket.config import Settings, csv_list
from minimarket.platform.errors import error_body

log = structlog.get_logger("minimarket.ratelimit")

RATELIMIT_REJECTED = Counter(
    "minimarket_ratelimit_rejected_total", "/api requests refused with 429, by the limit that was full", ["scope"]
)
RATELIMIT_BACKEND_ERRORS = Counter(
    "minimarket_ratelimit_backend_errors_total",
    "/api requests served without a rate-limit check because Redis did not answer (fail open)",
)
for _scope in ("key", "ip"):
    RATELIMIT_REJECTED.labels(_scope)  # both series exist (at 0) before the first refusal

PREFIX = "minimarket:rl:"
_KEY_SALT = b"minimarket-ratelimit:"


@dataclass(frozen=True)
class Window:
    count: int
    reset_in: float  # seconds until the window ends


class Limiter(Protocol):
    kind: str

    async def hit(self, bucket: str, window: int, peek: str | None = None) -> tuple[Window, Window | None]:
        """Add one to `bucket` (opening a window of `window` s if none); also read `peek` unchanged."""
        ...

    async def close(self) -> None: ...


class MemoryLimiter:
    """Per-process windows; a bounded LRU so a flood of made-up keys cannot grow it without end."""

    kind = "memory"

    def __init__(self, max_buckets: int = 10_000):
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()  # bucket -> [count, resets_at]
        self._lock = threading.Lock()
        self._max = max_buckets

    async def hit(self, bucket: str, window: int, peek: str | None = None) -> tuple[Window, Window | None]:
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
            counted = Window(int(entry[0]), entry[1] - now)
            peeked = None
            if peek is not None:
                other = self._buckets.get(peek)
                peeked = Window(int(other[0]), other[1] - now) if other and other[1] > now else Window(0, 0.0)
        return counted, peeked

    async def close(self) -> None:
        return None


# INCR and the expiry in one atomic step, so replicas share one window and a crash between
# the two can never leave a counter without expiry; the second key is only read.
_HIT_LUA = """
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
local m, mttl = 0, 0
if #KEYS > 1 then
  m = tonumber(redis.call('GET', KEYS[2]) or '0')
  mttl = redis.call('PTTL', KEYS[2])
  if mttl < 0 then mttl = 0 end
end
return {n, ttl, m, mttl}
"""


class RedisLimiter:
    """Windows in Redis under `minimarket:rl:`, shared by every replica and service."""

    kind = "redis"
    BACKOFF_SECONDS = 2.0  # after a failure, skip Redis this long instead of paying a timeout per request

    def __init__(self, url: str):
        self._url = url
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: redis.asyncio.Redis | None = None
        self._script = None
        self._down_until = 0.0

    def _connection(self):  # noqa: ANN202
        # An asyncio client belongs to one event loop; a new loop (a new TestClient) gets a new client.
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = redis.asyncio.Redis.from_url(self._url, socket_timeout=0.25, socket_connect_timeout=0.25)
            self._script = self._client.register_script(_HIT_LUA)
            self._loop = loop
        return self._script

    async def hit(self, bucket: str, window: int, peek: str | None = None) -> tuple[Window, Window | None]:
        if time.monotonic() < self._down_until:
            raise BackendDown("skipped: Redis failed moments ago", fresh=False)
        keys = [PREFIX + bucket] + ([PREFIX + peek] if peek is not None else [])
        try:
            n, ttl, m, mttl = await self._connection()(keys=keys, args=[window * 1000])
        except (redis.RedisError, OSError, asyncio.TimeoutError) as exc:
            self._down_until = time.monotonic() + self.BACKOFF_SECONDS
            raise BackendDown(f"{type(exc).__name__}: {str(exc)[:200]}", fresh=True) from exc
        counted = Window(int(n), int(ttl) / 1000)
        return counted, (Window(int(m), int(mttl) / 1000) if peek is not None else None)

    async def close(self) -> None:
        if self._client is not None and self._loop is asyncio.get_running_loop():
            await self._client.aclose()
        self._client = None


class BackendDown(Exception):
    """The limiter's store did not answer (fresh) or was skipped because it just failed."""

    def __init__(self, detail: str, *, fresh: bool):
        super().__init__(detail)
        self.fresh = fresh


def make_limiter(redis_url: str | None) -> Limiter:
    return RedisLimiter(redis_url) if redis_url else MemoryLimiter()


def key_bucket(presented: str) -> str:
    digest = hashlib.sha256(_KEY_SALT + presented.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return f"key:{digest}"


def key_prefix(presented: str) -> str | None:
    """The public prefix of an `mm_<prefix>.<secret>` key, for logs; None for anything else."""
    if not presented.startswith("mm_") or "." not in presented:
        return None
    prefix = presented[3:].split(".", 1)[0]
    return prefix if 4 <= len(prefix) <= 16 and prefix.isalnum() else None


class ClientAddress:
    """The client's IP: the ASGI peer, or X-Forwarded-For when the peer is a trusted proxy.

    Proxies are named explicitly (TRUSTED_PROXIES, empty by default): IPs, networks or host
    names. A name (`nginx` under Docker Compose) is resolved off the event loop, again every
    RESOLVE_EVERY seconds, so a proxy that starts after the app or changes address is followed.
    """

    RESOLVE_EVERY = 30.0

    def __init__(self, trusted_proxies: list[str]):
        self._networks = [net for p in trusted_proxies if (net := _network(p)) is not None]
        self._names = [p for p in trusted_proxies if _network(p) is None]
        self._resolved: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self._resolved_at = -math.inf

    async def refresh(self) -> None:
        """Resolve the proxies given by name when the last resolution is stale (a no-op without names)."""
        if not self._names or time.monotonic() - self._resolved_at < self.RESOLVE_EVERY:
            return
        self._resolved_at = time.monotonic()
        loop = asyncio.get_running_loop()
        found = []
        for name in self._names:
            try:
                infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
            except OSError as exc:  # not trusted until it resolves: its clients share its address meanwhile
                log.warning("trusted_proxy_unresolved", proxy=name, error=str(exc)[:200])
                continue
            found.extend(ipaddress.ip_network(info[4][0]) for info in infos)
        self._resolved = found

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._networks) or any(ip in net for net in self._resolved)

    def __call__(self, scope) -> str:  # noqa: ANN001
        client = scope.get("client")
        peer = str(client[0]) if client else "desconocido"
        if not self._is_trusted(peer):
            return peer[:64]
        forwarded = [v.decode("latin-1") for k, v in scope.get("headers") or [] if k == b"x-forwarded-for"]
        hops = [h.strip() for h in ",".join(forwarded).split(",") if h.strip()]
        # Walk back from the nearest hop: the first one that is not our own proxy is the client;
        # anything to its left was written by the client and proves nothing.
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    return peer[:64]
        return (hops[0] if hops else peer)[:64]


def _network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def _is_api(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


class RateLimited:
    """Pure ASGI middleware: 429 with Retry-After when the key's or the IP's window is full."""

    def __init__(self, app, *, settings: Settings, limiter: Limiter | None = None):  # noqa: ANN001
        self.app = app
        self.enabled = settings.rate_limit_enabled
        self.per_key = settings.rate_limit_per_key
        self.per_ip = settings.rate_limit_per_ip
        self.window = settings.rate_limit_window_seconds
        self.limiter = limiter or make_limiter(settings.redis_url)
        self.client_ip = ClientAddress(csv_list(settings.trusted_proxies))

    async def __call__(self, scope, receive, send):  # noqa: ANN001
        if scope["type"] == "lifespan":
            await self.app(scope, self._closing_on_shutdown(receive), send)
            return
        if scope["type"] != "http" or not _is_api(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        await self.client_ip.refresh()
        ip = self.client_ip(scope)
        scope.setdefault("state", {})["client_ip"] = ip  # for the auth failure log
        if not self.enabled:
            await self.app(scope, receive, send)
            return
        presented = next((v.decode("latin-1") for k, v in scope.get("headers") or [] if k == b"x-api-key"), "")
        ip_bucket = f"ip:{ip}"
        try:
            if presented:
                mine, ip_window = await self.limiter.hit(key_bucket(presented), self.window, peek=ip_bucket)
                if mine.count > self.per_key:
                    await self._refuse(send, "key", self.per_key, mine, ip=ip, prefix=key_prefix(presented),
                                       announce=mine.count == self.per_key + 1)
                    return
                if ip_window is not None and ip_window.count >= self.per_ip:
                    await self._refuse(send, "ip", self.per_ip, ip_window, ip=ip, announce=False)
                    return
            else:
                mine, _ = await self.limiter.hit(ip_bucket, self.window)
                if mine.count > self.per_ip:
                    await self._refuse(send, "ip", self.per_ip, mine, ip=ip, announce=mine.count == self.per_ip + 1)
                    return
        except BackendDown as exc:
            # Fail open: the limiter guards against abuse, it is not what makes a sale correct.
            # Refusing every request because Redis is down would stop the tills over a cache
            # outage; the counter (and /health's cache check) tells the operator instead.
            RATELIMIT_BACKEND_ERRORS.inc()
            if exc.fresh:  # one line per failure, not one per request during the backoff
                log.warning("ratelimit_backend_error", error=str(exc), backend=self.limiter.kind)
            await self.app(scope, receive, send)
            return

        status = {"code": 0}

        async def watching(message):  # noqa: ANN001
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        await self.app(scope, receive, watching if presented else send)
        if presented and status["code"] == 401:
            # A key the app refused is a guess: it counts against the IP like a keyless request.
            try:
                counted, _ = await self.limiter.hit(ip_bucket, self.window)
            except BackendDown:
                RATELIMIT_BACKEND_ERRORS.inc()
                return
            if counted.count == self.per_ip:  # from now on this IP is refused until the window ends
                log.warning("rate_limited", scope="ip", limit=self.per_ip, client_ip=ip,
                            retry_after=max(1, math.ceil(counted.reset_in)))

    async def _refuse(self, send, scope: str, limit: int, window: Window, *, ip: str,  # noqa: ANN001
                      prefix: str | None = None, announce: bool) -> None:
        RATELIMIT_REJECTED.labels(scope).inc()
        retry_after = max(1, math.ceil(window.reset_in))
        if announce:  # one line when a window fills up, not one per refused request
            log.warning("rate_limited", scope=scope, limit=limit, client_ip=ip, key_prefix=prefix,
                        retry_after=retry_after)
        who = "esta clave de API" if scope == "key" else "esta dirección IP"
        message = (f"Demasiadas solicitudes desde {who}: el máximo es {limit} cada {self.window} segundos; "
                   f"reintentá en {retry_after} segundos")
        body = json.dumps(error_body("demasiadas_solicitudes", message,
                                     {"limit": limit, "window_seconds": self.window}), ensure_ascii=False).encode()
        await send({
            "type": "http.response.start",
            "status": 429,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        (b"retry-after", str(retry_after).encode())],
        })
        await send({"type": "http.response.body", "body": body})

    def _closing_on_shutdown(self, receive):  # noqa: ANN001
        async def wrapped():
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                try:
                    await self.limiter.close()
                except Exception:  # noqa: BLE001 - closing a dead connection must not fail the shutdown
                    pass
            return message

        return wrapped
