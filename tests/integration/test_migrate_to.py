"""`minimarket db migrate-to`: SQLite → PostgreSQL → SQLite with identical checksums, a working copy,
and refusals that leave both databases alone."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import DBAPIError

from minimarket.store_settings import StoreSetting

from minimarket.db import Database
from minimarket.migrations.runner import upgrade
from minimarket.ops.backup import migrate as migrate_module
from minimarket.ops.backup.manifest import describe_url
from minimarket.demo.generator import generate_demo
from minimarket.stock.models import Movement
from minimarket.types import utcnow
from tests.helpers import create_pg_database, drop_pg_database, need_postgres, pg_url_for
from tests.integration.test_backup_restore import ledger_ok, out, post_entry, run_cli, skus

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'origen.db'}"
    upgrade(url)
    db = Database(url)
    try:
        generate_demo(db, products=40, days=10, seed=11)
        post_entry(db, skus(db, 1)[0])  # an audit row with JSON and a movement written by the service layer
    finally:
        db.dispose()
    return url


@pytest.fixture
def pg_target(pg_template: str):  # noqa: ANN201
    """A migrated, otherwise empty PostgreSQL database (the foundation migration seeds a branch and two places)."""
    url = create_pg_database(pg_template)
    yield url
    drop_pg_database(url)


@pytest.fixture
def argentine_pg_target():  # noqa: ANN201
    """An empty PostgreSQL database as an Argentine server makes it: es-AR collation, local time zone.

    Its string order and timestamp output differ from SQLite's, which the checksums must not notice.
    """
    need_postgres()
    name = f"mm_t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(pg_url_for("postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            try:
                conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0 LOCALE_PROVIDER icu '
                                  "ICU_LOCALE 'es-AR' LOCALE 'C.UTF-8'"))
            except DBAPIError:
                conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))  # a build without ICU
            conn.execute(text(f"ALTER DATABASE \"{name}\" SET timezone TO 'America/Argentina/Buenos_Aires'"))
    finally:
        engine.dispose()
    url = pg_url_for(name)
    yield url
    drop_pg_database(url)


def add_settings(url: str, keys: list[str]) -> None:
    """Rows with text primary keys whose locale order differs from byte order (through the model)."""
    db = Database(url)
    try:
        with db.write() as session:
            for key in keys:
                session.add(StoreSetting(key=key, value=key.upper(), updated_at=utcnow()))
    finally:
        db.dispose()


def test_sqlite_to_postgres_and_back_keeps_every_checksum(sqlite_store: str, argentine_pg_target: str,
                                                          tmp_path: Path) -> None:
    pg_target = argentine_pg_target
    add_settings(sqlite_store, ["Zeta", "alfa", "a-b", "ab", "ñandú", "nube", "Ñoquis"])
    source = describe_url(sqlite_store)
    to_pg = run_cli(sqlite_store, "db", "migrate-to", pg_target, "--yes")
    assert to_pg.exit_code == 0, out(to_pg)
    assert "Migración verificada" in to_pg.output
    on_pg = describe_url(pg_target)
    assert on_pg["tables"] == source["tables"]  # the canonical checksums are backend-independent
    assert on_pg["schema_revision"] == source["schema_revision"]
    assert ledger_ok(pg_target)

    # The copy is a working store: sequences were moved past the copied ids.
    db = Database(pg_target)
    try:
        with db.read() as session:
            top = session.scalar(select(func.max(Movement.id)))
        new_id = post_entry(db, skus(db, 1)[0])
    finally:
        db.dispose()
    assert new_id == top + 1
    on_pg = describe_url(pg_target)

    back = f"sqlite:///{tmp_path / 'vuelta.db'}"  # a file that does not exist yet
    to_sqlite = run_cli(pg_target, "db", "migrate-to", back, "--yes")
    assert to_sqlite.exit_code == 0, out(to_sqlite)
    assert describe_url(back)["tables"] == on_pg["tables"]
    assert ledger_ok(back)
    assert describe_url(sqlite_store)["tables"] == source["tables"]  # the source is only read


def test_refuses_a_target_that_already_has_a_store(sqlite_store: str, pg_target: str) -> None:
    db = Database(pg_target)
    try:
        generate_demo(db, products=10, days=2, seed=3)
    finally:
        db.dispose()
    before = describe_url(pg_target)["tables"]
    result = run_cli(sqlite_store, "db", "migrate-to", pg_target, "--yes")
    assert result.exit_code == 1, out(result)
    assert "no está vacía" in result.output and "productos" in result.output
    assert describe_url(pg_target)["tables"] == before


def test_the_target_is_checked_again_inside_the_copy_transaction(sqlite_store: str, pg_target: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Data that appears after the first look (another process, a wrong URL) still stops the copy.
    monkeypatch.setattr(migrate_module, "check_target_empty", lambda *_args: None)
    add_settings(pg_target, ["otra.tienda"])
    before = describe_url(pg_target)["tables"]
    result = run_cli(sqlite_store, "db", "migrate-to", pg_target, "--yes")
    assert result.exit_code == 1, out(result)
    assert "no está vacía" in result.output and "ajustes" in result.output
    assert describe_url(pg_target)["tables"] == before


def test_asks_before_copying(sqlite_store: str, tmp_path: Path) -> None:
    target = tmp_path / "nueva.db"
    result = run_cli(sqlite_store, "db", "migrate-to", f"sqlite:///{target}", input="n\n")
    assert result.exit_code == 1, out(result)
    assert "¿Continuar? (s/n)" in result.output and "Cancelado" in result.output
    assert not target.exists()


def test_a_copy_that_does_not_verify_exits_nonzero(sqlite_store: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    real = migrate_module.describe_url

    def tampered(url: str, progress=None):  # noqa: ANN001, ANN202
        description = real(url, progress)
        description["tables"]["productos"]["sha256"] = "0" * 64  # as if one row had changed on the way
        return description

    monkeypatch.setattr(migrate_module, "describe_url", tampered)
    result = run_cli(sqlite_store, "db", "migrate-to", f"sqlite:///{tmp_path / 'copia.db'}", "--yes")
    assert result.exit_code == 1, out(result)
    assert "NO coincide" in result.output
    assert "contenido distinto" in result.output


def test_refuses_when_the_source_needs_migrations(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'vieja.db'}"
    upgrade(source, "0001")  # an older schema than this code's head
    target = tmp_path / "destino.db"
    result = run_cli(source, "db", "migrate-to", f"sqlite:///{target}", "--yes")
    assert result.exit_code == 1, out(result)
    assert "minimarket db upgrade" in result.output
    assert not target.exists()
