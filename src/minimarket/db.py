"""Engine, sessions (unit of work), declarative Base and naming convention."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import MetaData, create_engine, event, text
from sqlalchemy import exc as sqlalchemy_exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from minimarket.config import ASYNC_READ_CONNECTIONS, ASYNC_WRITE_CONNECTIONS
from minimarket.db_async import AsyncReads

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _prepare_sqlite(engine: Engine) -> None:
    """WAL, foreign keys, busy timeout, and BEGIN IMMEDIATE for write units of work.

    pysqlite's own transaction handling is switched off so that SQLAlchemy's
    "begin" event decides how a transaction starts: a write unit of work takes the
    write lock up front, so two writers queue on busy_timeout instead of failing
    with "database is locked" when a read lock cannot be upgraded.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # noqa: ANN001
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=15000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()
        # SQLite's own lower() folds ASCII only; searches and name matches need "ÑANDÚ" → "ñandú".
        dbapi_conn.create_function("lower", 1, lambda v: v.lower() if isinstance(v, str) else v, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # noqa: ANN001
        immediate = conn.get_execution_options().get("minimarket_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str, *, pool_size: int = 10, max_overflow: int = 20) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 15})
        _prepare_sqlite(engine)
        return engine
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
        connect_args={"connect_timeout": 3, "application_name": "minimarket"},
    )
    _ping_after_idle(engine)
    return engine


# A connection back in the pool for longer than this is pinged before it is handed out again.
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_after_idle(engine: Engine) -> None:
    """The pool's pre-ping, only for a connection that sat idle: a restarted PostgreSQL is still
    reconnected without operator action, but a busy pool (under load every connection comes back
    within milliseconds) no longer spends a round trip per unit of work on `SELECT 1`. A connection
    that broke within the last second fails its statement instead; that error invalidates the whole
    pool (SQLAlchemy's disconnect handling), so the next unit of work reconnects."""

    @event.listens_for(engine, "connect")
    def _fresh(_dbapi_conn, record):  # noqa: ANN001
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn, record):  # noqa: ANN001
        if record is not None:
            record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn, record, _proxy):  # noqa: ANN001
        if time.monotonic() - record.info.get("returned_at", 0.0) <= PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            if engine.dialect.is_disconnect(exc, dbapi_conn, None):  # as pool_pre_ping: every older one too
                raise sqlalchemy_exc.InvalidatePoolError(str(exc)) from exc
            raise sqlalchemy_exc.DisconnectionError(str(exc)) from exc  # this one only: the pool opens another


CommitHook = Callable[[dict], None]



class Database:
    """One engine and its session factories; each app holds one.

    `on_commit(info)` runs after every committed write unit of work with the session's `info`
    (what the work noted it changed), e.g. to invalidate cached reads across processes.
    """

    def __init__(self, url: str, *, pool_size: int = 10, max_overflow: int = 20,
                 on_commit: CommitHook | None = None):
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size, max_overflow=max_overflow)
        self.is_sqlite = url.startswith("sqlite")
        self.on_commit = on_commit
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        # Hot reads of one or a few statements: on PostgreSQL no BEGIN/ROLLBACK round trips (at READ
        # COMMITTED each statement has its own snapshot anyway). SQLite keeps its cheap local transaction.
        self._lookup = self._read if self.is_sqlite else sessionmaker(
            self.engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False)
        self._write = sessionmaker(
            self.engine.execution_options(minimarket_write=True), expire_on_commit=False
        )
        # SQLite has one writer at a time. Queueing this process's writers on a lock keeps
        # them off SQLite's sleep-and-retry busy handler (long tail latencies); the busy
        # timeout still covers other processes such as the CLI.
        self._sqlite_writer = threading.Lock() if self.is_sqlite else None
        # PostgreSQL reads answered on the event loop (db_async); a few connections (opened when needed):
        # each read is one prepared statement of a fraction of a millisecond, and they all share one loop.
        self.aio = None if self.is_sqlite else AsyncReads(url, self.engine.dialect, size=min(pool_size, ASYNC_READ_CONNECTIONS))
        # Stock movements recorded on the event loop (stock/movement_on_loop.py): a pool of their own, so a
        # movement waiting for a hot product's row lock never holds up a read; opened when needed.
        self.aio_writes = (None if self.is_sqlite
                           else AsyncReads(url, self.engine.dialect, size=min(pool_size, ASYNC_WRITE_CONNECTIONS)))

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for queries; nothing it does is committed."""
        session = self._read()
        try:
            yield session
        finally:
            session.rollback()
            session.close()

    @contextmanager
    def lookup(self) -> Iterator[Session]:
        """A session for a few independent reads on the hot path (API key, one product, a list page):
        no transaction on PostgreSQL. Never write in it: unlike `read()`, a write would stay."""
        session = self._lookup()
        try:
            yield session
        finally:
            session.close()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A unit of work: commits when the block ends, rolls back on any exception."""
        lock = self._sqlite_writer or contextlib.nullcontext()
        with lock:
            session = self._write()
            try:
                with session.begin():
                    yield session
                info = dict(session.info)
            finally:
                session.close()
        if self.on_commit is not None:
            self.on_commit(info)

    def ping(self) -> None:
        """`SELECT 1` on a connection of the pool. A pooled connection found dead (the database restarted
        or went away within the last second, so it was not pinged on checkout) invalidates the pool, and
        the probe is retried once on a new connection: the answer is about the database, not a stale socket."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except sqlalchemy_exc.DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()
        if self.aio is not None:
            self.aio.close()
        if self.aio_writes is not None:
            self.aio_writes.close()
