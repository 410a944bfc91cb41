"""The store's secrets, encrypted with DATABASE_ENCRYPTION_KEY in the single row of `system_config`.

Every function works in the caller's session and transaction (``Database.write()`` for
changes). The row is locked (SELECT … FOR UPDATE on PostgreSQL; SQLite's write units of work
already hold the write lock) so that a rotation and a concurrent write cannot interleave.

Invariant: every secret in the row is encrypted under the same key. ``set_secret`` refuses to
add one under a different key than the others (a host with another .env would otherwise
leave the store with mixed keys that nothing can rotate); ``rotate_key`` re-encrypts all or
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from minimarket.platform.crypto import (
    DecryptError,
    blob_key_id,
    decrypt_text,
    encrypt_text,
    key_id,
    validate_key,
)
from minimarket.platform.secrets_models import SINGLE_ROW_ID, SystemSecrets
from minimarket.types import utcnow

SECRET_FIELDS = {
    "integration_api_key": "api_key_encrypted",
    "smtp_password": "smtp_password_encrypted",
    "webhook_secret": "webhook_secret_encrypted",
    # Bearer token Alertmanager presents to POST /api/alerts/webhook (alertmanager.yml credentials_file).
    "alertmanager_webhook_token": "alertmanager_token_encrypted",
}


class UnknownSecret(ValueError):
    """Not one of SECRET_FIELDS."""


class KeyMismatch(DecryptError):
    """The other stored secrets are under another key than the one given."""


@dataclass(frozen=True)
class SecretStatus:
    name: str
    column: str
    is_set: bool
    ok: bool | None  # None when not set
    key_id: str | None  # the key id the stored blob names
    error: str | None


def _column(name: str) -> str:
    try:
        return SECRET_FIELDS[name]
    except KeyError:
        raise UnknownSecret(f"secreto desconocido '{name}'; usá uno de: {', '.join(SECRET_FIELDS)}") from None


def _row(session: Session, *, lock: bool, create: bool = False) -> SystemSecrets | None:
    row = session.get(SystemSecrets, SINGLE_ROW_ID, with_for_update=lock or None, populate_existing=lock)
    if row is None and create:
        # Migration 0002 inserts the row; recreate it if someone deleted it.
        row = SystemSecrets(id=SINGLE_ROW_ID, updated_at=utcnow())
        session.add(row)
        session.flush()
    return row


def set_secret(session: Session, name: str, value: str, key_hex: str) -> None:
    """Encrypt ``value`` under ``key_hex`` and store it as secret ``name``."""
    column = _column(name)
    if not isinstance(value, str) or value == "":
        raise ValueError("el secreto no puede estar vacío")
    current = key_id(key_hex)
    row = _row(session, lock=True, create=True)
    others = {other: blob_key_id(getattr(row, col)) for other, col in SECRET_FIELDS.items()
              if other != name and getattr(row, col) is not None}
    foreign = {other: kid for other, kid in others.items() if kid != current}
    if foreign:
        listed = ", ".join(f"{other} (clave {kid or 'desconocida'})" for other, kid in foreign.items())
        raise KeyMismatch(
            f"clave distinta: la clave usada es {current} pero ya hay secretos con otra: {listed}. "
            "Revisá DATABASE_ENCRYPTION_KEY (¿se rotó la clave y este proceso no se reinició?) "
            "o borrá esos secretos con 'minimarket secret clear'"
        )
    setattr(row, column, encrypt_text(value, key_hex))
    row.updated_at = utcnow()


def clear_secret(session: Session, name: str) -> bool:
    """Remove secret ``name``; True if it was set."""
    column = _column(name)
    row = _row(session, lock=True)
    if row is None or getattr(row, column) is None:
        return False
    setattr(row, column, None)
    row.updated_at = utcnow()
    return True


def get_secret(session: Session, name: str, key_hex: str) -> str | None:
    """The plaintext of secret ``name``, None if not set; DecryptError if it cannot be read with this key."""
    column = _column(name)
    validate_key(key_hex)
    row = _row(session, lock=False)
    blob = None if row is None else getattr(row, column)
    if blob is None:
        return None
    try:
        return decrypt_text(blob, key_hex)
    except DecryptError as exc:
        raise DecryptError(f"{name}: {exc}") from exc


def rotate_key(session: Session, old_key_hex: str, new_key_hex: str) -> int:
    """Re-encrypt every set secret from the old key to the new one; returns how many.

    All or nothing: every secret is decrypted first, and if any fails the DecryptError names
    it and the row is left untouched. The caller's transaction commits the change.
    """
    validate_key(old_key_hex)
    validate_key(new_key_hex)
    if bytes.fromhex(old_key_hex) == bytes.fromhex(new_key_hex):
        raise ValueError("la clave nueva es igual a la actual")
    row = _row(session, lock=True)
    if row is None:
        return 0
    plain: dict[str, str] = {}
    failures: list[str] = []
    for name, column in SECRET_FIELDS.items():
        blob = getattr(row, column)
        if blob is None:
            continue
        try:
            plain[column] = decrypt_text(blob, old_key_hex)
        except DecryptError as exc:
            failures.append(f"{name}: {exc}")
    if failures:
        raise DecryptError("no se rotó ningún secreto; " + "; ".join(failures))
    for column, value in plain.items():
        setattr(row, column, encrypt_text(value, new_key_hex))
    if plain:
        row.updated_at = utcnow()
    return len(plain)


def secrets_status(session: Session, key_hex: str) -> list[SecretStatus]:
    """For each secret: whether it is set and whether it decrypts with ``key_hex`` (never the value)."""
    validate_key(key_hex)
    row = _row(session, lock=False)
    result = []
    for name, column in SECRET_FIELDS.items():
        blob = None if row is None else getattr(row, column)
        if blob is None:
            result.append(SecretStatus(name, column, False, None, None, None))
            continue
        try:
            decrypt_text(blob, key_hex)
            result.append(SecretStatus(name, column, True, True, blob_key_id(blob), None))
        except DecryptError as exc:
            result.append(SecretStatus(name, column, True, False, blob_key_id(blob), str(exc)))
    return result
