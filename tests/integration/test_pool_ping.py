"""The pool pings a connection only after it sat idle (db._ping_after_idle): a PostgreSQL that dropped the
connection meanwhile is reconnected without an error, and a busy pool spends no `SELECT 1` per unit of work."""

from __future__ import annotations

import time

import psycopg
import pytest
from sqlalchemy import text

from minimarket import db as db_module
from minimarket.db import Database

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url(pg_reused) -> str:  # noqa: ANN001
    return pg_reused.fresh()


def _backend_pid(database: Database) -> int:
    with database.write() as session:
        return session.execute(text("SELECT pg_backend_pid()")).scalar_one()


def _count_pings(database: Database, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    pings: list[int] = []
    real = database.engine.dialect.do_ping

    def counted(dbapi_conn):  # noqa: ANN001, ANN202
        pings.append(1)
        return real(dbapi_conn)

    monkeypatch.setattr(database.engine.dialect, "do_ping", counted)
    return pings


def test_a_connection_dropped_while_idle_is_replaced_without_an_error(pg_url: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    database = Database(pg_url, pool_size=1, max_overflow=0)
    try:
        pings = _count_pings(database, monkeypatch)
        first = _backend_pid(database)
        plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain, autocommit=True) as admin:  # the server drops the pooled connection
            assert admin.execute("SELECT pg_terminate_backend(%s)", (first,)).fetchone()[0]
        time.sleep(db_module.PING_AFTER_IDLE_SECONDS + 0.2)
        second = _backend_pid(database)  # no error: the idle connection was pinged, found dead, replaced
        assert second != first
        assert len(pings) == 1
    finally:
        database.dispose()


def test_a_busy_connection_is_not_pinged(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    database = Database(pg_url, pool_size=1, max_overflow=0)
    try:
        pings = _count_pings(database, monkeypatch)
        pids = {_backend_pid(database) for _ in range(20)}
        assert len(pids) == 1 and pings == []  # back in the pool for milliseconds each time: no SELECT 1
        time.sleep(db_module.PING_AFTER_IDLE_SECONDS + 0.2)
        assert _backend_pid(database) in pids and len(pings) == 1  # idle for a while: pinged, still healthy
    finally:
        database.dispose()
