"""encrypted secrets: store settings move to `ajustes`; `system_config` holds the encrypted secrets

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:00:00

* `system_config` (key-value store settings) is renamed to `ajustes`, data kept, and its
  primary key renamed to `pk_ajustes` so the naming convention still holds.
* A new single-row `system_config` (id = 1) holds the secrets as *_encrypted blobs
  (format: minimarket.platform.crypto).
* PostgreSQL only: pgcrypto and the SQL functions encrypt_data(text, text) -> bytea and
  decrypt_data(bytea, text) -> text, the same format as the Python side, so an operator can
  check a secret from psql (runbook PB5).

Downgrade drops the functions and the secrets table (the secrets are lost; set them again
with `minimarket secret set`) and renames `ajustes` back. pgcrypto stays installed: other
objects may use it, and it holds no data.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# Byte offsets follow minimarket.platform.crypto (SQL substring() is 1-based):
# 1: version 0x01 | 2..9: key id | 10..25: IV | 26..n-32: AES-256-CBC | n-31..n: HMAC-SHA256.
# The tags are compared through a second HMAC so the comparison time says nothing about them.
ENCRYPT_DATA = r"""
CREATE OR REPLACE FUNCTION encrypt_data(plaintext text, key text) RETURNS bytea
LANGUAGE plpgsql VOLATILE PARALLEL SAFE
SET search_path = {schema}, pg_temp
AS $fn$
DECLARE
    master bytea;
    iv bytea;
    body bytea;
BEGIN
    IF key IS NULL OR key !~ '^[0-9a-fA-F]{{64}}$' THEN
        RAISE EXCEPTION 'encrypt_data failed: la clave debe tener exactamente 64 caracteres hexadecimales'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF plaintext IS NULL THEN
        RETURN NULL;
    END IF;
    master := decode(key, 'hex');
    iv := gen_random_bytes(16);
    body := decode('01', 'hex')
        || substring(digest(master, 'sha256') FROM 1 FOR 8)
        || iv
        || encrypt_iv(convert_to(plaintext, 'UTF8'), hmac(convert_to('minimarket-enc', 'UTF8'), master, 'sha256'),
                      iv, 'aes-cbc/pad:pkcs');
    RETURN body || hmac(body, hmac(convert_to('minimarket-mac', 'UTF8'), master, 'sha256'), 'sha256');
END
$fn$
"""

DECRYPT_DATA = r"""
CREATE OR REPLACE FUNCTION decrypt_data(ciphertext bytea, key text) RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = {schema}, pg_temp
AS $fn$
DECLARE
    n integer;
    master bytea;
    mac_key bytea;
    stored_id bytea;
    expected_id bytea;
    body bytea;
    plain bytea;
BEGIN
    -- The key first: a bad key is reported even when the secret is not set.
    IF key IS NULL OR key !~ '^[0-9a-fA-F]{{64}}$' THEN
        RAISE EXCEPTION 'decrypt_data failed: la clave debe tener exactamente 64 caracteres hexadecimales'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF ciphertext IS NULL THEN
        RETURN NULL;  -- the secret is not set
    END IF;
    n := length(ciphertext);
    IF n < 73 OR (n - 57) % 16 <> 0 THEN
        RAISE EXCEPTION 'decrypt_data failed: formato desconocido: % bytes no es un largo válido (datos truncados o ajenos)', n
            USING ERRCODE = 'data_exception';
    END IF;
    IF get_byte(ciphertext, 0) <> 1 THEN
        RAISE EXCEPTION 'decrypt_data failed: formato desconocido: versión % (se lee la 1)', get_byte(ciphertext, 0)
            USING ERRCODE = 'data_exception';
    END IF;
    master := decode(key, 'hex');
    stored_id := substring(ciphertext FROM 2 FOR 8);
    expected_id := substring(digest(master, 'sha256') FROM 1 FOR 8);
    IF stored_id <> expected_id THEN
        RAISE EXCEPTION 'decrypt_data failed: clave distinta: el dato fue cifrado con la clave % y la clave usada es %',
            encode(stored_id, 'hex'), encode(expected_id, 'hex')
            USING ERRCODE = 'data_exception';
    END IF;
    mac_key := hmac(convert_to('minimarket-mac', 'UTF8'), master, 'sha256');
    body := substring(ciphertext FROM 1 FOR n - 32);
    IF hmac(hmac(body, mac_key, 'sha256'), mac_key, 'sha256')
       <> hmac(substring(ciphertext FROM n - 31 FOR 32), mac_key, 'sha256') THEN
        RAISE EXCEPTION 'decrypt_data failed: datos alterados: la firma (HMAC) no coincide; el dato fue modificado o está dañado'
            USING ERRCODE = 'data_exception';
    END IF;
    BEGIN
        plain := decrypt_iv(substring(ciphertext FROM 26 FOR n - 57),
                            hmac(convert_to('minimarket-enc', 'UTF8'), master, 'sha256'),
                            substring(ciphertext FROM 10 FOR 16), 'aes-cbc/pad:pkcs');
        RETURN convert_from(plain, 'UTF8');
    EXCEPTION WHEN OTHERS THEN
        RAISE EXCEPTION 'decrypt_data failed: formato desconocido: el contenido descifrado no es válido'
            USING ERRCODE = 'data_exception';
    END;
END
$fn$
"""


def _settings_table(name: str) -> sa.Table:
    return sa.Table(
        name, sa.MetaData(),
        sa.Column('clave', sa.String(length=100), nullable=False),
        sa.Column('valor', sa.Text(), nullable=True),
        sa.Column('actualizado_en', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('clave', name=f'pk_{name}'),
    )


def _rename_settings(old: str, new: str) -> None:
    op.rename_table(old, new)
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite keeps the constraint name inside the CREATE TABLE text; rebuild the table with the new one.
        with op.batch_alter_table(new, recreate='always', copy_from=_settings_table(new)):
            pass
    else:
        op.execute(sa.text(f'ALTER TABLE {new} RENAME CONSTRAINT pk_{old} TO pk_{new}'))


def _pgcrypto_schema() -> str:
    schema = op.get_bind().execute(sa.text(
        "SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pgcrypto'")).scalar_one()
    return schema


def upgrade() -> None:
    _rename_settings('system_config', 'ajustes')
    secrets = op.create_table(
        'system_config',
        sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('api_key_encrypted', sa.LargeBinary(), nullable=True),
        sa.Column('smtp_password_encrypted', sa.LargeBinary(), nullable=True),
        sa.Column('webhook_secret_encrypted', sa.LargeBinary(), nullable=True),
        sa.Column('actualizado_en', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('id = 1', name=op.f('ck_system_config_single_row')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_system_config')),
    )
    op.bulk_insert(secrets, [{'id': 1, 'actualizado_en': datetime.now(UTC)}])

    if op.get_bind().dialect.name == 'postgresql':
        # Trusted extension since PostgreSQL 13: the database owner may create it.
        op.execute(sa.text('CREATE EXTENSION IF NOT EXISTS pgcrypto'))
        schema = _pgcrypto_schema()
        op.execute(sa.text(ENCRYPT_DATA.format(schema=schema)))
        op.execute(sa.text(DECRYPT_DATA.format(schema=schema)))
        op.execute(sa.text(
            "COMMENT ON FUNCTION decrypt_data(bytea, text) IS "
            "'Descifra un secreto de minimarket (formato v1: AES-256-CBC + HMAC-SHA256) con DATABASE_ENCRYPTION_KEY'"))
        op.execute(sa.text(
            "COMMENT ON FUNCTION encrypt_data(text, text) IS "
            "'Cifra un secreto en el formato de minimarket (v1) con DATABASE_ENCRYPTION_KEY'"))


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(sa.text('DROP FUNCTION IF EXISTS decrypt_data(bytea, text)'))
        op.execute(sa.text('DROP FUNCTION IF EXISTS encrypt_data(text, text)'))
    op.drop_table('system_config')
    _rename_settings('ajustes', 'system_config')
