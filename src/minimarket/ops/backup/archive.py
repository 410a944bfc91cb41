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
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from minimarket import __version__
from minimarket.ar.dates import STORE_TZ
from minimarket.ops.backup.dumps import dump_postgres, dump_sqlite
from minimarket.ops.backup.manifest import (
    CHECKSUM_ALGORITHM,
    BackupError,
    Progress,
    describe_target,
    is_sqlite_url,
    no_progress,
    normalise_url,
    sqlite_file,
)

ARCHIVE_FORMAT = 1
MANIFEST_NAME = "manifest.json"
CONFIG_PREFIX = "config/"
# The runbook's configuration: env files, Prometheus TLS material and the two YAML configs.
CONFIG_FILES = (".env.production", ".env", "observability/prometheus/prometheus.yml",
                "observability/alertmanager/alertmanager.yml")
CONFIG_DIRS = ("observability/prometheus/tls",)
_ARCHIVE_RE = r"^minimarket_{label}_(?P<ts>\d{{8}}_\d{{6}})(?:-(?P<n>\d+))?\.tar\.gz$"





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


def create_backup(url: str, dest: Path, *, keep: int | None = None, include_config: bool = True,
                  config_root: Path | None = None, progress: Progress | None = None,
                  after_snapshot: Callable[[], None] | None = None, now: datetime | None = None,
                  record_success: bool = True) -> BackupResult:
    """Make one archive of the database at `url` in `dest`; optionally prune to `keep` archives."""
    started = time.perf_counter()
    report = progress or no_progress
    url = normalise_url(url)
    if keep is not None and keep < 1:
        raise BackupError("--keep tiene que ser al menos 1")
    label = database_label(url)
    when = now or datetime.now(UTC)
    dest = Path(dest)
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".minimarket-respaldo-", dir=dest) as tmp:
        workdir = Path(tmp)
        os.chmod(workdir, 0o700)
        db_path, description = _dump(url, workdir, report, after_snapshot)
        configs = config_files(config_root or Path.cwd()) if include_config else []
        manifest = _manifest(url, label, when, description, db_path, configs)
        manifest_path = workdir / MANIFEST_NAME
        manifest_path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True) + "\n",
                                 encoding="utf-8")
        report("Archivo", 0, 1)
        final = _write_archive(dest, _new_archive_path(dest, label, when), manifest_path, db_path, configs)
        report("Archivo", 1, 1)
    result = BackupResult(path=final, manifest=manifest, seconds=0.0, size=final.stat().st_size)
    _after_backup(result, url, dest, label, keep=keep, record_success=record_success)
    result.seconds = time.perf_counter() - started
    return result


def _dump(url: str, workdir: Path, report: Progress,
          after_snapshot: Callable[[], None] | None) -> tuple[Path, dict[str, Any]]:
    """The database file and its description; any failure is one Spanish line (BackupError)."""
    dump = dump_sqlite if is_sqlite_url(url) else dump_postgres
    try:
        return dump(url, workdir, report, after_snapshot)
    except BackupError:
        raise
    except Exception as exc:  # noqa: BLE001 - the operator gets one Spanish line, not a traceback
        raise BackupError(f"No se pudo leer la base {describe_target(url)}: {str(exc).splitlines()[0][:300]}") \
            from exc


def _manifest(url: str, label: str, when: datetime, description: dict[str, Any], db_path: Path,
              configs: list[tuple[str, Path]]) -> dict[str, Any]:
    backend = "sqlite" if is_sqlite_url(url) else "postgresql"
    return {
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


def _write_archive(dest: Path, final: Path, manifest_path: Path, db_path: Path,
                   configs: list[tuple[str, Path]]) -> Path:
    """The .tar.gz appears complete, synced and 0600, or not at all."""
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
        os.replace(partial, final)
        fsync_dir(dest)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return final


def _after_backup(result: BackupResult, url: str, dest: Path, label: str, *, keep: int | None,
                  record_success: bool) -> None:
    """Warnings, retention and the success time /metrics reads."""
    if not result.manifest["ledger"].get("ok"):
        result.warnings.append(f"El libro de movimientos tiene {result.manifest['ledger'].get('mismatches', '?')} "
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


def fsync_dir(path: Path) -> None:
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
