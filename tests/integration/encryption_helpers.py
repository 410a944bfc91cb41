"""Shared by the encryption tests (test_encryption: the ciphers, in Python and in SQL; test_encryption_schema:
migration 0002, its downgrade and the schema; test_encryption_cli: `keys` and `secret`): the secrets they store,
psql and pg_dump as the runbook runs them, reading the stored blobs back, and the fixtures `db` (the store
opened apart from the app) and `key` (a fresh key) that test_encryption and test_encryption_schema import."""

from __future__ import annotations

import os
import secrets as pysecrets
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from minimarket.db import Database
from minimarket.platform.secrets import SECRET_FIELDS, set_secret
from minimarket.platform.secrets_models import SystemSecrets
from tests.helpers import skip_outside_ci

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
    """The store under test, opened apart from the app (test_encryption, test_encryption_schema)."""
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def key() -> str:
    """A fresh encryption key (hex)."""
    return new_key()


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
