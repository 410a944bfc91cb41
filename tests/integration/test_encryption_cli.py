"""The `minimarket keys` and `minimarket secret` commands on SQLite and PostgreSQL: generate, set (stdin,
hidden prompt), get, status, clear, rotate (refusals, confirmation, a secret under a third key), the audit
rows, and a missing or malformed DATABASE_ENCRYPTION_KEY."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from minimarket.accounts.models import AuditEntry
from minimarket.cli import keys as keys_cli
from minimarket.cli.keys import keys_app, secrets_app
from minimarket.config import get_settings
from minimarket.db import Database
from minimarket.platform.crypto import encrypt_text, key_id
from minimarket.platform.secrets import SECRET_FIELDS
from tests.integration.encryption_helpers import PLAINTEXTS, blobs, new_key, write_blob


@pytest.fixture
def key() -> str:
    return new_key()


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

