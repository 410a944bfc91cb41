"""Encryption at rest on SQLite and PostgreSQL: the service (set, get, status, one key), Python <-> SQL
format, runbook PB5 in real psql, tampering, key rotation, and no plaintext in the file or in pg_dump.
The migration and schema are in test_encryption_schema.py, the CLI in test_encryption_cli.py."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from minimarket.db import Database
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
from minimarket.store_settings import StoreSetting
from tests.helpers import need_postgres
from tests.integration.encryption_helpers import (
    PB5_SELECT,
    PLAINTEXTS,
    TOOL_TIMEOUT,
    blobs,
    need_tool,
    new_key,
    pg_cli_args,
    psql,
    set_all,
    sql_decrypt,
    sql_error,
    tool_env,
    write_blob,
)
from tests.integration.encryption_helpers import db, key  # noqa: F401  (the fixtures)


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
