"""Helpers every test layer shares: the test PostgreSQL and Redis, databases made and dropped, settings,
and the one rule for a missing dependency (skip here, fail in CI).

Plain functions (fixtures live in conftest.py). PostgreSQL and Redis are real: outside CI a test
that needs an unreachable one is skipped; with CI set it fails instead, so CI never silently skips.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import NoReturn

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from minimarket.config import Settings
from minimarket.db import Database

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
IN_CI = bool(os.environ.get("CI"))

# A test run holds its Redis database: two runs on one database share the app's keys ("minimarket:…":
# versions, kept answers, rate-limit counters of key id 1) and each sees the other's (a hit counted
# twice, a 429 nobody asked for). The claim lives CLAIM_SECONDS and is renewed while the run lasts.
REDIS_CLAIM = "minimarket-tests:run"  # who holds the database now (host:pid), with a TTL
REDIS_MARK = "minimarket-tests:db"  # set once a test run used the database: another run may take it
CLAIM_SECONDS = 60


def _claim_redis_db(url: str) -> str:
    """`url` if no other live test run holds its database, else the first other database (15 down to 0)
    that is free and empty or used only by test runs; the one taken is held until this process exits.

    Without Redis the URL is returned as is (need_redis() skips or fails the tests that need it).
    """
    first = make_url(url)
    preferred = int(first.database or 0)
    me = f"{socket.gethostname()}:{os.getpid()}"
    for number in [preferred, *(n for n in range(15, -1, -1) if n != preferred)]:
        candidate = first.set(database=str(number)).render_as_string(hide_password=False)
        try:
            client = redis.Redis.from_url(candidate, socket_connect_timeout=1, socket_timeout=5)
            if number != preferred and client.dbsize() and not client.exists(REDIS_MARK):
                continue  # somebody's bench or app data, not a test run's
            if not client.set(REDIS_CLAIM, me, nx=True, ex=CLAIM_SECONDS):
                continue  # another run is using it right now
        except redis.RedisError:
            return url
        client.set(REDIS_MARK, "1")
        _hold(client, me)
        return candidate
    raise RuntimeError(f"ninguna base de Redis libre para las pruebas en {first.host}:{first.port} "
                       "(cada corrida toma una mientras dura)")


def _hold(client: redis.Redis, me: str) -> None:
    """Renew the claim every third of its life while this process runs; drop it at exit."""
    done = threading.Event()
    renew = client.register_script("if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                   "return redis.call('EXPIRE', KEYS[1], ARGV[2]) end return 0")
    release = client.register_script("if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                     "return redis.call('DEL', KEYS[1]) end return 0")

    def keep() -> None:
        while not done.wait(CLAIM_SECONDS / 3):
            try:
                renew(keys=[REDIS_CLAIM], args=[me, CLAIM_SECONDS])
            except redis.RedisError:
                pass  # a Redis test cut the connection for a moment: the next round renews it

    def drop() -> None:
        done.set()
        try:
            release(keys=[REDIS_CLAIM], args=[me])
        except redis.RedisError:
            pass

    threading.Thread(target=keep, name="redis-claim", daemon=True).start()
    atexit.register(drop)


REDIS_URL = _claim_redis_db(os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))


def _pg_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://") else url


PG_URL = _pg_url(PG_URL)


@cache
def pg_available() -> bool:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001
        return False


@cache
def redis_available() -> bool:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
        return True
    except Exception:  # noqa: BLE001
        return False


def need_postgres() -> None:
    if not pg_available():
        skip_outside_ci(f"PostgreSQL no responde en {PG_URL} (definí TEST_POSTGRES_URL)")


def need_redis() -> None:
    if not redis_available():
        skip_outside_ci(f"Redis no responde en {REDIS_URL} (definí TEST_REDIS_URL)")


def admin_engine():  # noqa: ANN202
    return create_engine(PG_URL, isolation_level="AUTOCOMMIT")


def pg_url_for(name: str) -> str:
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def create_pg_database(template: str | None = None) -> str:
    """A new empty (or template-copied) PostgreSQL database; returns its URL."""
    name = f"mm_t_{uuid.uuid4().hex[:12]}"
    engine = admin_engine()
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    engine.dispose()
    return pg_url_for(name)


def drop_pg_database(url: str) -> None:
    name = make_url(url).database
    engine = admin_engine()
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


class ReusedPgDatabase:
    """One PostgreSQL database for a whole session, put back to the freshly migrated state before each test.

    Creating a database from the template and dropping it (the drop waits for a checkpoint) cost
    0.5-3 s per test on a loaded 2-core machine, more than most tests themselves. Putting it back
    costs a few milliseconds: every table emptied with its triggers (foreign keys) off, the
    migration's own rows copied back (COPY text, exact for every type) and every sequence set where
    the template has it, all in one transaction. Connections a test left open are ended first, like
    DROP ... WITH (FORCE) did. When the schema is not the template's any more (a test downgraded
    it, a restore replaced the database), the database is made again from the template.
    """

    def __init__(self, template: str):
        self._template = template
        self.url = create_pg_database(template)
        self._engine = create_engine(self.url, poolclass=NullPool)
        with self._engine.connect() as conn:
            self._tables = _public_tables(conn)
            seed = {table: _copy_out(conn, table) for table in self._tables if table != "alembic_version"}
            self._seed = {table: data for table, data in seed.items() if data}
            self._sequences = conn.exec_driver_sql(
                "SELECT schemaname || '.' || sequencename, start_value, last_value FROM pg_sequences "
                "WHERE schemaname = 'public'").all()

    def fresh(self) -> str:
        """The database's URL, as migrated and nothing else."""
        try:
            self._put_back()
        except Exception:  # noqa: BLE001 - a schema the previous test changed or replaced: start over
            self._engine.dispose()
            drop_pg_database(self.url)
            self.url = create_pg_database(self._template)
            self._engine = create_engine(self.url, poolclass=NullPool)
        return self.url

    def _put_back(self) -> None:
        with self._engine.connect() as conn:
            conn.exec_driver_sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            if _public_tables(conn) != self._tables:
                raise RuntimeError("the schema changed")
            # One round trip for the emptying and one for the sequences (it was one per statement, ~50,
            # before every PostgreSQL test); the commit does not wait for the disk: a test database.
            cursor = conn.connection.driver_connection.cursor()
            cursor.execute("SET LOCAL lock_timeout = '10s'; SET LOCAL synchronous_commit = off; "
                           "SET LOCAL session_replication_role = replica; "  # no FK triggers while emptying
                           + "".join(f'DELETE FROM "{table}"; ' for table in self._tables if table != "alembic_version"))
            for table, data in self._seed.items():
                _copy_in(conn, table, data)
            if self._sequences:
                cursor.execute("SELECT " + ", ".join(
                    f"setval('{name.replace(chr(39), chr(39) * 2)}'::regclass, {int(start if last is None else last)}, "
                    f"{'true' if last is not None else 'false'})" for name, start, last in self._sequences))
            conn.commit()

    def close(self) -> None:
        self._engine.dispose()
        drop_pg_database(self.url)


def _public_tables(conn) -> list[str]:  # noqa: ANN001
    return list(conn.exec_driver_sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                     "ORDER BY tablename").scalars())


def _copy_out(conn, table: str) -> bytes:  # noqa: ANN001
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f'COPY "{table}" TO STDOUT') as copy:
        return b"".join(bytes(chunk) for chunk in copy)


def _copy_in(conn, table: str, data: bytes) -> None:  # noqa: ANN001
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f'COPY "{table}" FROM STDIN') as copy:
        copy.write(data)


def make_settings(database_url: str, **overrides) -> Settings:  # noqa: ANN003
    # /health answers from its last check for HEALTH_CACHE_SECONDS; tests that break a dependency and ask
    # again at once want a fresh check (test_read_cache.py tests the cached answer itself).
    overrides.setdefault("health_cache_seconds", 0)
    return Settings(_env_file=None, database_url=database_url, minimarket_env="development", **overrides)


def skip_outside_ci(message: str) -> NoReturn:
    """A dependency of this test is missing: skip it here, fail it in CI (where everything must run)."""
    if IN_CI:
        pytest.fail(f"{message} y CI exige estas pruebas")
    pytest.skip(message)


@contextmanager
def sqlite_copy(template: Path) -> Iterator[Database]:
    """A Database on a throw-away copy of a SQLite template file (one example of a property test)."""
    folder = Path(tempfile.mkdtemp(prefix="mm-copy-"))
    shutil.copy(template, folder / "minimarket.db")
    db = Database(f"sqlite:///{folder / 'minimarket.db'}")
    try:
        yield db
    finally:
        db.dispose()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def pg_put_back(seeded: ReusedPgDatabase) -> Iterator[Database]:
    """A Database on `seeded`, put back to its template first (one example of a property test)."""
    db = Database(seeded.fresh())
    try:
        yield db
    finally:
        db.dispose()
