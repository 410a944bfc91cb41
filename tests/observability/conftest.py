"""Fixtures of the observability tests: throwaway TLS material and an all-in-one app on SQLite."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from minimarket.apps import create_app
from minimarket.ops.tls import generate_tls_material
from tests.helpers import make_settings


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.crt, prometheus.crt/.key and alertmanager.crt/.key from the app's own generator; never committed."""
    directory = tmp_path_factory.mktemp("tls")
    generate_tls_material(directory, days=2, ca_days=3)
    return directory


@pytest.fixture
def sqlite_app(sqlite_template: Path, tmp_path: Path) -> Iterator:
    """create_app("all") on a fresh copy of the migrated SQLite template."""
    path = tmp_path / "minimarket.db"
    shutil.copy(sqlite_template, path)
    application = create_app("all", make_settings(f"sqlite:///{path}"))
    yield application
    application.state.db.dispose()
