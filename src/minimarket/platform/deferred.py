"""Writes a unit of work sends together right before its commit.

Statements whose result nobody reads back in the same unit of work — the audit row, the stored
idempotent answer — are queued on the session with `defer`
and sent, in the order queued, when the session commits: on PostgreSQL in one round trip together with
the COMMIT itself (psycopg pipeline mode), on SQLite one after the other. They are still inside the
transaction: a failure raises from the commit and rolls everything back, like any other statement. Inside
a savepoint (`begin_nested`) nothing is deferred, so a rolled-back savepoint never leaves a queued write
behind.
"""

from __future__ import annotations

import psycopg
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.sql.base import Executable

_QUEUE = "deferred_statements"


def defer(session: Session, statement: Executable, parameters: dict | None = None) -> None:
    """Run `statement` (no rows back: an INSERT must be `.inline()`) with `parameters` just before this session
    commits."""
    if session.in_nested_transaction():
        session.execute(statement, parameters)
        return
    session.info.setdefault(_QUEUE, []).append((statement, parameters))


def send_deferred(session: Session) -> None:
    """Send what `defer` queued, now (the commit does it by itself)."""
    statements = session.info.pop(_QUEUE, None)
    if statements:
        send_together(session, statements)


def send_together(session: Session, statements: list[tuple[Executable, dict | None]], *, commit: bool = False) -> None:
    """Run `statements` (each with its parameters; no rows back) in order, in one round trip on PostgreSQL
    (psycopg's pipeline mode; psycopg still sends a transaction's BEGIN on its own), with `commit` the
    transaction's COMMIT in that same trip (SQLAlchemy's own commit then finds it done). A failure raises the
    same SQLAlchemy error as a plain `execute` (an IntegrityError for a duplicate key, an OperationalError for
    a lost connection)."""
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        for statement, parameters in statements:
            conn.execute(statement, parameters)
        return
    raw = conn.connection.driver_connection
    try:
        with raw.pipeline():
            for statement, parameters in statements:
                conn.execute(statement, parameters)
            if commit:  # queued behind them, so the pipeline's closing sync carries it: no round trip of its own
                raw.execute("COMMIT", prepare=False)
    except psycopg.Error as exc:  # raised when the pipeline syncs, outside SQLAlchemy's own error handling
        disconnected = conn.dialect.is_disconnect(exc, raw, None)
        if disconnected:
            conn.invalidate(exc)
        raise DBAPIError.instance(None, None, exc, psycopg.Error, connection_invalidated=disconnected,
                                  dialect=conn.dialect) from exc


@event.listens_for(Session, "before_commit")
def _send_before_commit(session: Session) -> None:
    statements = session.info.pop(_QUEUE, None)
    if not statements:
        return
    if session.in_nested_transaction():  # a savepoint's release: the transaction goes on
        send_together(session, statements)
        return
    session.flush()  # the ORM's pending changes first: the COMMIT sent with the queue ends the unit of work
    send_together(session, statements, commit=True)


@event.listens_for(Session, "after_transaction_end")
def _forget_on_rollback(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the whole unit of work ended (a commit already sent the queue)
        session.info.pop(_QUEUE, None)
