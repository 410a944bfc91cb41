"""Bulk writes for the demo store: COPY on PostgreSQL, executemany on SQLite, in the caller's transaction."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.orm import Session


def bulk_insert(session: Session, table: Table, columns: tuple[str, ...], rows) -> None:  # noqa: ANN001
    """Insert many rows in the session's transaction: COPY on PostgreSQL, executemany on SQLite.

    Values go through the columns' own bind processing (the same conversion an ORM insert does),
    so what lands in the database is what `insert()` would have written, only faster.
    """
    connection = session.connection()
    dialect = connection.dialect
    # Columns left out that have a Python-side default get it, as insert() would give them.
    defaults = [(c.name, c.default.arg if c.default.is_scalar else c.default.arg(None))
                for c in table.c if c.name not in columns and c.default is not None and not c.primary_key
                and (c.default.is_scalar or c.default.is_callable)]
    if defaults:
        columns = (*columns, *(name for name, _ in defaults))
        fixed = tuple(value for _, value in defaults)
        rows = (tuple(row) + fixed for row in rows)
    processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns]
    converting = [(i, p) for i, p in enumerate(processors) if p is not None]

    def bound(row: tuple) -> tuple:
        if not converting:
            return row
        values = list(row)
        for i, process in converting:
            values[i] = process(values[i])
        return tuple(values)

    raw = connection.connection.driver_connection
    if dialect.name == "postgresql":
        with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(bound(row))
        return
    cursor = raw.cursor()
    try:
        cursor.executemany(f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                           (bound(row) for row in rows))
    finally:
        cursor.close()
