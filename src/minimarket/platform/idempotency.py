"""Retry-safe writes: a key claims its slot in the same transaction as the work it guards.

The first request with a key inserts the key's row, does the work and stores the
answer, all in one transaction. A retry with the same key and body gets the stored
answer back and changes nothing; the same key with another body is refused. A
concurrent twin blocks on the row (PostgreSQL) or on the write lock (SQLite) and then
replays. Failed work rolls the claim back, so a failed request can be retried.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, String, Text, bindparam, delete, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from minimarket.db import Base, Database
from minimarket.platform.deferred import defer
from minimarket.errors import IdempotencyMismatch, InvalidInput
from minimarket.types import Timestamp, utcnow

MAX_KEY_LENGTH = 200


class IdempotencyRecord(Base):
    """The stored answer to a retry-safe write, keyed by client key or POS ticket id."""

    __tablename__ = "idempotencia"

    key: Mapped[str] = mapped_column("clave", String(250), primary_key=True)
    request_hash: Mapped[str] = mapped_column("hash_solicitud", String(64))
    status_code: Mapped[int] = mapped_column("estado_http", Integer)
    response: Mapped[str] = mapped_column("respuesta", Text)
    created_at: Mapped[datetime] = mapped_column("creado_en", Timestamp, default=utcnow, index=True)


_records = IdempotencyRecord.__table__
# Built once, sent with each request's values (a statement built per call costs more Python than sending it).
CLAIM = insert(_records)  # `claim_params`: a duplicate key is the key taken (IntegrityError / UniqueViolation)
ANSWER = (update(_records).where(_records.c.clave == bindparam("key", type_=String))
          .values(estado_http=bindparam("status", type_=Integer), respuesta=bindparam("answer", type_=Text)))


def claim_params(key: str, request_hash: str) -> dict:
    """The key's row, claimed before the work (its answer is written by ANSWER, in the same transaction)."""
    return {"clave": key, "hash_solicitud": request_hash, "estado_http": 0, "respuesta": "", "creado_en": utcnow()}


def answer_params(key: str, status: int, body: Any) -> dict:  # noqa: ANN401
    """The stored answer to a claimed key."""
    return {"key": key, "status": status, "answer": json.dumps(body, ensure_ascii=False, default=str)}


@dataclass(frozen=True)
class Outcome:
    status_code: int
    body: Any
    replayed: bool


class _KeyTaken(Exception):
    pass


def fingerprint(*parts: Any) -> str:
    """A stable hash of what a request asked for (method, route, canonical body)."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_client_key(raw: str | None) -> str | None:
    if raw is None:
        return None
    key = raw.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            f"Idempotency-Key: debe ser texto imprimible de 1 a {MAX_KEY_LENGTH} caracteres (ej. un UUID)"
        )
    return key


def run_once(
    db: Database,
    *,
    key: str | None,
    request_hash: str,
    operation: Callable[[Session], tuple[int, Any]],
    label: str | None = None,
) -> Outcome:
    """Run `operation` in one unit of work, at most once per key (`label` is the key as the client knows it)."""
    label = label or key
    if key is None:
        with db.write() as session:
            status, body = operation(session)
        return Outcome(status, body, False)

    # No look-up before the claim: a new key (nearly every request) is one INSERT in the write's own
    # transaction; a retry finds the key taken and replays (the claim waits for a twin still running).
    try:
        with db.write() as session:
            try:
                session.execute(CLAIM, claim_params(key, request_hash))
            except IntegrityError as exc:
                raise _KeyTaken from exc
            status, body = operation(session)
            defer(session, ANSWER, answer_params(key, status, body))  # sent with the commit
        return Outcome(status, body, False)
    except _KeyTaken:
        with db.read() as session:
            existing = session.get(IdempotencyRecord, key)
            if existing is not None:
                return _replay(existing, label, request_hash)
        # The twin failed and rolled back: nothing is stored, so do the work now.
        return run_once(db, key=key, request_hash=request_hash, operation=operation, label=label)


def _replay(record: IdempotencyRecord, label: str | None, request_hash: str) -> Outcome:
    if record.request_hash != request_hash:
        raise IdempotencyMismatch(
            f"{label} ya se usó con otro contenido; para una operación nueva usá otra clave",
        )
    return Outcome(record.status_code, json.loads(record.response), True)


def purge_expired(session: Session, *, older_than_hours: int) -> int:
    """Delete stored answers older than the retention window; returns how many."""
    limit = utcnow() - timedelta(hours=older_than_hours)
    result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < limit))
    return result.rowcount or 0

