"""Helpers every test layer shares: the test PostgreSQL and Redis, databases made and dropped, settings,
and the one rule for a missing dependency (skip here, fail in CI).

Plain functions (fixtures live in conftest.py). PostgreSQL and Redis are real: outside CI a test
that needs an unreachable one is skipped; with CI set it fails instead, so CI never silently skips.
"""

from __future__ import annotations

import os
import uuid
from functools import cache
from typing import NoReturn

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from minimarket.config import Settings

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = bool(os.environ.get("CI"))


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
