"""Rate limiting of /api: fixed windows per API key and per client IP (counters in platform/limiter.py).

Every /api request with an X-API-Key (or the dashboard's session cookie) counts against that key's window (the key is identified
by a salted SHA-256 of the header, never the key itself) and is refused past it, before the
app runs, so a refused request never reaches the database. The client IP's window counts only
failed authentication: every 401 the app (its caller gate) answers. Once the IP's window is
full, its 401s become 429s until the window ends; a valid key behind the same IP (every till
behind the store's NAT) is never refused on the IP's account.

The same round trip that counts a key's request reads the cache versions its answer will depend
on (`reads`, platform/read_cache.py), so a kept answer costs one Redis round trip, shared with the
other requests of the same event-loop turn.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import math
import socket
import time
from collections.abc import Callable

import structlog
from prometheus_client import Counter

from minimarket.config import Settings, csv_list
from minimarket.platform.errors import error_body
from minimarket.platform.limiter import Limiter, Window, make_limiter
from minimarket.platform.read_cache import VERSIONS

log = structlog.get_logger("minimarket.ratelimit")

RATELIMIT_REJECTED = Counter(
    "minimarket_ratelimit_rejected_total", "/api requests refused with 429, by the limit that was full", ["scope"]
)
for _scope in ("key", "ip"):
    RATELIMIT_REJECTED.labels(_scope)  # both series exist (at 0) before the first refusal

_KEY_SALT = b"minimarket-ratelimit:"


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
        if not self._networks and not self._resolved:
            return False  # no proxy configured (the default): nothing to parse
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
    # /ingresar too: a refused login (401) counts against the IP like a wrong API key.
    return path == "/api" or path.startswith("/api/") or path == "/ingresar"


def _credential(scope) -> str:  # noqa: ANN001
    """The X-API-Key, or else the dashboard's session cookie: each has its own window."""
    headers = scope.get("headers") or []
    key = next((v.decode("latin-1") for k, v in headers if k == b"x-api-key"), "")
    if key:
        return key
    cookies = next((v.decode("latin-1") for k, v in headers if k == b"cookie"), "")
    token = next((p.strip()[len("mm_sesion="):] for p in cookies.split(";") if p.strip().startswith("mm_sesion=")), "")
    return f"sesion:{token}" if token else ""


class RateLimited:
    """Pure ASGI middleware: 429 with Retry-After when the key's window is full, or for a failed
    authentication once the IP's window is full."""

    def __init__(self, app, *, settings: Settings, limiter: Limiter | None = None,  # noqa: ANN001
                 reads: Callable[[dict], tuple[str, ...]] | None = None, version_key: Callable[[str], str] = str):
        """`reads(scope)`: the cache versions this request's answer will depend on, read in the round
        trip that counts it (`version_key` names their Redis keys) and left in scope["state"]."""
        self.app = app
        self.reads = reads
        self.version_key = version_key
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
        presented = _credential(scope)
        if presented:
            names = self.reads(scope) if self.reads is not None else ()
            if names:
                mine, values = await self.limiter.hit_reading(key_bucket(presented), self.window,
                                                              [self.version_key(name) for name in names])
                scope["state"][VERSIONS] = None if values is None else dict(zip(names, values, strict=True))
            else:
                mine = await self.limiter.hit(key_bucket(presented), self.window)
            if mine.count > self.per_key:
                await self._refuse(send, "key", self.per_key, mine, ip=ip, prefix=key_prefix(presented),
                                   announce=mine.count == self.per_key + 1)
                return
        await self.app(scope, receive, self._charging_failures(send, ip))

    def _charging_failures(self, send, ip: str):  # noqa: ANN001, ANN202
        """A send that counts each 401 against the IP and turns it into a 429 once the IP's window is full."""
        refused = False

        async def charging(message):  # noqa: ANN001
            nonlocal refused
            if message["type"] == "http.response.start" and message["status"] == 401:
                counted = await self.limiter.hit(f"ip:{ip}", self.window)
                if counted.count > self.per_ip:
                    refused = True
                    await self._refuse(send, "ip", self.per_ip, counted, ip=ip,
                                       announce=counted.count == self.per_ip + 1)
                    return
            elif refused:  # the body of the 401 that became a 429
                return
            await send(message)

        return charging

    async def _refuse(self, send, scope: str, limit: int, window: Window, *, ip: str,  # noqa: ANN001
                      prefix: str | None = None, announce: bool) -> None:
        RATELIMIT_REJECTED.labels(scope).inc()
        retry_after = max(1, math.ceil(window.reset_in))
        if announce:  # one line when a window fills up, not one per refused request
            log.warning("rate_limited", scope=scope, limit=limit, client_ip=ip, key_prefix=prefix,
                        retry_after=retry_after, backend=self.limiter.kind)
        what = ("Demasiadas solicitudes desde esta clave de API" if scope == "key"
                else "Demasiados intentos sin una clave de API válida desde esta dirección IP")
        message = f"{what}: el máximo es {limit} cada {self.window} segundos; reintentá en {retry_after} segundos"
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
