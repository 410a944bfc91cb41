"""`minimarket backup`: one self-checking archive per run.

The archive (`minimarket_<db>_<YYYYmmdd_HHMMSS>.tar.gz`, mode 0600) holds:

* `manifest.json` — per table row count and checksum, schema revision, app version, backend,
  creation time, the ledger verification and the SHA-256 of every other member;
* `database.dump` (PostgreSQL, `pg_dump --format=custom`) or `database.sqlite3` (SQLite online
  backup API);
* `config/...` — the configuration files of the runbook, when present (secrets included).

Counts and checksums describe exactly the data in the dump: on PostgreSQL they are computed in
the REPEATABLE READ transaction whose snapshot `pg_dump --snapshot` imports; on SQLite they are
computed from the backup copy, never from the live file (see ops/manifest.py for the checksums).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from minimarket import __version__
from minimarket.ar.dates import STORE_TZ
from minimarket.ops.backup.manifest import (
    BACKUP_APP_NAME,
    CHECKSUM_ALGORITHM,
    BackupError,
    Progress,
    _no_progress,
    describe_database,
    describe_target,
    describe_url,
    is_sqlite_url,
    normalise_url,
    plain_engine,
    sqlite_file,
)

ARCHIVE_FORMAT = 1
MANIFEST_NAME = "manifest.json"
PG_DUMP_NAME = "database.dump"
SQLITE_NAME = "database.sqlite3"
CONFIG_PREFIX = "config/"
# The runbook's configuration: env files, Prometheus TLS material and the two YAML configs.
CONFIG_FILES = (".env.production", ".env", "observability/prometheus/prometheus.yml",
                "observability/alertmanager/alertmanager.yml")
CONFIG_DIRS = ("observability/prometheus/tls",)
PG_TOOL_TIMEOUT = 4 * 3600  # seconds; a dump that runs longer than this is treated as hung
PG_LOCK_WAIT = "60s"  # pg_dump gives up instead of queueing forever behind a migration's lock
_ARCHIVE_RE = r"^minimarket_{label}_(?P<ts>\d{{8}}_\d{{6}})(?:-(?P<n>\d+))?\.tar\.gz$"





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


# --------------------------------------------------------------------------- archives


def database_label(url: str) -> str:
    raw = sqlite_file(url).stem if is_sqlite_url(url) else (make_url(url).database or "postgres")
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", raw) or "base"


def archive_pattern(label: str) -> re.Pattern[str]:
    return re.compile(_ARCHIVE_RE.format(label=re.escape(label)))


def list_archives(dest: Path, label: str) -> list[Path]:
    """This database's archives in `dest`, oldest first (by the time in the name)."""
    pattern = archive_pattern(label)
    found = []
    for path in dest.iterdir() if dest.is_dir() else ():
        match = pattern.match(path.name)
        if match and path.is_file():
            found.append(((match["ts"], int(match["n"] or 0)), path))
    return [path for _, path in sorted(found)]


def apply_retention(dest: Path, label: str, keep: int) -> list[Path]:
    """Delete the oldest archives of this database beyond `keep`; returns what was deleted."""
    if keep < 1:
        raise BackupError("--keep tiene que ser al menos 1")
    archives = list_archives(dest, label)
    doomed = archives[:-keep] if len(archives) > keep else []
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


def _new_archive_path(dest: Path, label: str, when: datetime) -> Path:
    stamp = when.astimezone(STORE_TZ).strftime("%Y%m%d_%H%M%S")
    for n in range(1000):  # two backups in the same second get -1, -2, … instead of overwriting
        name = f"minimarket_{label}_{stamp}" + (f"-{n}" if n else "") + ".tar.gz"
        if not (dest / name).exists():
            return dest / name
    raise BackupError(f"Demasiados respaldos con la hora {stamp} en {dest}")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def config_files(root: Path) -> list[tuple[str, Path]]:
    """(archive-relative path, file) for each runbook configuration file present under `root`."""
    found: list[tuple[str, Path]] = []
    for rel in CONFIG_FILES:
        path = root / rel
        if path.is_file():
            found.append((rel, path))
    for rel_dir in CONFIG_DIRS:
        base = root / rel_dir
        if base.is_dir():
            for path in sorted(base.rglob("*")):
                if path.is_file():
                    found.append((path.relative_to(root).as_posix(), path))
    return found


# --------------------------------------------------------------------------- the backup


@dataclass
class BackupResult:
    path: Path
    manifest: dict[str, Any]
    seconds: float
    size: int
    deleted: list[Path] = field(default_factory=list)
    recorded: bool = True
    warnings: list[str] = field(default_factory=list)


def _dump_postgres(url: str, workdir: Path, progress: Progress,
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


def _dump_sqlite(url: str, workdir: Path, progress: Progress,
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


def create_backup(url: str, dest: Path, *, keep: int | None = None, include_config: bool = True,
                  config_root: Path | None = None, progress: Progress | None = None,
                  after_snapshot: Callable[[], None] | None = None, now: datetime | None = None,
                  record_success: bool = True) -> BackupResult:
    """Make one archive of the database at `url` in `dest`; optionally prune to `keep` archives."""
    started = time.perf_counter()
    report = progress or _no_progress
    url = normalise_url(url)
    if keep is not None and keep < 1:
        raise BackupError("--keep tiene que ser al menos 1")
    label = database_label(url)
    when = now or datetime.now(UTC)
    dest = Path(dest)
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    backend = "sqlite" if is_sqlite_url(url) else "postgresql"
    with tempfile.TemporaryDirectory(prefix=".minimarket-respaldo-", dir=dest) as tmp:
        workdir = Path(tmp)
        os.chmod(workdir, 0o700)
        dump = _dump_sqlite if backend == "sqlite" else _dump_postgres
        try:
            db_path, description = dump(url, workdir, report, after_snapshot)
        except BackupError:
            raise
        except Exception as exc:  # noqa: BLE001 - the operator gets one Spanish line, not a traceback
            raise BackupError(f"No se pudo leer la base {describe_target(url)}: {str(exc).splitlines()[0][:300]}") \
                from exc
        configs = config_files(config_root or Path.cwd()) if include_config else []
        manifest: dict[str, Any] = {
            "format": ARCHIVE_FORMAT,
            "app": "minimarket",
            "app_version": __version__,
            "backend": backend,
            "database": label,
            "created_at": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "schema_revision": description["schema_revision"],
            "checksum_algorithm": CHECKSUM_ALGORITHM,
            "tables": description["tables"],
            "ledger": description["ledger"],
            "database_file": {"name": db_path.name, "bytes": db_path.stat().st_size, "sha256": sha256_file(db_path),
                              "format": "sqlite3" if backend == "sqlite" else "pg_dump-custom"},
            "config_files": [{"path": rel, "bytes": path.stat().st_size, "sha256": sha256_file(path)}
                             for rel, path in configs],
        }
        manifest_path = workdir / MANIFEST_NAME
        manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True) + "\n",
                                 encoding="utf-8")
        report("Archivo", 0, 1)
        final = _new_archive_path(dest, label, when)
        partial = dest / f".{final.name}.partial"
        # 0600 from creation: the archive holds the .env (secrets) and the TLS private keys.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as raw:
                with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=6) as tar:
                    tar.add(manifest_path, arcname=MANIFEST_NAME)
                    tar.add(db_path, arcname=db_path.name)
                    for rel, path in configs:
                        tar.add(path, arcname=CONFIG_PREFIX + rel, recursive=False)
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(partial, final)  # the archive appears complete or not at all
            _fsync_dir(dest)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        report("Archivo", 1, 1)
    result = BackupResult(path=final, manifest=manifest, seconds=0.0, size=final.stat().st_size)
    if not manifest["ledger"].get("ok"):
        result.warnings.append(f"El libro de movimientos tiene {manifest['ledger'].get('mismatches', '?')} "
                               "diferencia(s) en este respaldo: corré `minimarket verify`")
    if keep is not None:
        result.deleted = apply_retention(dest, label, keep)
    if record_success:
        try:
            record_backup_success(url, time.time())
        except Exception as exc:  # noqa: BLE001 - the archive is good; the metric just does not move
            result.recorded = False
            result.warnings.append(f"El respaldo se hizo pero no se pudo registrar en la base "
                                   f"({str(exc).splitlines()[0][:200]}): la alerta BackupStale puede dispararse")
    result.seconds = time.perf_counter() - started
    return result


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def record_backup_success(url: str, when: float) -> None:
    """Record the time of the last verified backup (`backup.ultimo_exito`), read by /metrics and the doctor."""
    from minimarket import store_settings
    from minimarket.db import Database

    database = Database(url)
    try:
        for attempt in range(2):  # a concurrent first insert by another backup loses once, then updates
            try:
                with database.write() as session:
                    store_settings.write_value(session, store_settings.LAST_BACKUP, f"{when:.3f}")
                return
            except IntegrityError:
                if attempt:
                    raise
    finally:
        database.dispose()


def last_backup_success(url: str) -> float | None:
    from minimarket import store_settings
    from minimarket.db import Database

    database = Database(url)
    try:
        raw = store_settings.read_value_from(database, store_settings.LAST_BACKUP)
    finally:
        database.dispose()
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def total_rows(manifest: dict[str, Any], tables: Iterable[str] | None = None) -> int:
    chosen = manifest["tables"] if tables is None else {t: manifest["tables"][t] for t in tables}
    return sum(entry["rows"] for entry in chosen.values())
