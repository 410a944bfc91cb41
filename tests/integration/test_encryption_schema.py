"""Migration 0002 of encryption at rest on SQLite and PostgreSQL: the schema at head matches the models,
the settings survive the rename, the migration runs as a non-superuser owner (pgcrypto is trusted), and
the downgrade to 0001 and back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from minimarket.db import Database
from minimarket.migrations.runner import alembic_config, current_revision, head_revision, include_object, upgrade
from minimarket.models import metadata
from minimarket.platform.secrets import get_secret, set_secret
from minimarket.platform.secrets_models import SystemSecrets
from minimarket.stock.policy import negative_stock_allowed, set_negative_stock_allowed
from minimarket.store_settings import NEGATIVE_STOCK, StoreSetting
from tests.helpers import PG_URL, create_pg_database, drop_pg_database, need_postgres
from tests.integration.encryption_helpers import db, key, new_key, sql_decrypt  # noqa: F401  (db, key: the fixtures)


@pytest.fixture
def fresh_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database (no migrations), to migrate step by step."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    need_postgres()
    url = create_pg_database()
    yield url
    drop_pg_database(url)


# --------------------------------------------------------------------------- schema


def test_head_is_applied_and_schema_matches_models(db: Database, backend: str) -> None:
    assert current_revision(db.engine) == head_revision()
    with db.engine.connect() as conn:
        inspector = inspect(conn)
        assert inspector.get_pk_constraint("ajustes")["name"] == "pk_ajustes"
        assert inspector.get_pk_constraint("system_config")["name"] == "pk_system_config"
        assert {c["name"] for c in inspector.get_columns("system_config")} == {
            "id", "api_key_encrypted", "smtp_password_encrypted", "webhook_secret_encrypted",
            "alertmanager_token_encrypted", "actualizado_en"}
        assert [c["name"] for c in inspector.get_check_constraints("system_config")] == ["ck_system_config_single_row"]
        assert conn.execute(text("SELECT id FROM system_config")).scalars().all() == [1]
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"include_object": include_object}), metadata)
        assert diffs == [], diffs
        if backend == "postgresql":
            functions = conn.execute(text(
                "SELECT to_regprocedure('encrypt_data(text,text)') IS NOT NULL, "
                "to_regprocedure('decrypt_data(bytea,text)') IS NOT NULL")).one()
            assert functions == (True, True)
    with pytest.raises(IntegrityError), db.write() as session:  # the CHECK keeps it to one row
        session.add(SystemSecrets(id=2, updated_at=datetime.now(UTC)))


def test_settings_survive_the_rename(fresh_url: str) -> None:
    upgrade(fresh_url, "0001")
    old = sa.Table("system_config", sa.MetaData(), sa.Column("clave", sa.String(100)), sa.Column("valor", sa.Text),
                   sa.Column("actualizado_en", sa.DateTime(timezone=True)))
    database = Database(fresh_url)
    try:
        with database.engine.begin() as conn:
            conn.execute(old.insert(), [
                {"clave": NEGATIVE_STOCK, "valor": "true", "actualizado_en": datetime.now(UTC)},
                {"clave": "otra.cosa", "valor": "ñandú", "actualizado_en": datetime.now(UTC)},
            ])
        database.dispose()
        upgrade(fresh_url)
        with database.read() as session:
            assert negative_stock_allowed(session, default=False) is True
            assert session.get(StoreSetting, "otra.cosa").value == "ñandú"
        with database.write() as session:  # writes go to the renamed table too
            set_negative_stock_allowed(session, allowed=False)
        with database.engine.connect() as conn:
            assert conn.execute(text("SELECT valor FROM ajustes WHERE clave = :c"),
                                {"c": NEGATIVE_STOCK}).scalar_one() == "false"
            assert conn.execute(text("SELECT count(*) FROM system_config")).scalar_one() == 1
    finally:
        database.dispose()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_migration_runs_as_the_non_superuser_database_owner(backend: str) -> None:
    """Production runs migrations as `minimarket`, owner of its database but not superuser:
    pgcrypto is a trusted extension, so the owner may create it."""
    need_postgres()
    role = f"mm_owner_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    url = None
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE'))
        url = create_pg_database()
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{make_url(url).database}" OWNER TO "{role}"'))
        owner_url = make_url(url).set(username=role, password=None).render_as_string(hide_password=False)
        upgrade(owner_url)
        key = new_key()
        database = Database(owner_url)
        try:
            with database.engine.connect() as conn:
                assert conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")).scalar_one() is False
            with database.write() as session:
                set_secret(session, "integration_api_key", "propia", key)
            assert sql_decrypt(database, "api_key_encrypted", key) == "propia"
        finally:
            database.dispose()
    finally:
        if url is not None:
            drop_pg_database(url)
        with admin.connect() as conn:
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


# --------------------------------------------------------------------------- downgrade


def test_downgrade_to_0001_and_upgrade_again(db: Database, backend: str, key: str) -> None:
    with db.write() as session:
        set_negative_stock_allowed(session, allowed=True)
        set_secret(session, "smtp_password", "x", key)
    db.dispose()
    command.downgrade(alembic_config(db.url), "0001")
    assert current_revision(db.engine) == "0001"
    with db.engine.connect() as conn:
        inspector = inspect(conn)
        assert not inspector.has_table("ajustes")
        assert inspector.get_pk_constraint("system_config")["name"] == "pk_system_config"
        assert conn.execute(text("SELECT valor FROM system_config WHERE clave = :c"),
                            {"c": NEGATIVE_STOCK}).scalar_one() == "true"
        if backend == "postgresql":
            assert conn.execute(text("SELECT to_regprocedure('decrypt_data(bytea,text)') IS NULL AND "
                                     "to_regprocedure('encrypt_data(text,text)') IS NULL")).scalar_one()
    db.dispose()
    upgrade(db.url)
    assert current_revision(db.engine) == head_revision()
    with db.read() as session:
        assert negative_stock_allowed(session, default=False) is True
        assert get_secret(session, "smtp_password", key) is None  # downgrade drops the secrets (documented)
    if backend == "postgresql":
        with db.write() as session:
            set_secret(session, "integration_api_key", "de nuevo", key)
        assert sql_decrypt(db, "api_key_encrypted", key) == "de nuevo"
