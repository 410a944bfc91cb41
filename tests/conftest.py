"""Shared fixtures: fresh SQLite and PostgreSQL databases from a migrated template, apps, API keys.

PostgreSQL and Redis are real. Outside CI a test that needs an unreachable PostgreSQL or
Redis is skipped; with CI set it fails instead, so CI never silently skips them.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from minimarket.accounts.audit import Context
from minimarket.accounts.keys import create_api_key
from minimarket.apps import create_app
from minimarket.config import Settings
from minimarket.migrations.runner import upgrade

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
        if IN_CI:
            pytest.fail(f"PostgreSQL no responde en {PG_URL} y CI exige estas pruebas")
        pytest.skip("PostgreSQL no disponible (definí TEST_POSTGRES_URL)")


def need_redis() -> None:
    if not redis_available():
        if IN_CI:
            pytest.fail(f"Redis no responde en {REDIS_URL} y CI exige estas pruebas")
        pytest.skip("Redis no disponible (definí TEST_REDIS_URL)")


def _admin_engine():  # noqa: ANN202
    return create_engine(PG_URL, isolation_level="AUTOCOMMIT")


def pg_url_for(name: str) -> str:
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def create_pg_database(template: str | None = None) -> str:
    """A new empty (or template-copied) PostgreSQL database; returns its URL."""
    name = f"mm_t_{uuid.uuid4().hex[:12]}"
    engine = _admin_engine()
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    engine.dispose()
    return pg_url_for(name)


def drop_pg_database(url: str) -> None:
    name = make_url(url).database
    engine = _admin_engine()
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    need_postgres()
    url = create_pg_database()
    upgrade(url)
    yield make_url(url).database
    drop_pg_database(url)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated database of the test's backend."""
    if backend == "sqlite":
        path = tmp_path / "minimarket.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("pg_template")
    url = create_pg_database(template)
    yield url
    drop_pg_database(url)


def make_settings(database_url: str, **overrides) -> Settings:  # noqa: ANN003
    return Settings(_env_file=None, database_url=database_url, minimarket_env="development", **overrides)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
def app(settings: Settings):  # noqa: ANN201
    application = create_app("all", settings)
    yield application
    application.state.db.dispose()


@pytest.fixture
def client(app):  # noqa: ANN001, ANN201
    from fastapi.testclient import TestClient

    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def make_key(app) -> Callable[..., str]:  # noqa: ANN001
    """Create an API key of a role directly in the app's database; returns the plaintext."""

    def make(role: str = "admin", name: str | None = None) -> str:
        with app.state.db.write() as session:
            _, plaintext = create_api_key(session, Context(actor="test"), name=name or f"test-{role}", role=role)
        return plaintext

    return make


@pytest.fixture
def admin(make_key) -> dict[str, str]:  # noqa: ANN001
    return {"X-API-Key": make_key("admin")}
