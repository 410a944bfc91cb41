"""Fixtures of the deploy tests: app processes started by a test and stopped after it; the nginx stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.helpers import Processes
from tests.deploy.nginx_stack import Stack, running_stack


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path, [])
    try:
        yield procs
    finally:
        procs.stop_all()


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """nginx in front of dashboard, deposito and negocio (tests/deploy/nginx_stack.py), started once for
    test_nginx_config, test_nginx_routing and test_nginx_tls; a test that stops a service starts it again."""
    with running_stack(tmp_path_factory.mktemp("nginx")) as running:
        yield running
