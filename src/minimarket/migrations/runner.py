"""Run Alembic from code: `minimarket db upgrade`, `serve` on the embedded SQLite, tests."""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

MIGRATIONS_DIR = Path(__file__).parent


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


@cache
def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


class SchemaCheck:
    """Whether the database is at the code's revision, checked until it once is.

    `serve` on PostgreSQL starts even when the database is unreachable; the first time /health
    reaches it, this tells an un-migrated database apart from a healthy one.
    """

    def __init__(self, verified: bool = False):
        self.verified = verified
        self._lock = threading.Lock()

    def ensure(self, engine: Engine) -> None:
        if self.verified:
            return
        with self._lock:
            current, expected = current_revision(engine), head_revision()
            if current != expected:
                raise SchemaMismatch(f"la base está en la revisión {current or 'vacía'} y el código espera "
                                     f"{expected}: ejecutá minimarket db upgrade")
            self.verified = True


class SchemaMismatch(RuntimeError):
    """The database answers but is not at the revision this code expects."""


def include_object(obj, name, type_, reflected, compare_to):  # noqa: ANN001 (Alembic's hook signature)
    """Autogenerate leaves alone what the models cannot say: PostgreSQL's GIN trigram indexes on
    productos (migration 0009: `ix_productos_<column>_trgm`, PostgreSQL only, for `q=`)."""
    return not (type_ == "index" and reflected and compare_to is None and str(name).endswith("_trgm"))
