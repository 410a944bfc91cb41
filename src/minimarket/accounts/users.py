"""People who log in to the dashboard: creation, passwords (argon2), disabling, login with lock-out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.orm import Session

from minimarket.accounts.audit import Context, record_audit
from minimarket.accounts.keys import AUTH_VERSION
from minimarket.accounts.models import ROLES, ApiKey, User
from minimarket.accounts.sessions import end_user_sessions
from minimarket.errors import Conflict, InvalidInput, NotFound
from minimarket.platform.read_cache import note_changed
from minimarket.types import utcnow

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,59}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 200
# Lock-out: from the 5th consecutive failure the account waits 30 s, doubling per failure, up to 15 min.
FREE_ATTEMPTS = 5
FIRST_LOCK = timedelta(seconds=30)
MAX_LOCK = timedelta(minutes=15)

LOGIN_FAILURES = Counter("minimarket_login_failures_total", "Dashboard logins refused, by reason", ["reason"])
LOGIN_LOCKOUTS = Counter("minimarket_login_lockouts_total", "Dashboard accounts locked after repeated failures")
for _reason in ("invalid", "locked", "disabled"):
    LOGIN_FAILURES.labels(_reason)

_hasher = PasswordHasher()


@cache
def dummy_hash() -> str:
    """What a login naming no user is checked against, so it takes as long as a wrong password.

    Made once per process when first asked (an argon2 hash is ~0.2 s of CPU, which every `minimarket`
    command paid at import); an app serving the login page asks at start (web/install.py).
    """
    return _hasher.hash("minimarket-no-such-user")


@dataclass(frozen=True)
class LoginRefused:
    """Why a login failed: `invalid` (wrong user or password), `locked` (and until when), `disabled`."""

    reason: str
    locked_until: datetime | None = None


def normalise_username(raw: str) -> str:
    return (raw or "").strip().lower()


def check_username(raw: str) -> str:
    name = normalise_username(raw)
    if not USERNAME.fullmatch(name):
        raise InvalidInput("username: el usuario debe tener de 3 a 60 caracteres: letras minúsculas, números, "
                           "punto, guion o guion bajo (ej. maria.gomez)")
    return name


def check_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise InvalidInput(f"password: la contraseña debe tener al menos {MIN_PASSWORD} caracteres")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"password: la contraseña puede tener hasta {MAX_PASSWORD} caracteres")
    return password


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"role: el rol '{role}' no existe; usá uno de: {', '.join(ROLES)}")
    return role


def get_user(session: Session, username: str) -> User:
    user = session.scalars(select(User).where(User.username == normalise_username(username))).first()
    if user is None:
        raise NotFound(f"El usuario '{username}' no existe (minimarket user list muestra los que hay)")
    return user


def create_user(session: Session, ctx: Context, *, username: str, role: str, password: str,
                full_name: str | None = None) -> User:
    """A new active user with an argon2 hash of the password."""
    name = check_username(username)
    check_role(role)
    check_password(password)
    if session.scalar(select(User.id).where(User.username == name)) is not None:
        raise Conflict(f"username: el usuario '{name}' ya existe; elegí otro nombre o usá user reset-password")
    user = User(username=name, role=role, full_name=(full_name or "").strip()[:120] or None,
                password_hash=_hasher.hash(password), active=True, failed_logins=0, created_at=utcnow())
    session.add(user)
    session.flush()
    record_audit(session, ctx, action="user.create", entity="usuario", entity_id=str(user.id),
                 after={"username": name, "role": role})
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)).all())


def disable_user(session: Session, ctx: Context, *, username: str) -> User:
    """The user can no longer log in: their sessions end and their API keys are revoked."""
    user = get_user(session, username)
    user.active = False
    end_user_sessions(session, user.id)  # their sessions leave every process's cache too
    now = utcnow()
    note_changed(session.info, AUTH_VERSION)  # their keys leave every process's cache
    for key in session.scalars(select(ApiKey).where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))):
        key.revoked_at = now
    record_audit(session, ctx, action="user.disable", entity="usuario", entity_id=str(user.id),
                 before={"active": True}, after={"active": False})
    return user


def enable_user(session: Session, ctx: Context, *, username: str) -> User:
    user = get_user(session, username)
    user.active, user.failed_logins, user.locked_until = True, 0, None
    record_audit(session, ctx, action="user.enable", entity="usuario", entity_id=str(user.id),
                 before={"active": False}, after={"active": True})
    return user


def reset_password(session: Session, ctx: Context, *, username: str, password: str) -> User:
    """A new password; the lock-out is cleared and every open session of the user ends."""
    user = get_user(session, username)
    check_password(password)
    user.password_hash = _hasher.hash(password)
    user.failed_logins, user.locked_until = 0, None
    end_user_sessions(session, user.id)
    record_audit(session, ctx, action="user.reset_password", entity="usuario", entity_id=str(user.id))
    return user


def lock_duration(failures: int) -> timedelta | None:
    """How long the account waits after `failures` consecutive failures (None: not locked)."""
    if failures < FREE_ATTEMPTS:
        return None
    return min(FIRST_LOCK * (2 ** (failures - FREE_ATTEMPTS)), MAX_LOCK)


def verify_login(session: Session, *, username: str, password: str, now: datetime | None = None) -> User | LoginRefused:
    """Check a login in the caller's write unit of work; failures are counted on the user row."""
    now = now or utcnow()
    user = session.scalars(select(User).where(User.username == normalise_username(username)).with_for_update()).first()
    if user is None or not user.password_hash:
        _verify(dummy_hash(), password)  # same time as a real check: names cannot be probed by timing
        LOGIN_FAILURES.labels("invalid").inc()
        return LoginRefused("invalid")
    if user.locked_until is not None and user.locked_until > now:
        LOGIN_FAILURES.labels("locked").inc()
        return LoginRefused("locked", user.locked_until)
    if not _verify(user.password_hash, password):
        user.failed_logins = (user.failed_logins or 0) + 1
        lock = lock_duration(user.failed_logins)
        if lock is not None:
            user.locked_until = now + lock
            LOGIN_LOCKOUTS.inc()
            LOGIN_FAILURES.labels("invalid").inc()
            return LoginRefused("locked", user.locked_until)
        LOGIN_FAILURES.labels("invalid").inc()
        return LoginRefused("invalid")
    if not user.active:
        LOGIN_FAILURES.labels("disabled").inc()
        return LoginRefused("disabled")
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
