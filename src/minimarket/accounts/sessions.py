"""Browser sessions of the dashboard: a random cookie token (only its SHA-256 stored) and a CSRF token."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from minimarket.accounts.audit import Context, record_audit
from minimarket.accounts.models import User, WebSession
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


def load_session(session: Session, token: str | None) -> SessionUser | None:
    """The active user behind a cookie token, or None (unknown, expired, or user disabled)."""
    if not token or len(token) > 200:
        return None
    row = session.execute(
        select(WebSession.id, WebSession.csrf, WebSession.expires_at, WebSession.last_seen_at, User.id,
               User.username, User.role, User.active)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.id == _hash(token))
    ).first()
    now = utcnow()
    if row is None or row.expires_at <= now or not row.active:
        return None
    return SessionUser(session_id=row[0], user_id=row[4], username=row.username, role=row.role, csrf=row.csrf,
                       refresh_due=now - row.last_seen_at > ACTIVITY_RESOLUTION)


def refresh_session(session: Session, session_id: str) -> None:
    """Slide the idle timeout of a session in use."""
    row = session.get(WebSession, session_id)
    if row is not None:
        now = utcnow()
        row.last_seen_at, row.expires_at = now, now + IDLE_TIMEOUT


def end_session(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(WebSession).where(WebSession.id == _hash(token)))
