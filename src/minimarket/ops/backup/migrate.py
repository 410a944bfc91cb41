"""`minimarket db migrate-to URL`: copy the whole store to another database (SQLite ⇄ PostgreSQL).

The source is read in one snapshot (PostgreSQL: REPEATABLE READ READ ONLY; SQLite: one read
transaction), described there (counts, canonical checksums, ledger), and copied table by table in
foreign-key order with Core inserts that keep every primary key. The target must be empty — no
tables, or only what the migrations themselves seed — and is filled in ONE transaction, so a
failed copy leaves it as it was. PostgreSQL sequences are moved past the copied ids. The target
is then described again and must match the source exactly, with a clean ledger.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Integer, func, inspect, select, text
from sqlalchemy.engine import Connection, Engine

from minimarket.ops.backup.manifest import (
    SKIPPED_TABLES,
    Progress,
    TableCheck,
    compare_tables,
    no_progress,
    primary_key_order,
    canonical_value,
    describe_database,
    describe_target,
    describe_url,
    is_sqlite_url,
    normalise_url,
    plain_engine,
    sqlite_file,
)

BATCH_SIZE = 2000


class MigrateError(Exception):
    """The copy was refused or failed; the message (Spanish) says why. The target was not changed."""


@dataclass
class MigrateReport:
    source: str
    target: str
    revision: str | None
    checks: list[TableCheck]
    ledger: dict[str, Any]
    rows_copied: int
    seconds: float

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks) and bool(self.ledger.get("ok"))


def _engine(url: str, *, snapshot: bool = False) -> Engine:
    if is_sqlite_url(url):
        from minimarket.db import make_engine

        # The app's SQLite engine emits a real BEGIN, so every read of one transaction sees one snapshot.
        return make_engine(url)
    return plain_engine(url, isolation_level="REPEATABLE READ") if snapshot else plain_engine(url)


def _pk_sets(conn: Connection, tables: list[str]) -> dict[str, set[tuple]]:
    from sqlalchemy import MetaData

    metadata = MetaData()
    metadata.reflect(bind=conn, only=tables)
    keys: dict[str, set[tuple]] = {}
    for name in tables:
        table = metadata.tables[name]
        columns = list(table.primary_key.columns) or list(table.columns)
        keys[name] = {tuple(canonical_value(v, c.type) for v, c in zip(row, columns, strict=True))
                      for row in conn.execute(select(*columns))}
    return keys


def _seeded_keys() -> tuple[str, dict[str, set[tuple]]]:
    """Head revision and the rows (by primary key) that the migrations alone put in a new database."""
    from minimarket.migrations.runner import upgrade

    with tempfile.TemporaryDirectory(prefix="minimarket-migrar-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'vacia.db'}"
        upgrade(url)
        engine = plain_engine(url)
        try:
            with engine.connect() as conn:
                from alembic.runtime.migration import MigrationContext

                revision = MigrationContext.configure(conn).get_current_revision()
                names = [n for n in inspect(conn).get_table_names() if n not in SKIPPED_TABLES]
                return revision, _pk_sets(conn, names)
        finally:
            engine.dispose()


def _check_source_exists(url: str) -> None:
    if is_sqlite_url(url) and not sqlite_file(url).exists():
        raise MigrateError(f"No existe la base {describe_target(url)}")


def _only_seeded(conn: Connection, target_url: str, head: str, seeded: dict[str, set[tuple]]) -> None:
    """Raise unless the target's tables hold only the rows the migrations seed (or there are no tables)."""
    from alembic.runtime.migration import MigrationContext

    names = [n for n in inspect(conn).get_table_names() if n not in SKIPPED_TABLES]
    if not names:
        return
    revision = MigrationContext.configure(conn).get_current_revision()
    if revision != head or set(names) != set(seeded):
        raise MigrateError(f"La base destino {describe_target(target_url)} ya tiene tablas (revisión "
                           f"{revision or 'desconocida'}): usá una base vacía")
    actual = _pk_sets(conn, names)
    extra = {name: len(keys - seeded[name]) for name, keys in actual.items() if keys - seeded[name]}
    if extra:
        detail = ", ".join(f"{name}: {n} fila(s)" for name, n in sorted(extra.items()))
        raise MigrateError(f"La base destino {describe_target(target_url)} no está vacía ({detail}): "
                           "migrate-to sólo copia a una base nueva, para no mezclar dos tiendas")


def check_target_empty(target_url: str, head: str, seeded: dict[str, set[tuple]]) -> None:
    """Refuse a target that holds anything beyond what a fresh migration seeds."""
    if is_sqlite_url(target_url) and not sqlite_file(target_url).exists():
        return  # a new file: nothing to check, and nothing created before the copy starts
    engine = _engine(target_url)
    try:
        with engine.connect() as conn:
            _only_seeded(conn, target_url, head, seeded)
    finally:
        engine.dispose()


def _reset_sequences(conn: Connection, tables: list[Any]) -> None:
    """Move each serial/identity sequence past the copied ids (explicit ids do not advance them)."""
    quote = conn.dialect.identifier_preparer.quote
    for table in tables:
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not isinstance(pk[0].type, Integer):
            continue
        column = pk[0]
        sequence = conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                {"t": quote(table.name), "c": column.name}).scalar()
        if sequence is None:
            continue  # an id the code assigns itself (e.g. the single-row secrets table)
        top = conn.execute(select(func.max(column))).scalar()
        conn.execute(text("SELECT setval(CAST(:s AS regclass), :v, false)"), {"s": sequence, "v": (top or 0) + 1})


def migrate_store(source_url: str, target_url: str, *, progress: Progress | None = None,
                  batch_size: int = BATCH_SIZE) -> MigrateReport:
    """Copy every table from source to an empty target and verify the copy."""
    started = time.perf_counter()
    report = progress or no_progress
    source_url, target_url = normalise_url(source_url), normalise_url(target_url)
    if source_url == target_url:
        raise MigrateError("El origen y el destino son la misma base")
    _check_source_exists(source_url)
    seeded_head, seeded = _seeded_keys()
    try:
        check_target_empty(target_url, seeded_head, seeded)
    except MigrateError:
        raise
    except Exception as exc:  # noqa: BLE001 - one Spanish line for the operator
        raise MigrateError(f"No se pudo abrir la base destino {describe_target(target_url)}: "
                           f"{str(exc).splitlines()[0][:300]}") from exc
    source_description, copied = _copy(source_url, target_url, seeded_head, seeded, report, batch_size)
    target_description = describe_url(target_url, report)
    checks = compare_tables(source_description["tables"], target_description["tables"])
    return MigrateReport(source=describe_target(source_url), target=describe_target(target_url),
                         revision=target_description["schema_revision"], checks=checks,
                         ledger=target_description["ledger"], rows_copied=copied,
                         seconds=time.perf_counter() - started)


def _copy(source_url: str, target_url: str, seeded_head: str, seeded: dict[str, set[tuple]], report: Progress,
          batch_size: int) -> tuple[dict[str, Any], int]:
    """Describe the source and copy it, both in one read snapshot; the source's revision is checked there, once."""
    from alembic.runtime.migration import MigrationContext

    from minimarket.migrations.runner import head_revision, upgrade

    source = _engine(source_url, snapshot=True)
    try:
        try:
            sconn = source.connect()
        except Exception as exc:  # noqa: BLE001 - one Spanish line for the operator
            raise MigrateError(f"No se pudo leer la base origen {describe_target(source_url)}: "
                               f"{str(exc).splitlines()[0][:300]}") from exc
        with sconn:
            if sconn.dialect.name == "postgresql":
                sconn = sconn.execution_options(postgresql_readonly=True)
            revision, head = MigrationContext.configure(sconn).get_current_revision(), head_revision()
            if revision != head:
                raise MigrateError(f"La base origen está en la revisión {revision or 'vacía'} y el código espera "
                                   f"{head}: ejecutá primero `minimarket db upgrade`")
            description = describe_database(sconn, report)
            upgrade(target_url)  # the target gets the same schema from the same migrations
            copied = _fill_target(sconn, target_url, description, seeded_head, seeded, report, batch_size)
        return description, copied
    except MigrateError:
        raise
    except Exception as exc:  # noqa: BLE001 - the target's transaction rolled back
        raise MigrateError(f"La copia falló y no se copió ningún dato (la base destino puede haber quedado con el "
                           f"esquema solo): {str(exc).splitlines()[0][:300]}") from exc
    finally:
        source.dispose()


def _fill_target(sconn: Connection, target_url: str, description: dict[str, Any], seeded_head: str,
                 seeded: dict[str, set[tuple]], report: Progress, batch_size: int) -> int:
    """Every table in foreign-key order, in ONE target transaction; returns the rows copied."""
    from minimarket.models import metadata

    tables = [t for t in metadata.sorted_tables if t.name not in SKIPPED_TABLES]
    total = sum(description["tables"].get(t.name, {}).get("rows", 0) for t in tables)
    copied = 0
    report("Filas copiadas", 0, total)
    target = _engine(target_url)
    try:
        with target.connect() as tconn:
            write = tconn.execution_options(minimarket_write=True)  # SQLite: BEGIN IMMEDIATE
            with write.begin():
                if write.dialect.name == "postgresql":
                    # Nobody else writes the target while it is checked, emptied and filled.
                    names = ", ".join(write.dialect.identifier_preparer.quote(t.name) for t in tables)
                    write.exec_driver_sql(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE")
                _only_seeded(write, target_url, seeded_head, seeded)  # still empty, inside the lock
                for table in reversed(tables):
                    write.execute(table.delete())  # only what the migrations seeded (checked above)
                for table in tables:
                    stmt = select(*table.columns).order_by(*primary_key_order(table, sconn.dialect.name))
                    result = sconn.execute(stmt.execution_options(yield_per=batch_size))
                    for rows in result.partitions(batch_size):
                        write.execute(table.insert(), [dict(r._mapping) for r in rows])
                        copied += len(rows)
                        report("Filas copiadas", copied, total)
                if write.dialect.name == "postgresql":
                    _reset_sequences(write, tables)
    finally:
        target.dispose()
    return copied
