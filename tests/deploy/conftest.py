"""Fixtures of the deploy tests: app processes started by a test and stopped after it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.helpers import Processes


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path, [])
    try:
        yield procs
    finally:
        procs.stop_all()
