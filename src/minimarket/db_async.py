"""PostgreSQL on the event loop: a few psycopg async connections for the hot reads answered before
FastAPI's router (a miss of GET /api/inventory/{sku}), without a worker thread or an ORM session, and
(a pool of its own, `Database.aio_writes`) for the one write answered there: a stock movement
(stock/movement_on_loop.py, with `Prepared` statements and `connection()`).

A statement is one of the SQLAlchemy statements the sync code runs, compiled once for psycopg's dialect:
one SQL text, run as a prepared statement on each connection (planned once per connection), its rows
handed back by the statement's column keys, as `.mappings()` gives them. Autocommit, like
`Database.lookup`: one statement, its own snapshot, no BEGIN/ROLLBACK round trips.

Connections are opened when needed, up to `size`, and belong to one event loop (a new loop, e.g. a new
TestClient, starts over). As the sync pool does (db._ping_after_idle), a connection that sat idle for more
than a second is pinged before it is used, and one found dead drops every idle one: a restarted
PostgreSQL is reconnected without operator action. A failure surfaces as psycopg.OperationalError, which
the caller gate answers 503 like the sync path's.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import psycopg
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.sql import Executable, Select

# The same as the sync pool's (db.PING_AFTER_IDLE_SECONDS): under load no connection waits this long.
PING_AFTER_IDLE_SECONDS = 1.0
UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError)


class _Compiled:
    __slots__ = ("sql", "keys")

    def __init__(self, statement: Select, dialect: Dialect):
        self.sql = str(statement.compile(dialect=dialect))
        self.keys = tuple(statement.selected_columns.keys())


class Prepared:
    """A SQLAlchemy statement compiled once for psycopg, for a unit of work sent on the event loop
    (stock/movement_on_loop.py): its SQL text and, per call, its full parameters as SQLAlchemy would send
    them (values the statement carries itself, e.g. a column's bounds, and each type's bind processing).
    `column_keys`: an INSERT's columns (those of the parameters it is sent with); `sample`: parameters of
    the shape it will be sent with, for a statement with an expanding `IN` (a list of that length each call)."""

    __slots__ = ("sql", "keys", "_compiled", "_expanding", "_processors")

    def __init__(self, statement: Executable, dialect: Dialect, *, column_keys: list[str] | None = None,
                 sample: Mapping[str, Any] | None = None):
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        self._compiled = compiled
        self._expanding = bool(compiled.post_compile_params)
        self.sql = compiled.construct_expanded_state(sample).statement if self._expanding else compiled.string
        self._processors = dict(compiled._bind_processors)  # noqa: SLF001 - SQLAlchemy's own per-type processing
        selected = getattr(statement, "selected_columns", None)
        self.keys = tuple(selected.keys()) if selected is not None else ()

    def named(self, name: str) -> Named:
        """The statement as a named server-side prepared statement (see Named), each parameter declared with
        its SQLAlchemy type (without length or scale: the column still checks them)."""
        binds, dialect = self._compiled.binds, self._compiled.dialect

        def declared(key: str) -> str:
            # An expanding IN's values are named <key>_<n>.
            bind = binds[key] if key in binds else binds.get(key.rsplit("_", 1)[0])
            if bind is None or bind.type._isnull:  # noqa: SLF001 - no type: PostgreSQL infers it from its place
                return "unknown"
            return _MODIFIERS.sub("", bind.type.compile(dialect=dialect))

        return Named(name, self.sql, declared)

    def params(self, values: Mapping[str, Any]) -> dict[str, Any]:
        if self._expanding:
            state = self._compiled.construct_expanded_state(values)
            if state.statement != self.sql:
                raise ValueError("una lista de otro largo que la de `sample`")
            params = dict(state.parameters)
        else:
            params = self._compiled.construct_params(values)
        for name, process in self._processors.items():
            if name in params:
                params[name] = process(params[name])
        return params


_PLACEHOLDER = re.compile(r"%(%|\((\w+)\)s)")
_MODIFIERS = re.compile(r"\([^)]*\)")  # VARCHAR(60) -> VARCHAR, NUMERIC(12, 3) -> NUMERIC


class Named:
    """A statement prepared on the server by name (`PREPARE name AS …`, its placeholders as $1…$n) and run
    with `EXECUTE name(…)`, for a unit of work that sends several statements in one simple-protocol message
    (stock/movement_on_loop.py): the server plans it once per connection instead of parsing and planning
    the whole text on every call. `execute` keeps the statement's own placeholders, for psycopg's `mogrify`
    with `Prepared.params`; PostgreSQL coerces each value to its parameter's declared type (`declared(key)`,
    "unknown": inferred from where it is used)."""

    __slots__ = ("name", "prepare", "execute")

    def __init__(self, name: str, sql: str, declared: Callable[[str], str]):
        order: list[str] = []

        def positional(found: re.Match) -> str:
            if found.group(1) == "%":
                return "%"  # a literal percent sign, doubled for psycopg
            key = found.group(2)
            if key not in order:
                order.append(key)
            return f"${order.index(key) + 1}"

        self.name = name
        body = _PLACEHOLDER.sub(positional, sql)
        types = f"({', '.join(declared(key) for key in order)}) " if order else ""
        self.prepare = f"PREPARE {name} {types}AS {body}"
        arguments = ", ".join(f"%({key})s" for key in order)
        self.execute = f"EXECUTE {name}({arguments})" if order else f"EXECUTE {name}"


class AsyncReads:
    """Up to `size` autocommit psycopg connections on the running event loop, for `mappings()`."""

    def __init__(self, url: str, dialect: Dialect, *, size: int):
        self.conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.dialect = dialect
        self.size = size
        self._compiled: dict[int, tuple[Select, _Compiled]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: deque[tuple[psycopg.AsyncConnection, float]] = deque()
        self._waiting: deque[asyncio.Future] = deque()
        self._open = 0

    def _statement(self, statement: Select) -> _Compiled:
        found = self._compiled.get(id(statement))
        if found is None or found[0] is not statement:
            found = self._compiled[id(statement)] = (statement, _Compiled(statement, self.dialect))
        return found[1]

    async def mappings(self, statement: Select, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The rows of `statement` (a module-level statement with bind parameters) as {column key: value}."""
        compiled = self._statement(statement)
        conn = await self._acquire()
        try:
            cursor = await conn.execute(compiled.sql, params, prepare=True)
            rows = await cursor.fetchall()
        except UNAVAILABLE:
            self._discard(conn)
            self._drop_idle()  # as the sync pool: one dead connection, the others are suspect too
            raise
        except BaseException:
            self._discard(conn)  # cancelled or failed mid-statement: its state is unknown
            raise
        self._release(conn)
        keys = compiled.keys
        return [dict(zip(keys, row, strict=True)) for row in rows]

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """A connection of this pool for a unit of work of the caller's (autocommit: it sends its own BEGIN and
        COMMIT or ROLLBACK). Given back only when it ends outside a transaction; a failure or cancellation
        inside one closes it (PostgreSQL rolls back), a lost connection drops the idle ones too."""
        conn = await self._acquire()
        try:
            yield conn
        except UNAVAILABLE:
            self._discard(conn)
            self._drop_idle()
            raise
        except BaseException:
            self._discard(conn)
            raise
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            self._release(conn)
        else:
            self._discard(conn)

    async def _acquire(self) -> psycopg.AsyncConnection:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._reset(loop)
        while True:
            while self._idle:
                conn, since = self._idle.pop()  # the most recently used: the likeliest to be warm
                if conn.closed:
                    self._open -= 1
                    continue
                if time.monotonic() - since > PING_AFTER_IDLE_SECONDS:
                    try:
                        await conn.execute("SELECT 1")
                    except UNAVAILABLE:
                        self._discard(conn)
                        self._drop_idle()
                        continue
                return conn
            if self._open < self.size:
                self._open += 1
                try:
                    return await psycopg.AsyncConnection.connect(
                        self.conninfo, autocommit=True, connect_timeout=3, application_name="minimarket")
                except BaseException:
                    self._open -= 1
                    self._wake()
                    raise
            waiter = loop.create_future()
            self._waiting.append(waiter)
            try:
                conn = await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled() and waiter.result() is not None:
                    self._release(waiter.result())  # handed over just as this request was cancelled
                raise
            if conn is not None:
                return conn  # handed over by _release; otherwise a slot freed up: look again

    def _release(self, conn: psycopg.AsyncConnection) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append((conn, time.monotonic()))

    def _wake(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _discard(self, conn: psycopg.AsyncConnection) -> None:
        _finish(conn)
        self._open -= 1
        self._wake()

    def _drop_idle(self) -> None:
        while self._idle:
            self._discard(self._idle.pop()[0])

    def _reset(self, loop: asyncio.AbstractEventLoop) -> None:
        """Connections of another (finished) loop cannot be awaited on this one: closed without a round trip."""
        for conn, _ in self._idle:
            _finish(conn)
        self._loop, self._idle, self._waiting, self._open = loop, deque(), deque(), 0

    def close(self) -> None:
        """Close the idle connections (at shutdown); the next read, on whatever loop, starts over."""
        self._drop_idle()
        self._loop = None


def _finish(conn: psycopg.AsyncConnection) -> None:
    """Close at the libpq level: no await, so from any loop or none."""
    if not conn.closed:
        conn.pgconn.finish()
