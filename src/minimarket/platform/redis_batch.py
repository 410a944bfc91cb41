"""Redis on the event loop for the hot path: the Redis work of every request of one loop turn goes
out as ONE script call on one pipelined connection.

A request adds what it needs (a rate-limit window to count, the cache versions its answer depends
on) to the batch that is still open, i.e. not sent yet; the batch is sent at the end of the loop
turn and its one reply answers every request in it. A request never joins a batch already sent:
the versions such a batch reads may be older than a write whose answer the caller has already
seen. Version bumps this process owes (they failed while Redis was down) go first in the next
batch, inside the same atomic script, so no read is served before them.

Batches go out back to back on the one connection and their replies come back in order. No reply
within `timeout`, or a broken connection: every waiting request fails with BackendDown, the
connection is dropped, and for `retry_seconds` requests fail at once instead of waiting again.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterable

from redis.connection import parse_url

# KEYS: nb rate-limit windows, then np versions owed a bump, then the versions to read.
# ARGV: nb, np, a fresh random version, then each window's length in ms.
# A window's INCR and its expiry happen together (no counter without expiry, one window shared by
# every replica); a version that does not exist (first use, or a Redis that restarted empty) starts
# at a random number, so a value kept before a restart can never meet its old version again.
SCRIPT = b"""
local nb, np, fresh = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local out = {}
for i = 1, nb do
  local n = redis.call('INCR', KEYS[i])
  local ttl = redis.call('PTTL', KEYS[i])
  if ttl < 0 then
    ttl = tonumber(ARGV[3 + i])
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
  out[#out + 1] = n
  out[#out + 1] = ttl
end
for i = nb + 1, nb + np do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('INCR', KEYS[i]) else redis.call('SET', KEYS[i], fresh) end
end
for i = nb + np + 1, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if not v then
    v = fresh
    redis.call('SET', KEYS[i], v)
  end
  out[#out + 1] = v
end
return out
"""


# Fresh versions only have to be unguessable by chance, not by an attacker: a generator seeded once
# from the OS instead of a system call per batch.
_fresh = random.Random(secrets.randbits(128))


class BackendDown(Exception):
    """Redis did not answer (or answered with an error)."""


class _ReplyError(str):
    """An error reply (`-ERR …`), kept apart from a string value."""


class _Incomplete(Exception):
    pass


def _parse(buf: bytearray, pos: int):  # noqa: ANN202 - a RESP2 value: int, bytes, None, list or _ReplyError
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind = buf[pos]
    if kind == 0x24:  # $ bulk string
        size = int(buf[pos + 1:end])
        start = end + 2
        if size < 0:
            return None, start
        if len(buf) < start + size + 2:
            raise _Incomplete
        return bytes(buf[start:start + size]), start + size + 2
    if kind == 0x3A:  # : integer
        return int(buf[pos + 1:end]), end + 2
    if kind == 0x2A:  # * array
        count = int(buf[pos + 1:end])
        pos = end + 2
        if count < 0:
            return None, pos
        items = []
        for _ in range(count):
            item, pos = _parse(buf, pos)
            items.append(item)
        return items, pos
    if kind == 0x2B:  # + simple string
        return bytes(buf[pos + 1:end]), end + 2
    if kind == 0x2D:  # - error
        return _ReplyError(buf[pos + 1:end].decode("utf-8", "replace")), end + 2
    raise ValueError(f"respuesta de Redis ilegible: {bytes(buf[pos:pos + 20])!r}")


def command(*args: bytes | str | int) -> bytes:
    """One command in RESP2."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


class _Connection(asyncio.Protocol):
    """One pipelined connection: replies resolve the waiting futures in the order the commands went out."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiting: deque[asyncio.Future] = deque()
        self.closed = False

    def connection_made(self, transport) -> None:  # noqa: ANN001
        self.transport = transport

    def send(self, payload: bytes, future: asyncio.Future) -> None:
        self.waiting.append(future)
        self.transport.write(payload)

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        pos = 0
        try:
            while self.waiting:
                value, pos = _parse(buf, pos)
                future = self.waiting.popleft()
                if not future.done():
                    future.set_result(value)
        except _Incomplete:
            pass
        except ValueError as exc:
            self._fail(BackendDown(str(exc)))
            self.abort()
            return
        if pos:
            del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        self._fail(BackendDown(f"conexión con Redis cerrada: {exc or 'EOF'}"))

    def _fail(self, error: BackendDown) -> None:
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class _Batch:
    __slots__ = ("buckets", "windows", "names", "future", "owed", "bumps", "members")

    def __init__(self, future: asyncio.Future):
        self.members = 0  # requests in it
        self.buckets: list[bytes] = []
        self.windows: list[int] = []
        self.names: dict[str, int] = {}
        self.future = future
        self.owed: list[str] = []  # version keys bumped by it (owed from before, then `bumps`)
        self.bumps: list[str] = []  # version keys its members bump (a write committed on the event loop)


class RedisBatcher:
    """Batched script calls to one Redis (redis://, rediss:// or unix://), on the running event loop.

    `owed()` hands over the version keys whose bump failed earlier (they are bumped first in the
    next batch) and `give_back(keys)` takes back those of a batch that failed; `on_failure` is
    called when Redis stops answering (the read caches drop what they keep).
    """

    def __init__(self, url: str, *, timeout: float = 0.5, retry_seconds: float = 1.0,
                 owed: Callable[[], list[str]] | None = None,
                 give_back: Callable[[Iterable[str]], None] | None = None):
        options = parse_url(url)
        self._host = options.get("host", "127.0.0.1")
        self._port = int(options.get("port", 6379))
        self._path = options.get("path")  # unix socket
        self._tls = options.get("connection_class") is not None and self._path is None
        self._login = [options[k] for k in ("username", "password") if options.get(k)]
        self._db = int(options.get("db", 0) or 0)
        self.timeout = timeout
        self.retry_seconds = retry_seconds
        self._owed = owed
        self._give_back = give_back
        self.failure_listeners: list[Callable[[], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._conn: _Connection | None = None
        self._connecting: asyncio.Task | None = None
        self._open: _Batch | None = None
        self._queued: list[_Batch] = []  # closed batches waiting for the connection
        self._retry_at = 0.0

    async def run(self, bucket: str | None, window_seconds: int, names: tuple[str, ...] | list[str],
                  bumps: tuple[str, ...] | list[str] = ()) -> tuple[int, float, list[str]]:
        """Count one hit in `bucket` (if any), bump the versions `bumps` and read the versions `names` (full
        keys), in the open batch (bumps go before every read of it).

        Returns (count, seconds until the window ends, the versions as text); BackendDown when Redis
        does not answer (the bumps are then handed to `give_back`, like owed ones)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._reset(loop)  # an asyncio connection belongs to one loop (a new TestClient, a new loop)
        if self._retry_at and time.monotonic() < self._retry_at:
            if bumps and self._give_back is not None:
                self._give_back(bumps)  # owed: sent first when Redis answers again
            raise BackendDown("Redis no respondió hace instantes")
        batch = self._open
        if batch is None:
            batch = self._open = _Batch(loop.create_future())
            loop.call_soon(self._close_open)
        batch.members += 1
        slot = -1
        if bucket is not None:
            slot = len(batch.buckets)
            batch.buckets.append(bucket.encode())
            batch.windows.append(int(window_seconds * 1000))
        batch.bumps.extend(bumps)
        indexes = [batch.names.setdefault(name, len(batch.names)) for name in names]
        reply = await batch.future
        nb = len(batch.buckets)
        versions = [reply[2 * nb + i] for i in indexes]
        if slot < 0:
            return 0, 0.0, versions
        return reply[2 * slot], reply[2 * slot + 1] / 1000, versions

    def _close_open(self) -> None:
        batch, self._open = self._open, None
        if batch is None:
            return
        if self._conn is not None and not self._conn.closed:
            self._send(batch)
            return
        self._queued.append(batch)
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())

    def _send(self, batch: _Batch) -> None:
        owed = (self._owed() if self._owed is not None else []) + batch.bumps
        batch.owed = owed
        keys = [*batch.buckets, *owed, *batch.names]
        args = [b"EVAL", SCRIPT, len(keys), *keys, len(batch.buckets), len(owed), _fresh.getrandbits(62), *batch.windows]
        loop = self._loop
        reply = loop.create_future()
        conn = self._conn
        timer = loop.call_later(self.timeout, self._expire, conn, reply)
        reply.add_done_callback(lambda done: self._settle(batch, done, timer))
        conn.send(command(*args), reply)

    def _settle(self, batch: _Batch, reply: asyncio.Future, timer: asyncio.TimerHandle) -> None:
        timer.cancel()
        error = reply.exception() if not reply.cancelled() else BackendDown("cancelado")
        if error is None:
            value = reply.result()
            if isinstance(value, list):
                batch.future.set_result([v.decode() if isinstance(v, bytes) else v for v in value])
                return
            error = BackendDown(f"Redis respondió un error: {value}"[:300])
        self._failed(batch, error if isinstance(error, BackendDown) else BackendDown(str(error)))

    def _failed(self, batch: _Batch, error: BackendDown) -> None:
        if batch.owed and self._give_back is not None:
            self._give_back(batch.owed)
        if not batch.future.done():
            batch.future.set_exception(error)
            batch.future.exception()  # retrieved: no "never retrieved" warning when nobody waits anymore
        if not self._retry_at or time.monotonic() >= self._retry_at:
            self._retry_at = time.monotonic() + self.retry_seconds
            for listener in self.failure_listeners:
                listener()

    def _expire(self, conn: _Connection, reply: asyncio.Future) -> None:
        if not reply.done():  # the replies after it would be out of step: drop the connection
            conn.abort()
            if not reply.done():
                reply.set_exception(BackendDown(f"Redis no respondió en {self.timeout} s"))

    async def _connect(self) -> None:
        try:
            conn = await asyncio.wait_for(self._open_connection(), self.timeout)
        except (OSError, asyncio.TimeoutError, BackendDown, ValueError) as exc:
            queued, self._queued = self._queued, []
            self._connecting = None
            for batch in queued:
                self._failed(batch, BackendDown(f"{type(exc).__name__}: {str(exc)[:200]}"))
            return
        self._conn, self._connecting, self._retry_at = conn, None, 0.0
        queued, self._queued = self._queued, []
        for batch in queued:
            self._send(batch)

    async def _open_connection(self) -> _Connection:
        loop = asyncio.get_running_loop()
        if self._path:
            _, conn = await loop.create_unix_connection(_Connection, self._path)
        else:
            context = ssl.create_default_context() if self._tls else None
            _, conn = await loop.create_connection(_Connection, self._host, self._port, ssl=context)
        setup = []
        if self._login:
            setup.append(command("AUTH", *self._login))
        if self._db:
            setup.append(command("SELECT", self._db))
        for payload in setup:
            answer = loop.create_future()
            conn.send(payload, answer)
            value = await answer
            if isinstance(value, _ReplyError):
                conn.abort()
                raise BackendDown(f"Redis rechazó la conexión: {value}"[:300])
        return conn

    def _reset(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop, self._conn, self._connecting, self._open, self._queued = loop, None, None, None, []
        self._retry_at = 0.0

    async def close(self) -> None:
        if self._conn is not None and self._loop is asyncio.get_running_loop():
            self._conn.abort()
        self._conn = None
