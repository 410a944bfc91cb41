"""pg_dump / pg_restore and the SQLite online backup: the database file of an archive, and the
description (counts, checksums, ledger) of exactly the data in it."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from minimarket.ops.backup.manifest import (
    BACKUP_APP_NAME,
    BackupError,
    Progress,
    describe_database,
    describe_url,
    plain_engine,
    sqlite_file,
)

PG_DUMP_NAME = "database.dump"
SQLITE_NAME = "database.sqlite3"
PG_TOOL_TIMEOUT = 4 * 3600  # seconds; a dump that runs longer than this is treated as hung
PG_LOCK_WAIT = "60s"  # pg_dump gives up instead of queueing forever behind a migration's lock

# libpq reads these from the environment; the URL's query string maps onto them.
_LIBPQ_ENV = {"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY",
              "sslcrl": "PGSSLCRL", "connect_timeout": "PGCONNECT_TIMEOUT", "options": "PGOPTIONS",
              "target_session_attrs": "PGTARGETSESSIONATTRS", "gssencmode": "PGGSSENCMODE"}


@dataclass(frozen=True)
class PgParams:
    """Connection arguments for pg_dump/pg_restore: the password only ever in PGPASSWORD."""

    args: list[str]
    env: dict[str, str]
    database: str


def pg_params(url: str, database: str | None = None) -> PgParams:
    parsed = make_url(url)
    env = dict(os.environ)
    env["PGAPPNAME"] = BACKUP_APP_NAME
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    args = ["--no-password"]  # never prompt: a missing password is an error, not a hang
    host = parsed.host or parsed.query.get("host")
    if isinstance(host, tuple):
        host = host[0]
    if host:
        args += ["--host", str(host)]
    if parsed.port:
        args += ["--port", str(parsed.port)]
    if parsed.username:
        args += ["--username", parsed.username]
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    for key, value in parsed.query.items():
        if key in _LIBPQ_ENV:
            env[_LIBPQ_ENV[key]] = value if isinstance(value, str) else value[0]
    name = database or parsed.database
    if not name:
        raise BackupError("DATABASE_URL no indica el nombre de la base de PostgreSQL")
    return PgParams(args=args, env=env, database=name)


def run_pg_tool(command: list[str], env: dict[str, str], what: str, timeout: float = PG_TOOL_TIMEOUT) -> None:
    """Run pg_dump/pg_restore; any failure becomes a BackupError quoting the tool's last lines."""
    if shutil.which(command[0]) is None:
        raise BackupError(f"No se encontró {command[0]}: instalá el cliente de PostgreSQL (postgresql-client)")
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BackupError(f"{what} no terminó en {timeout:.0f} s y se canceló") from exc
    if result.returncode != 0:
        detail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise BackupError(f"{what} falló (código {result.returncode}): {detail}")


def dump_postgres(url: str, workdir: Path, progress: Progress,
                   after_snapshot: Callable[[], None] | None) -> tuple[Path, dict[str, Any]]:
    """pg_dump and the manifest, both from one exported REPEATABLE READ snapshot."""
    dump_path = workdir / PG_DUMP_NAME
    params = pg_params(url)
    engine = plain_engine(url, isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(postgresql_readonly=True)
            snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
            if after_snapshot is not None:
                after_snapshot()  # test seam: writes that land here must be in neither the dump nor the manifest
            command = ["pg_dump", *params.args, "--format=custom", "--compress=0", f"--snapshot={snapshot}",
                       f"--lock-wait-timeout={PG_LOCK_WAIT}", f"--file={dump_path}", params.database]
            progress("pg_dump", 0, 1)
            if shutil.which("pg_dump") is None:
                raise BackupError("No se encontró pg_dump: instalá el cliente de PostgreSQL (postgresql-client)")
            # pg_dump runs while the manifest is computed; the snapshot stays exported until both end.
            process = subprocess.Popen(command, env=params.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       text=True)
            try:
                description = describe_database(conn, progress)
                _, stderr = process.communicate(timeout=PG_TOOL_TIMEOUT)
            except BaseException:
                process.kill()
                process.communicate()
                raise
            if process.returncode != 0:
                detail = "\n".join(stderr.strip().splitlines()[-5:])
                raise BackupError(f"pg_dump falló (código {process.returncode}): {detail}")
            progress("pg_dump", 1, 1)
    finally:
        engine.dispose()
    return dump_path, description


def dump_sqlite(url: str, workdir: Path, progress: Progress,
                 after_snapshot: Callable[[], None] | None) -> tuple[Path, dict[str, Any]]:
    """Online backup API into a private copy, then the manifest from that copy."""
    source_path = sqlite_file(url)
    if not source_path.is_file():
        raise BackupError(f"No existe la base SQLite {source_path}")
    copy_path = workdir / SQLITE_NAME
    progress("Copia de la base", 0, 1)
    source = sqlite3.connect(source_path, timeout=15)
    target = sqlite3.connect(copy_path)
    try:
        # One step (pages=-1) copies under a single read transaction: a consistent snapshot, and in
        # WAL mode writers are not blocked. Step-wise copies restart whenever the app writes.
        source.backup(target, pages=-1)
        target.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        check = target.execute("PRAGMA quick_check").fetchone()[0]
    finally:
        target.close()
        source.close()
    if check != "ok":
        raise BackupError(f"La copia de la base SQLite no pasó la verificación de integridad: {check}")
    progress("Copia de la base", 1, 1)
    if after_snapshot is not None:
        after_snapshot()  # test seam: writes that land here are in the live file only
    description = describe_url(f"sqlite:///{copy_path}", progress)
    return copy_path, description
