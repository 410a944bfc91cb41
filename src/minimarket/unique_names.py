"""Create-if-missing for rows with a unique name, race-free on both backends.

Twelve requests naming the same new category at once all see "missing" and all insert; on
PostgreSQL eleven inserts then hit the unique constraint, which aborts their transactions
(a 500). Here a creator first takes a transaction-scoped advisory lock on (table, name in
lower case), so creators of one name (in any case) take turns, looks again, and inserts with
ON CONFLICT DO NOTHING, so even a writer that takes no lock (the supplier file's own form)
never aborts the transaction. SQLite needs no lock: its writers already run one at a time.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

T = TypeVar("T")


def insert_or_ignore(session: Session, table: Table, **values: Any) -> None:
    """INSERT … ON CONFLICT DO NOTHING (any unique constraint), on PostgreSQL and SQLite."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(table).values(**values).on_conflict_do_nothing())


def lock_name(session: Session, table: Table, name: str) -> None:
    """PostgreSQL: hold an advisory lock on (table, lower(name)) until this transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(func.hashtext(table.name),
                                                          func.hashtext(func.lower(name)))))


def find_or_create(session: Session, model: type[T], *, match: ColumnElement[bool], name: str,
                   values: dict[str, Any]) -> T:
    """The row of `model` that `match` finds, inserting `values` first when there is none.

    `name` keys the lock (the same name in any case is one lock); `values` are column names.
    """
    found = session.scalars(select(model).where(match)).first()
    if found is not None:
        return found
    table = model.__table__  # type: ignore[attr-defined]
    lock_name(session, table, name)
    found = session.scalars(select(model).where(match)).first()
    if found is None:
        insert_or_ignore(session, table, **values)
        found = session.scalars(select(model).where(match)).first()
    if found is None:  # a row with the same exact name cannot be missing after the insert
        raise RuntimeError(f"{table.name}: '{name}' neither found nor inserted")
    return found
