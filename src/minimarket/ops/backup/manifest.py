"""What a database holds, described the same way on SQLite and PostgreSQL: per-table row counts
and checksums, schema revision, ledger check. Backups, restores and `db migrate-to` compare these.

Checksums use one canonical text per row (JSON, keys sorted, decimals at the column's scale,
datetimes in UTC ISO, bytes in hex) over rows ordered by primary key with byte-order collation,
so the same data gives the same checksum on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Integer, MetaData, Numeric, String, create_engine, select
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

CHECKSUM_ALGORITHM = "sha256/json-canonico-v1"
# The revision is recorded on its own; Inicio's aggregates (reports.models) and the lagging prices
# (pricing.models.LaggingPrice) are derived: triggers rebuild them as `migrate-to` or a restore copies the
# rows they come from (copying the aggregates too would count everything twice).
SKIPPED_TABLES = frozenset({"alembic_version", "kpi_existencias", "kpi_dias", "precios_atrasados"})
FETCH_BATCH = 2000

BACKUP_APP_NAME = "minimarket-respaldo"  # how backup/restore sessions show in pg_stat_activity

Progress = Callable[[str, int, int], None]


class BackupError(Exception):
    """A backup could not be made; the message (Spanish) says why and what to do."""


def no_progress(_stage: str, _done: int, _total: int) -> None:
    return None


# --------------------------------------------------------------------------- canonical checksums


@dataclass(frozen=True)
class TableDigest:
    rows: int
    sha256: str


def _scale(type_: Any) -> int | None:
    scale = getattr(type_, "scale", None)
    return scale if isinstance(scale, int) else None


def canonical_value(value: Any, type_: Any) -> Any:
    """The backend-independent JSON form of one column value."""
    if value is None:
        return None
    if isinstance(type_, Boolean) or isinstance(value, bool):
        return bool(value)
    if isinstance(type_, Integer) and not isinstance(type_, Numeric):
        return int(value)
    if isinstance(type_, Float):
        return repr(float(value))
    if isinstance(type_, Numeric) or isinstance(value, Decimal):
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        scale = _scale(type_)
        number = number.quantize(Decimal(1).scaleb(-scale)) if scale is not None else number.normalize()
        if number.is_zero():
            number = number.copy_abs()  # SQLite's REAL can hold -0.0; PostgreSQL's NUMERIC cannot
        return format(number, "f")
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # SQLite stores UTC, naive
        return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, (date, dtime)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return value  # text, and JSON documents already parsed by the column type


def primary_key_order(table: Any, dialect: str) -> list[Any]:
    """Primary key columns (all columns without one), strings in byte order on both backends."""
    columns = list(table.primary_key.columns) or [c for c in table.columns if not isinstance(c.type, JSON)]
    # PostgreSQL's default collation is locale-aware; "C" matches SQLite's BINARY (code point) order.
    return [c.collate("C") if dialect == "postgresql" and isinstance(c.type, String) else c for c in columns]


def reflect_tables(conn: Connection) -> MetaData:
    metadata = MetaData()
    metadata.reflect(bind=conn)
    return metadata


def table_digests(conn: Connection, progress: Progress | None = None) -> dict[str, TableDigest]:
    """Row count and canonical SHA-256 of every table the connection sees (in its transaction)."""
    report = progress or no_progress
    dialect = conn.dialect.name
    tables = [t for name, t in sorted(reflect_tables(conn).tables.items()) if name not in SKIPPED_TABLES]
    report("Tablas", 0, len(tables))
    digests: dict[str, TableDigest] = {}
    for done, table in enumerate(tables, start=1):
        names = sorted(c.name for c in table.columns)
        types = {c.name: c.type for c in table.columns}
        digest = hashlib.sha256()
        digest.update(json.dumps(names, separators=(",", ":")).encode() + b"\n")
        rows = 0
        stmt = select(*table.columns).order_by(*primary_key_order(table, dialect)).execution_options(yield_per=FETCH_BATCH)
        for row in conn.execute(stmt):
            data = row._mapping
            canonical = {name: canonical_value(data[name], types[name]) for name in names}
            digest.update(json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode())
            digest.update(b"\n")
            rows += 1
        digests[table.name] = TableDigest(rows=rows, sha256=digest.hexdigest())
        report("Tablas", done, len(tables))
    return digests


def ledger_summary(conn: Connection) -> dict[str, Any]:
    """verify_ledger inside the caller's transaction, as a JSON-able dict (errors reported, not raised)."""
    from minimarket.stock.verify import verify_ledger

    session = Session(bind=conn)
    try:
        report = verify_ledger(session)
    except Exception as exc:  # noqa: BLE001 - an older schema or a broken table is a result, not a crash
        return {"ok": False, "error": str(exc).splitlines()[0][:300], "balances": 0, "movements": 0, "mismatches": 0}
    finally:
        session.close()
    return {"ok": report.ok, "balances": report.balances_checked, "movements": report.movements_checked,
            "mismatches": len(report.mismatches),
            "examples": [f"{m.sku}@{m.location}: {m.problem}" for m in report.mismatches[:5]]}


def describe_database(conn: Connection, progress: Progress | None = None) -> dict[str, Any]:
    """Schema revision, per-table digests and ledger result, all read in `conn`'s transaction."""
    from alembic.runtime.migration import MigrationContext

    revision = MigrationContext.configure(conn).get_current_revision()
    digests = table_digests(conn, progress)
    return {
        "schema_revision": revision,
        "tables": {name: {"rows": d.rows, "sha256": d.sha256} for name, d in digests.items()},
        "ledger": ledger_summary(conn),
    }


def describe_url(url: str, progress: Progress | None = None) -> dict[str, Any]:
    """describe_database over a fresh connection to `url` (a restored or migrated database)."""
    engine = plain_engine(url)
    try:
        with engine.connect() as conn:
            return describe_database(conn, progress)
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- comparing and checking


@dataclass(frozen=True)
class TableCheck:
    table: str
    expected_rows: int | None
    actual_rows: int | None
    expected_sha256: str | None
    actual_sha256: str | None

    @property
    def ok(self) -> bool:
        return (self.expected_rows is not None and self.expected_rows == self.actual_rows
                and self.expected_sha256 == self.actual_sha256)

    @property
    def problem(self) -> str:
        if self.expected_rows is None:
            return "tabla que no está en el respaldo"
        if self.actual_rows is None:
            return "falta la tabla"
        if self.expected_rows != self.actual_rows:
            return f"filas: {self.actual_rows} en lugar de {self.expected_rows}"
        if self.expected_sha256 != self.actual_sha256:
            return "contenido distinto (checksum)"
        return "OK"


def compare_tables(expected: dict[str, Any], actual: dict[str, Any]) -> list[TableCheck]:
    """Table by table, rows and checksum of one description against another (backup, restore, migrate-to)."""
    checks = []
    for name in sorted(set(expected) | set(actual)):
        e, a = expected.get(name), actual.get(name)
        checks.append(TableCheck(table=name, expected_rows=e["rows"] if e else None,
                                 actual_rows=a["rows"] if a else None,
                                 expected_sha256=e["sha256"] if e else None,
                                 actual_sha256=a["sha256"] if a else None))
    return checks


_KINDS = {int: "un número entero", str: "texto", dict: "un objeto", list: "una lista"}
_MANIFEST_FIELDS = {"format": int, "backend": str, "created_at": str, "tables": dict, "database_file": dict}


def _is(value: Any, kind: type) -> bool:
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


def manifest_type_problem(manifest: dict[str, Any]) -> str | None:
    """The first field of a read manifest whose value has the wrong type ("tables.productos.rows …"), or None."""
    for key, kind in _MANIFEST_FIELDS.items():
        if not _is(manifest[key], kind):
            return f"{key} debería ser {_KINDS[kind]}"
    if manifest.get("schema_revision") is not None and not _is(manifest["schema_revision"], str):
        return "schema_revision debería ser texto"
    for name, entry in manifest["tables"].items():
        for field, kind in (("rows", int), ("sha256", str)):
            if not _is(entry, dict) or not _is(entry.get(field), kind):
                return f"tables.{name}.{field} debería ser {_KINDS[kind]}"
    if not _is(manifest["database_file"].get("sha256"), str):
        return "database_file.sha256 debería ser texto"
    if not _is(manifest.get("ledger", {}), dict):
        return "ledger debería ser un objeto"
    files = manifest.get("config_files", [])
    if not _is(files, list):
        return "config_files debería ser una lista"
    for i, entry in enumerate(files):
        if not _is(entry, dict) or not _is(entry.get("path"), str) or not _is(entry.get("sha256"), str):
            return f"config_files[{i}] debería tener path y sha256 (texto)"
    return None


# --------------------------------------------------------------------------- URLs and connections


def normalise_url(url: str) -> str:
    """Accept the URLs operators paste (`postgres://`, `postgresql://`); psycopg 3 is the driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def is_sqlite_url(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_file(url: str) -> Path:
    path = url.split("///", 1)[-1] if "///" in url else ""
    if path in ("", ":memory:"):
        raise BackupError("La base SQLite en memoria no se puede respaldar: configurá DATABASE_URL con un archivo")
    return Path(path)


def plain_engine(url: str, **kwargs: Any) -> Engine:
    """A pool-less engine for one-off work (no WAL switch, no app pool, named in pg_stat_activity)."""
    if is_sqlite_url(url):
        return create_engine(url, poolclass=NullPool, connect_args={"timeout": 15})
    connect_args = {"connect_timeout": 10, "application_name": BACKUP_APP_NAME}
    return create_engine(url, poolclass=NullPool, connect_args=connect_args, **kwargs)


def describe_target(url: str) -> str:
    """The database as an operator recognises it, without the password."""
    if is_sqlite_url(url):
        return str(sqlite_file(url))
    parsed = make_url(url)
    return f"{parsed.database} en {parsed.host or 'localhost'}:{parsed.port or 5432}"
