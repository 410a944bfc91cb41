"""Dashboard fixtures: an app per backend (from tests/conftest.py) with one product in stock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from minimarket.apps import create_app
from tests.helpers import REDIS_URL, make_settings, need_redis
from tests.integration.helpers import create_product


@pytest.fixture
def shop(client, admin):  # noqa: ANN001, ANN201
    """YERBA-1 (barcode 7790001000019, cost 1234.56, 100 in stock) and BAJA-1 (nothing in stock)."""
    create_product(client, admin, "YERBA-1", name="Yerba mate suave 1 kg", barcode="7790001000019",
                   cost="1234.56", price="2000.00", min_stock=5, initial_stock=100, category="Almacén")
    create_product(client, admin, "BAJA-1", name="Producto sin stock", cost="10", price="20", min_stock=2)
    return {"sku": "YERBA-1", "barcode": "7790001000019"}


@pytest.fixture
def replicas(database_url: str) -> Iterator[tuple[TestClient, TestClient]]:
    """Two app instances (each with its own kept sessions and pages) on one database and one Redis."""
    need_redis()
    settings = make_settings(database_url, redis_url=REDIS_URL)
    apps = [create_app("all", settings), create_app("all", settings)]
    with TestClient(apps[0], follow_redirects=False) as first, TestClient(apps[1], follow_redirects=False) as second:
        yield first, second
    for app in apps:
        app.state.db.dispose()
