"""API keys: creation, revocation, lookup. Keys are `mm_<prefix>.<secret>`; only a SHA-256 is kept."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from minimarket.accounts.audit import Context, record_audit
from minimarket.accounts.models import ROLES, ApiKey
from minimarket.errors import InvalidInput, NotFound
from minimarket.platform.read_cache import note_changed
from minimarket.types import utcnow

LAST_USED_RESOLUTION = timedelta(seconds=60)  # avoid a write on every request
AUTH_VERSION = "auth"  # the cache version every revocation bumps (api.gate keeps verified keys under it)
# Bumped by the bookkeeping writes nothing else shows: a key's last use, a user's last login (Configuración shows
# both, and is kept under it: web/kept_pages.py).
LAST_SEEN_VERSION = "last_seen"
_DUMMY_HASH = hashlib.sha256(b"minimarket-no-key").hexdigest()


@dataclass(frozen=True)
class Principal:
    key_id: int
    name: str
    role: str

    @property
    def actor(self) -> str:
        return f"apikey:{self.name}"


def key_digest(key: str) -> str:
    """The stored form of a key (SHA-256, hex): what a cache may keep instead of the key."""
    return _hash(key)


def _hash(key: str) -> str:
    # The secret has 256 bits of entropy, so a fast hash is safe and keeps auth off the hot path.
    return hashlib.sha256(key.encode()).hexdigest()


def _split(key: str) -> str | None:
    if not key.startswith("mm_") or "." not in key:
        return None
    prefix = key[3:].split(".", 1)[0]
    return prefix if 4 <= len(prefix) <= 16 else None


def create_api_key(session: Session, ctx: Context, *, name: str, role: str,
                   user_id: int | None = None) -> tuple[ApiKey, str]:
    """Create a key (optionally a user's own); returns the row and the plaintext key, which is never stored."""
    name = name.strip()
    if not name or len(name) > 80:
        raise InvalidInput("name: el nombre de la clave es obligatorio (máx. 80 caracteres)")
    if role not in ROLES:
        raise InvalidInput(f"role: el rol '{role}' no existe; usá uno de: {', '.join(ROLES)}")
    prefix = secrets.token_hex(4)
    plaintext = f"mm_{prefix}.{secrets.token_urlsafe(32)}"
    row = ApiKey(name=name, prefix=prefix, key_hash=_hash(plaintext), role=role, user_id=user_id)
    session.add(row)
    session.flush()
    record_audit(session, ctx, action="apikey.create", entity="clave_api", entity_id=str(row.id),
                 after={"name": name, "role": role, "prefix": prefix, "user_id": user_id})
    return row, plaintext


def revoke_api_key(session: Session, ctx: Context, *, ref: str, user_id: int | None = None) -> list[ApiKey]:
    """Revoke by prefix or by name (every active key with that name); with `user_id`, only that user's keys."""
    stmt = select(ApiKey).where((ApiKey.prefix == ref) | (ApiKey.name == ref), ApiKey.revoked_at.is_(None))
    if user_id is not None:
        stmt = stmt.where(ApiKey.user_id == user_id)
    rows = session.scalars(stmt).all()
    if not rows:
        raise NotFound(f"No hay una clave activa con prefijo o nombre '{ref}'")
    now = utcnow()
    note_changed(session.info, AUTH_VERSION)  # after the commit, no process accepts these keys from its cache
    for row in rows:
        row.revoked_at = now
        record_audit(session, ctx, action="apikey.revoke", entity="clave_api", entity_id=str(row.id),
                     before={"revoked": False}, after={"revoked": True})
    return list(rows)


def list_api_keys(session: Session, *, user_id: int | None = None) -> list[ApiKey]:
    """Every key, or only one user's own keys."""
    stmt = select(ApiKey).order_by(ApiKey.id)
    if user_id is not None:
        stmt = stmt.where(ApiKey.user_id == user_id)
    return list(session.scalars(stmt).all())


def authenticate(session: Session, presented: str) -> tuple[Principal, bool] | None:
    """The principal behind a presented key, and whether its last-used time is due for a write."""
    found = authenticate_or_reason(session, presented)
    return None if isinstance(found, str) else found


def authenticate_or_reason(session: Session, presented: str) -> tuple[Principal, bool] | str:
    """Like authenticate, but a refused key gives its reason: "invalid" or "revoked"."""
    prefix = _split(presented)
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix)) if prefix else None
    expected = row.key_hash if row is not None else _DUMMY_HASH
    matches = hmac.compare_digest(_hash(presented), expected)
    if row is None or not matches:
        return "invalid"
    if row.revoked_at is not None:  # checked after the hash: a guess is never reported as revoked
        return "revoked"
    due = row.last_used_at is None or utcnow() - row.last_used_at > LAST_USED_RESOLUTION
    return Principal(key_id=row.id, name=row.name, role=row.role), due


def key_prefix(presented: str) -> str | None:
    """The public prefix of a presented key (what `apikey list` shows), safe to log; None if malformed."""
    return _split(presented)


def touch_last_used(session: Session, key_id: int) -> None:
    row = session.get(ApiKey, key_id)
    if row is not None:
        row.last_used_at = utcnow()

