"""Shared fixtures: fresh SQLite and PostgreSQL databases from a migrated template, apps, API keys.

The helpers they use (test databases, settings, need_postgres/need_redis) are in tests/helpers.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from minimarket.accounts.audit import Context
from minimarket.accounts.keys import create_api_key
from minimarket.apps import create_app
from minimarket.config import Settings
from minimarket.migrations.runner import upgrade
from tests.helpers import (
    REDIS_URL,
    ReusedPgDatabase,
    create_pg_database,
    drop_pg_database,
    make_settings,
    need_postgres,
    need_redis,
)


TESTS = Path(__file__).parent
SLOW_LAYERS = ("e2e", "deploy", "observability")  # each a marker: `pytest -m "not e2e and not deploy …"`


def pytest_report_header() -> str:
    return f"Redis de prueba: {REDIS_URL} (la corrida la toma mientras dura; tests/helpers.py)"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of a slow layer by its directory, so the fast loop can leave them out."""
    for item in items:
        layer = Path(item.path).relative_to(TESTS).parts[0]
        if layer in SLOW_LAYERS:
            item.add_marker(getattr(pytest.mark, layer))


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    need_postgres()
    url = create_pg_database()
    upgrade(url)
    yield make_url(url).database
    drop_pg_database(url)


@pytest.fixture(scope="session")
def pg_reused(pg_template: str) -> Iterator[ReusedPgDatabase]:
    database = ReusedPgDatabase(pg_template)
    yield database
    database.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
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
    # One database for the session, put back to the migrated state before each test (see ReusedPgDatabase).
    yield request.getfixturevalue("pg_reused").fresh()


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


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def module_database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database that one module's tests share, per backend.

    Only for tests whose requests are refused or only read, each checking that it wrote nothing:
    they are many (hundreds of bad bodies) and a database plus an app each cost more than the test.
    """
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("module") / "minimarket.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url = create_pg_database(request.getfixturevalue("pg_template"))
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="module")
def module_app(module_database_url: str):  # noqa: ANN201
    # Hundreds of requests a minute from one key: the limit is not what these tests are about.
    application = create_app("all", make_settings(module_database_url, rate_limit_per_key=1_000_000))
    yield application
    application.state.db.dispose()


@pytest.fixture(scope="module")
def module_client(module_app):  # noqa: ANN001, ANN201
    from fastapi.testclient import TestClient

    with TestClient(module_app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def module_admin(module_app) -> dict[str, str]:  # noqa: ANN001
    with module_app.state.db.write() as session:
        _, plaintext = create_api_key(session, Context(actor="test"), name="test-admin", role="admin")
    return {"X-API-Key": plaintext}


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


@pytest.fixture
def replicas(database_url: str):  # noqa: ANN201
    """Two app instances (each its own in-process cache) on one database and one Redis (test_read_cache,
    test_inventory_lists)."""
    from fastapi.testclient import TestClient

    need_redis()
    # The concurrent tests send thousands of reads a minute with one key: the limiter counts them all.
    settings = make_settings(database_url, redis_url=REDIS_URL, rate_limit_per_key=1_000_000)
    apps = [create_app("all", settings), create_app("all", settings)]
    with TestClient(apps[0]) as first, TestClient(apps[1]) as second:
        yield first, second
    for application in apps:
        application.state.db.dispose()
