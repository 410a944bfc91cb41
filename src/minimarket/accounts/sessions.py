"""Browser sessions of the dashboard: a random cookie token (only its SHA-256 stored) and a CSRF token.

Every page looks its session up. `verified_session` keeps a verified session in this process (by the
token's SHA-256, like api.gate keeps verified API keys) under the "auth" version, which a logout, a
disabled user and a password reset bump after their commit (platform/read_cache.py): the next request
in every process sharing the cache goes back to the database and finds the session gone. Only with
Redis (the ReadCache is disabled otherwise): without it, another process could not tell this one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from minimarket.accounts.audit import Context, record_audit
from minimarket.accounts.keys import AUTH_VERSION
from minimarket.accounts.models import User, WebSession
from minimarket.platform.read_cache import ReadCache, note_changed, note_narrow
from minimarket.types import utcnow

SESSION_COOKIE = "mm_sesion"
CSRF_HEADER = "X-CSRF-Token"  # session-authenticated /api writes from the page's own script send it
IDLE_TIMEOUT = timedelta(hours=12)  # a shift; the session slides while it is used
ACTIVITY_RESOLUTION = timedelta(minutes=5)  # avoid a write on every page


@dataclass(frozen=True)
class SessionUser:
    """Who is behind a session cookie."""

    session_id: str
    user_id: int
    username: str
    role: str
    csrf: str
    refresh_due: bool

    @property
    def actor(self) -> str:
        return f"usuario:{self.username}"

    def csrf_matches(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(self.csrf, presented or "")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def start_session(session: Session, *, user: User, ip: str | None) -> str:
    """Open a session for a user who just logged in; returns the cookie token (never stored)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(WebSession(id=_hash(token), user_id=user.id, csrf=secrets.token_urlsafe(32), created_at=now,
                           expires_at=now + IDLE_TIMEOUT, last_seen_at=now, ip=(ip or "")[:64] or None))
    # Expired sessions of anyone are dropped here: logins are rare, so this keeps the table small.
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    record_audit(session, Context(actor=f"usuario:{user.username}"), action="session.login", entity="usuario",
                 entity_id=str(user.id), after={"ip": ip})
    return token


def _lookup(session: Session, session_id: str) -> tuple[SessionUser, datetime, datetime] | None:
    """(the user, when the session expires, when it was last seen), or None: unknown, expired or disabled."""
    row = session.execute(
        select(WebSession.id, WebSession.csrf, WebSession.expires_at, WebSession.last_seen_at, User.id,
               User.username, User.role, User.active)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.id == session_id)
    ).first()
    now = utcnow()
    if row is None or row.expires_at <= now or not row.active:
        return None
    user = SessionUser(session_id=row[0], user_id=row[4], username=row.username, role=row.role, csrf=row.csrf,
                       refresh_due=_slide_due(row.last_seen_at, now))
    return user, row.expires_at, row.last_seen_at


def load_session(session: Session, token: str | None) -> SessionUser | None:
    """The active user behind a cookie token, or None (unknown, expired, or user disabled)."""
    session_id = session_id_of(token)
    found = None if session_id is None else _lookup(session, session_id)
    return None if found is None else found[0]


def session_id_of(token: str | None) -> str | None:
    """The stored id of a cookie token (its SHA-256); None for no token or one too long to be ours."""
    if not token or len(token) > 200:
        return None
    return _hash(token)


def _slide_due(last_seen: datetime, now: datetime) -> bool:
    return now - last_seen > ACTIVITY_RESOLUTION


def kept_session(kept: ReadCache, session_id: str, token: tuple[str, ...] | None) -> SessionUser | None:
    """The user of a session `verified_session` kept under `token` (the "auth" version, read before),
    if nothing is due: not expired, its idle timeout not due to slide. No I/O (for the event loop);
    None: ask `verified_session`."""
    value = kept.kept(session_id, token, count=False)
    if value is None:
        return None
    user, expires_at, last_seen = value
    now = utcnow()
    return user if expires_at > now and not _slide_due(last_seen, now) else None


def verified_session(db, kept: ReadCache | None, token: str | None) -> SessionUser | None:  # noqa: ANN001
    """The user behind a cookie token, from `kept` when it was verified moments ago; slides the idle
    timeout when due (one write every ACTIVITY_RESOLUTION at most). None: no valid session."""
    session_id = session_id_of(token)
    if session_id is None:
        return None
    value, version = kept.get(session_id, (AUTH_VERSION,)) if kept is not None else (None, None)
    now = utcnow()
    if value is not None and value[1] > now:  # a kept expiry in the past: the database may know a later one
        user, expires_at, last_seen = value
    else:
        with db.read() as session:
            found = _lookup(session, session_id)
        if found is None:
            if kept is not None:
                kept.drop(session_id)
            return None
        user, expires_at, last_seen = found
    if _slide_due(last_seen, now):
        with db.write() as session:
            refresh_session(session, session_id)
            note_narrow(session.info)  # bookkeeping: no cached read depends on it
        expires_at, last_seen = now + IDLE_TIMEOUT, now
    user = replace(user, refresh_due=False)
    if kept is not None:
        kept.put(session_id, (user, expires_at, last_seen), version)
    return user


def refresh_session(session: Session, session_id: str) -> None:
    """Slide the idle timeout of a session in use."""
    row = session.get(WebSession, session_id)
    if row is not None:
        now = utcnow()
        row.last_seen_at, row.expires_at = now, now + IDLE_TIMEOUT


def end_session(session: Session, token: str | None) -> None:
    """Log out: the session row goes, and after the commit no process accepts it from its cache."""
    if token:
        session.execute(delete(WebSession).where(WebSession.id == _hash(token)))
        note_changed(session.info, AUTH_VERSION)


def end_user_sessions(session: Session, user_id: int) -> None:
    """Every session of a user ends (disabled, new password), in every process after the commit."""
    session.execute(delete(WebSession).where(WebSession.user_id == user_id))
    note_changed(session.info, AUTH_VERSION)
