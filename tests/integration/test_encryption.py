"""Encryption at rest on SQLite and PostgreSQL: migration 0002, Python <-> SQL format, runbook PB5
in real psql, tampering, key rotation, pg_dump, downgrade, and the `keys` / `secret` CLI."""

from __future__ import annotations

import os
import secrets as pysecrets
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from typer.testing import CliRunner

from minimarket.accounts.models import AuditEntry
from minimarket.migrations.runner import include_object
from minimarket.store_settings import NEGATIVE_STOCK, StoreSetting
from minimarket.config import get_settings
from minimarket.db import Database
from minimarket.migrations.runner import alembic_config, current_revision, head_revision, upgrade
from minimarket.models import metadata
from minimarket.cli import keys as keys_cli
from minimarket.cli.keys import keys_app, secrets_app
from minimarket.platform.crypto import DecryptError, decrypt_text, encrypt_text, key_id
from minimarket.platform.secrets import (
    SECRET_FIELDS,
    KeyMismatch,
    UnknownSecret,
    clear_secret,
    get_secret,
    rotate_key,
    secrets_status,
    set_secret,
)
from minimarket.platform.secrets_models import SystemSecrets
from minimarket.stock.policy import negative_stock_allowed, set_negative_stock_allowed
from tests.helpers import PG_URL, create_pg_database, drop_pg_database, need_postgres, skip_outside_ci

PLAINTEXTS = {
    "integration_api_key": "api-7Hq2-ÑANDÚ-clave-de-integracion",
    "smtp_password": "smtp-p4ss'\"\\;--ñ",
    "webhook_secret": "whsec_" + "x" * 300,
    "alertmanager_webhook_token": "amtok-" + "f0" * 32,
}
PB5_SELECT = ("SELECT decrypt_data(api_key_encrypted, current_setting('minimarket.encryption_key')) "
              "FROM system_config LIMIT 1;")
TOOL_TIMEOUT = 60


def new_key() -> str:
    return pysecrets.token_hex(32)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def key() -> str:
    return new_key()


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


def need_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        skip_outside_ci(f"{name} no está instalado")
    return path


def pg_cli_args(url: str) -> list[str]:
    """Connection flags for psql / pg_dump, like the runbook: -h HOST -U USER [-p PORT] DB."""
    parsed = make_url(url)
    args = ["-h", parsed.host or "127.0.0.1", "-U", parsed.username or "postgres", "-p", str(parsed.port or 5432)]
    return [*args, parsed.database]


def tool_env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = "5"
    password = make_url(url).password
    if password:
        env["PGPASSWORD"] = password
    env.update(extra)
    return env


def psql(url: str, *args: str, stdin: str | None = None, env: dict[str, str] | None = None):
    return subprocess.run([need_tool("psql"), "-X", *pg_cli_args(url), *args], input=stdin, capture_output=True,
                          text=True, timeout=TOOL_TIMEOUT, env=env or tool_env(url), check=False)


def sql_decrypt(db: Database, column: str, key_hex: str) -> str | None:
    with db.engine.connect() as conn:
        return conn.execute(text(f"SELECT decrypt_data({column}, :k) FROM system_config LIMIT 1"),
                            {"k": key_hex}).scalar_one()


def sql_error(db: Database, sql: str, params: dict) -> str:
    with db.engine.connect() as conn, pytest.raises(DBAPIError) as info:
        conn.execute(text(sql), params).all()
    return str(info.value.orig)


def set_all(db: Database, key_hex: str) -> None:
    with db.write() as session:
        for name, value in PLAINTEXTS.items():
            set_secret(session, name, value, key_hex)


def blobs(db: Database) -> dict[str, bytes | None]:
    with db.read() as session:
        row = session.get(SystemSecrets, 1)
        return {column: getattr(row, column) for column in SECRET_FIELDS.values()}


def write_blob(db: Database, column: str, blob: bytes | None) -> None:
    with db.write() as session:
        setattr(session.get(SystemSecrets, 1), column, blob)


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


# --------------------------------------------------------------------------- service


def test_service_round_trip_and_status(db: Database, key: str) -> None:
    with db.read() as session:
        assert all(not s.is_set and s.ok is None for s in secrets_status(session, key))
        assert get_secret(session, "smtp_password", key) is None
    set_all(db, key)
    with db.read() as session:
        for name, value in PLAINTEXTS.items():
            assert get_secret(session, name, key) == value
        statuses = secrets_status(session, key)
    assert [(s.name, s.is_set, s.ok, s.key_id) for s in statuses] == [
        (name, True, True, key_id(key)) for name in SECRET_FIELDS]
    for column, blob in blobs(db).items():
        assert isinstance(blob, bytes) and len(blob) >= 73
        assert all(value.encode() not in blob for value in PLAINTEXTS.values()), column
    with db.write() as session, pytest.raises(UnknownSecret, match="integration_api_key"):
        set_secret(session, "api_key", "x", key)
    with db.write() as session, pytest.raises(ValueError, match="vacío"):
        set_secret(session, "smtp_password", "", key)


def test_a_second_key_is_refused_and_clear_unblocks(db: Database, key: str) -> None:
    other = new_key()
    with db.write() as session:
        set_secret(session, "integration_api_key", "uno", key)
    with db.write() as session, pytest.raises(KeyMismatch) as info:
        set_secret(session, "smtp_password", "dos", other)
    assert key_id(key) in str(info.value) and "integration_api_key" in str(info.value)
    assert blobs(db)["smtp_password_encrypted"] is None
    with db.write() as session:
        assert clear_secret(session, "integration_api_key") is True
        assert clear_secret(session, "integration_api_key") is False
        set_secret(session, "smtp_password", "dos", other)
    with db.read() as session:
        assert get_secret(session, "smtp_password", other) == "dos"
        assert get_secret(session, "integration_api_key", other) is None


@pytest.mark.parametrize("position", [0, 4, 12, 40, -1])
def test_tampered_ciphertext_is_refused(db: Database, backend: str, key: str, position: int) -> None:
    with db.write() as session:
        set_secret(session, "integration_api_key", PLAINTEXTS["integration_api_key"], key)
    blob = blobs(db)["api_key_encrypted"]
    index = position % len(blob)
    expected = "formato desconocido" if index == 0 else "clave distinta" if index < 9 else "datos alterados"
    if backend == "postgresql":
        with db.engine.begin() as conn:  # tamper inside the database, as an attacker with SQL would
            conn.execute(text("UPDATE system_config SET api_key_encrypted = "
                              "set_byte(api_key_encrypted, :i, get_byte(api_key_encrypted, :i) # 1)"), {"i": index})
        message = sql_error(db, "SELECT decrypt_data(api_key_encrypted, :k) FROM system_config", {"k": key})
        assert message.startswith(f"decrypt_data failed: {expected}"), message
        assert PLAINTEXTS["integration_api_key"] not in message
    else:
        tampered = bytearray(blob)
        tampered[index] ^= 1
        write_blob(db, "api_key_encrypted", bytes(tampered))
    assert blobs(db)["api_key_encrypted"] != blob
    with db.read() as session:
        with pytest.raises(DecryptError, match=expected):
            get_secret(session, "integration_api_key", key)
        [status] = [s for s in secrets_status(session, key) if s.name == "integration_api_key"]
    assert status.is_set and status.ok is False and expected in status.error


# --------------------------------------------------------------------------- Python <-> SQL


TRICKY = ["", "a", "x" * 15, "x" * 16, "x" * 17, "ñandú €", "emoji 🧉🚚", "'; DROP TABLE ajustes; --", "back\\slash",
          "línea\nnueva\ttab", "z" * 2000]


@pytest.mark.parametrize("backend", ["postgresql"])
def test_python_and_sql_read_each_other(db: Database, key: str) -> None:
    with db.write() as session:
        set_secret(session, "integration_api_key", PLAINTEXTS["integration_api_key"], key)
    assert sql_decrypt(db, "api_key_encrypted", key) == PLAINTEXTS["integration_api_key"]
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE system_config SET webhook_secret_encrypted = encrypt_data('x', :k)"), {"k": key})
    with db.read() as session:
        assert get_secret(session, "webhook_secret", key) == "x"
    with db.engine.connect() as conn:
        for value in TRICKY:
            from_sql = conn.execute(text("SELECT encrypt_data(:v, :k)"), {"v": value, "k": key}).scalar_one()
            assert decrypt_text(from_sql, key) == value
            assert len(from_sql) == len(encrypt_text(value, key))
            back = conn.execute(text("SELECT decrypt_data(:b, :k)"), {"b": encrypt_text(value, key), "k": key})
            assert back.scalar_one() == value
        assert conn.execute(text("SELECT decrypt_data(NULL, :k)"), {"k": key}).scalar_one() is None
        two = conn.execute(text("SELECT encrypt_data('y', :k), encrypt_data('y', :k)"), {"k": key}).one()
        assert two[0] != two[1]  # a random IV per call in SQL too
        assert bytes(two[0][1:9]).hex() == key_id(key)


@pytest.mark.parametrize("backend", ["postgresql"])
def test_sql_refuses_wrong_and_malformed_keys(db: Database, key: str) -> None:
    with db.write() as session:
        set_secret(session, "integration_api_key", "valor", key)
    other = new_key()
    message = sql_error(db, "SELECT decrypt_data(api_key_encrypted, :k) FROM system_config", {"k": other})
    assert message.startswith("decrypt_data failed: clave distinta")
    assert key_id(key) in message and key_id(other) in message and key not in message and other not in message
    for bad in ["", "abc", key[:-1], key + "0", "g" + key[1:], key + "\n", None]:
        message = sql_error(db, "SELECT decrypt_data(api_key_encrypted, :k) FROM system_config", {"k": bad})
        assert message.startswith("decrypt_data failed: la clave debe tener exactamente 64"), (bad, message)
        message = sql_error(db, "SELECT encrypt_data('x', :k)", {"k": bad})
        assert message.startswith("encrypt_data failed: la clave debe tener exactamente 64"), (bad, message)
    for blob in [b"", b"\x01", encrypt_text("v", key)[:-1], b"\x02" + encrypt_text("v", key)[1:]]:
        message = sql_error(db, "SELECT decrypt_data(:b, :k)", {"b": blob, "k": key})
        assert message.startswith("decrypt_data failed: formato desconocido"), message


@pytest.mark.parametrize("backend", ["postgresql"])
def test_runbook_pb5_in_real_psql(db: Database, key: str) -> None:
    with db.write() as session:
        set_secret(session, "integration_api_key", PLAINTEXTS["integration_api_key"], key)
    url = db.url
    # 1. The runbook's heredoc: the key travels on stdin, not on the command line.
    heredoc = f"SET minimarket.encryption_key = '{key}';\n{PB5_SELECT}\n"
    ok = psql(url, "-v", "ON_ERROR_STOP=1", stdin=heredoc)
    assert ok.returncode == 0, ok.stderr
    assert PLAINTEXTS["integration_api_key"] in ok.stdout
    # 2. Two -c in one session.
    ok = psql(url, "-c", f"SET minimarket.encryption_key = '{key}'", "-c", PB5_SELECT)
    assert ok.returncode == 0 and PLAINTEXTS["integration_api_key"] in ok.stdout, ok.stderr
    # 3. The key as a session setting from the environment: in no SQL text at all.
    ok = psql(url, "-c", PB5_SELECT, env=tool_env(url, PGOPTIONS=f"-c minimarket.encryption_key={key}"))
    assert ok.returncode == 0 and PLAINTEXTS["integration_api_key"] in ok.stdout, ok.stderr

    # 4. The heredoc exactly as security/DATA_ENCRYPTION.md documents it.
    doc = (Path(__file__).resolve().parents[2] / "security" / "DATA_ENCRYPTION.md").read_text(encoding="utf-8")
    documented = doc.split("inventario_retail <<EOF\n", 1)[1].split("\nEOF\n", 1)[0]
    assert "SET minimarket.encryption_key" in documented and "decrypt_data(api_key_encrypted" in documented
    ok = psql(url, "-v", "ON_ERROR_STOP=1", stdin=documented.replace("${DATABASE_ENCRYPTION_KEY}", key) + "\n")
    assert ok.returncode == 0 and PLAINTEXTS["integration_api_key"] in ok.stdout, ok.stderr

    other = new_key()
    for bad, cause in [(other, f"clave distinta: el dato fue cifrado con la clave {key_id(key)}"),
                       (key[:40], "la clave debe tener exactamente 64 caracteres hexadecimales")]:
        failed = psql(url, "-v", "ON_ERROR_STOP=1", stdin=f"SET minimarket.encryption_key = '{bad}';\n{PB5_SELECT}\n")
        assert failed.returncode != 0
        assert f"decrypt_data failed: {cause}" in failed.stderr, failed.stderr
        assert PLAINTEXTS["integration_api_key"] not in failed.stdout + failed.stderr
        failed = psql(url, "-c", f"SET minimarket.encryption_key = '{bad}'", "-c", PB5_SELECT)
        assert failed.returncode != 0 and f"decrypt_data failed: {cause}" in failed.stderr, failed.stderr


# --------------------------------------------------------------------------- rotation


def test_rotate_key_re_encrypts_everything(db: Database, backend: str, key: str) -> None:
    new = new_key()
    with db.write() as session:
        assert rotate_key(session, key, new) == 0  # nothing set yet
    set_all(db, key)
    before = blobs(db)
    with db.write() as session:
        assert rotate_key(session, key, new) == len(SECRET_FIELDS)
    after = blobs(db)
    assert all(after[c] != before[c] and after[c][1:9].hex() == key_id(new) for c in after)
    with db.read() as session:
        for name, value in PLAINTEXTS.items():
            assert get_secret(session, name, new) == value
            with pytest.raises(DecryptError, match="clave distinta"):
                get_secret(session, name, key)
        assert all(s.ok for s in secrets_status(session, new))
        assert not any(s.ok for s in secrets_status(session, key))
    if backend == "postgresql":
        assert sql_decrypt(db, "smtp_password_encrypted", new) == PLAINTEXTS["smtp_password"]
    with db.write() as session, pytest.raises(ValueError, match="igual"):
        rotate_key(session, new, new.upper())


def test_failed_rotation_changes_nothing(db: Database, key: str) -> None:
    third, new = new_key(), new_key()
    with db.write() as session:
        set_secret(session, "integration_api_key", "uno", key)
        set_secret(session, "smtp_password", "dos", key)
    write_blob(db, "webhook_secret_encrypted", encrypt_text("tres", third))  # under a third key
    before = blobs(db)
    with db.write() as session:  # the transaction commits: the service itself must have changed nothing
        with pytest.raises(DecryptError) as info:
            rotate_key(session, key, new)
    assert "no se rotó ningún secreto" in str(info.value) and "webhook_secret" in str(info.value)
    assert key_id(third) in str(info.value)
    assert blobs(db) == before
    with db.read() as session:
        assert get_secret(session, "integration_api_key", key) == "uno"
        assert get_secret(session, "webhook_secret", third) == "tres"


# --------------------------------------------------------------------------- at rest


def test_no_plaintext_at_rest(db: Database, backend: str, key: str) -> None:
    control = "valor-de-control-visible-8k2j"
    with db.write() as session:
        session.add(StoreSetting(key="prueba.control", value=control, updated_at=datetime.now(UTC)))
    set_all(db, key)
    if backend == "postgresql":
        need_postgres()
        dump = subprocess.run([need_tool("pg_dump"), *pg_cli_args(db.url)], capture_output=True, timeout=TOOL_TIMEOUT,
                              env=tool_env(db.url), check=False)
        assert dump.returncode == 0, dump.stderr.decode(errors="replace")
        raw = dump.stdout
        for blob in blobs(db).values():  # the secrets are in the dump, encrypted
            assert b"\\x" + blob.hex().encode() in raw
    else:
        db.dispose()
        path = Path(make_url(db.url).database)
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert control.encode() in raw  # the scan does see plaintext that is stored as such
    for value in PLAINTEXTS.values():
        assert value.encode() not in raw
        assert value.encode()[:12] not in raw
    assert key.encode() not in raw and key.upper().encode() not in raw


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


# --------------------------------------------------------------------------- CLI

runner = CliRunner()


@pytest.fixture
def cli_env(database_url: str, key: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # no stray .env
    return {"DATABASE_URL": database_url, "DATABASE_ENCRYPTION_KEY": key, "MINIMARKET_ENV": "development",
            "COLUMNS": "200"}


def invoke(app, args: list[str], env: dict[str, str], input: str | None = None):  # noqa: ANN001, ANN201, A002
    get_settings.cache_clear()
    try:
        return runner.invoke(app, args, env=env, input=input)
    finally:
        get_settings.cache_clear()


def flat(output: str) -> str:
    return " ".join(output.split())


def test_cli_generate_prints_a_fresh_key() -> None:
    first, second = (runner.invoke(keys_app, ["generate"]) for _ in range(2))
    assert first.exit_code == 0 and second.exit_code == 0
    assert len(first.stdout.strip()) == 64 and int(first.stdout.strip(), 16) >= 0
    assert first.stdout.strip() != second.stdout.strip()
    assert key_id(first.stdout.strip()) in first.stderr


def test_cli_secret_set_get_status(cli_env: dict[str, str], database_url: str, key: str,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    value = PLAINTEXTS["smtp_password"]
    result = invoke(secrets_app, ["set", "smtp_password"], cli_env, input=value + "\n")  # from stdin
    assert result.exit_code == 0, result.output
    assert value not in result.output and key_id(key) in result.output

    monkeypatch.setattr(keys_cli, "_stdin_is_tty", lambda: True)  # the hidden prompt, with confirmation
    result = invoke(secrets_app, ["set", "webhook_secret"], cli_env, input="oculto-123\noculto-123\n")
    assert result.exit_code == 0, result.output
    assert "oculto-123" not in result.output

    result = invoke(secrets_app, ["get", "smtp_password"], cli_env)
    assert result.exit_code == 0 and value not in result.output and "se descifra" in result.output
    result = invoke(secrets_app, ["get", "smtp_password", "--show"], cli_env)
    assert result.exit_code == 0 and result.stdout == value + "\n"
    result = invoke(secrets_app, ["get", "integration_api_key"], cli_env)
    assert result.exit_code == 1 and "no está cargado" in result.output
    result = invoke(secrets_app, ["get", "nada"], cli_env)
    assert result.exit_code == 2 and "integration_api_key" in result.output

    result = invoke(keys_app, ["status"], cli_env)
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    assert f"id {key_id(key)}" in out and "integration_api_key: no cargado" in out
    assert out.count("OK, se descifra") == 2 and f"smtp_password: OK, se descifra (clave {key_id(key)})" in out

    result = invoke(keys_app, ["status"], {**cli_env, "DATABASE_ENCRYPTION_KEY": new_key()})
    assert result.exit_code == 1 and flat(result.output).count("FALLA: clave distinta") == 2, result.output
    result = invoke(secrets_app, ["set", "integration_api_key", "--value", "z"],
                    {**cli_env, "DATABASE_ENCRYPTION_KEY": new_key()})
    assert result.exit_code == 1 and "No se guardó" in result.output  # would mix two keys

    database = Database(database_url)
    try:
        with database.read() as session:
            entries = session.execute(select(AuditEntry.entity_id, AuditEntry.after)
                                      .where(AuditEntry.action == "secrets.set")).all()
    finally:
        database.dispose()
    assert sorted(entity_id for entity_id, _ in entries) == ["smtp_password", "webhook_secret"]
    assert all(after == {"key_id": key_id(key)} for _, after in entries)

    result = invoke(secrets_app, ["clear", "webhook_secret", "--yes"], cli_env)
    assert result.exit_code == 0 and "borrado" in result.output
    result = invoke(secrets_app, ["get", "webhook_secret"], cli_env)
    assert result.exit_code == 1


def test_cli_rotate(cli_env: dict[str, str], database_url: str, key: str) -> None:
    for name, value in PLAINTEXTS.items():
        assert invoke(secrets_app, ["set", name, "--value", value], cli_env).exit_code == 0
    database = Database(database_url)
    try:
        before = blobs(database)
        for bad, reason in [("abc", "64 caracteres"), (key + "\n", "64 caracteres"), (key, "igual a la actual"),
                            (key.upper(), "igual a la actual")]:
            result = invoke(keys_app, ["rotate", "--new-key", bad, "--yes"], cli_env)
            assert result.exit_code == 2 and reason in flat(result.output), result.output
        new = new_key()
        result = invoke(keys_app, ["rotate", "--new-key", new], cli_env, input="n\n")  # not confirmed
        assert result.exit_code == 1
        assert blobs(database) == before

        result = invoke(keys_app, ["rotate", "--new-key", new, "--yes"], cli_env)
        assert result.exit_code == 0, result.output
        out = flat(result.output)
        assert f"{len(SECRET_FIELDS)} secreto(s) re-cifrado(s) con la clave nueva (id {key_id(new)})" in out
        assert "DATABASE_ENCRYPTION_KEY" in out and ".env.production" in out and "reiniciá los servicios" in out
        assert new not in result.output and key not in result.output

        rotated = {**cli_env, "DATABASE_ENCRYPTION_KEY": new}
        result = invoke(secrets_app, ["get", "integration_api_key", "--show"], rotated)
        assert result.stdout == PLAINTEXTS["integration_api_key"] + "\n"
        assert invoke(keys_app, ["status"], rotated).exit_code == 0
        assert invoke(keys_app, ["status"], cli_env).exit_code == 1  # the old key no longer reads them

        # A secret under a third key: the rotation refuses and changes nothing.
        write_blob(database, "webhook_secret_encrypted", encrypt_text("tres", new_key()))
        before = blobs(database)
        result = invoke(keys_app, ["rotate", "--new-key", new_key(), "--yes"], rotated)
        assert result.exit_code == 1 and "no se cambió nada" in flat(result.output), result.output
        assert "webhook_secret" in result.output
        assert blobs(database) == before
        with database.read() as session:
            rotations = session.scalars(select(AuditEntry.after).where(AuditEntry.action == "secrets.rotate_key")).all()
        assert rotations == [{"from_key_id": key_id(key), "to_key_id": key_id(new), "secrets": len(SECRET_FIELDS)}]
    finally:
        database.dispose()


def test_cli_rotate_with_hidden_prompt(cli_env: dict[str, str], database_url: str) -> None:
    invoke(secrets_app, ["set", "smtp_password", "--value", "v"], cli_env)
    new = new_key()
    result = invoke(keys_app, ["rotate", "--yes"], cli_env, input=f"{new}\n{new}\n")
    assert result.exit_code == 0, result.output
    assert new not in result.output
    result = invoke(secrets_app, ["get", "smtp_password", "--show"], {**cli_env, "DATABASE_ENCRYPTION_KEY": new})
    assert result.stdout == "v\n"


def test_cli_needs_a_key(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "DATABASE_ENCRYPTION_KEY": ""}
    for app, args in [(keys_app, ["status"]), (keys_app, ["rotate", "--new-key", new_key(), "--yes"]),
                      (secrets_app, ["get", "smtp_password"]), (secrets_app, ["set", "smtp_password", "--value", "v"])]:
        result = invoke(app, args, env)
        assert result.exit_code == 2 and "DATABASE_ENCRYPTION_KEY no está configurada" in result.output, result.output
    result = invoke(keys_app, ["status"], {**cli_env, "DATABASE_ENCRYPTION_KEY": "xyz"})
    assert result.exit_code == 2 and "64 caracteres hexadecimales" in result.output

