"""`minimarket restore`: put an archive of `minimarket backup` back, and prove it came back whole.

Order of work, so that a bad archive never costs the store its current database:

1. Read the whole archive (a truncated or altered .tar.gz fails here), require `manifest.json`,
   and check the SHA-256 of the database file and of every configuration file against it.
2. Refuse a schema revision this code does not know (the backup is from a newer version).
3. Restore into a *staging* database (PostgreSQL: a new database from template0 with
   `pg_restore --no-owner`; SQLite: a new file beside the target) and verify it there: row
   counts and canonical checksums against the manifest, and `verify_ledger`.
4. Only a staging copy that verifies replaces the target (PostgreSQL: drop the old database from
   a maintenance connection and rename the staging one; SQLite: atomic rename, stale -wal/-shm
   removed). A copy that does not verify is discarded and the target is left as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from minimarket.ops.backup.archive import (
    ARCHIVE_FORMAT,
    CONFIG_PREFIX,
    MANIFEST_NAME,
    fsync_dir,
    sha256_file,
)
from minimarket.ops.backup.dumps import PG_DUMP_NAME, SQLITE_NAME, pg_params, run_pg_tool
from minimarket.ops.backup.manifest import (
    BackupError,
    Progress,
    TableCheck,
    compare_tables,
    manifest_type_problem,
    no_progress,
    describe_url,
    plain_engine,
    sqlite_file,
)
from minimarket.ops.backup.restore_target import (
    RestoreError,
    Target,
    maintenance_url,
    quote_ident,
    in_use_message,
    pg_database_exists,
    pg_sessions,
    sqlite_in_use,
)

_REQUIRED_KEYS = ("format", "backend", "schema_revision", "tables", "database_file", "created_at")


# --------------------------------------------------------------------------- reading the archive


@dataclass
class OpenedBackup:
    archive: Path
    manifest: dict[str, Any]
    workdir: Path
    database_file: Path
    config_files: dict[str, tuple[Path, int]] = field(default_factory=dict)  # rel path -> (file, mode)


def _safe_member_name(name: str) -> PurePosixPath | None:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        return None
    return path


def open_backup(archive: Path, workdir: Path) -> OpenedBackup:
    """Extract and check an archive; raise RestoreError (Spanish) if anything is missing or damaged."""
    archive = Path(archive)
    if not archive.is_file():
        raise RestoreError(f"No existe el archivo de respaldo {archive}")
    extracted: dict[str, tuple[Path, int]] = {}
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            for member in tar:  # reading every member runs the whole gzip stream through its CRC
                rel = _safe_member_name(member.name)
                if rel is None:
                    raise RestoreError(f"El respaldo tiene una ruta no permitida ({member.name!r}); no se restaura")
                if not member.isfile():
                    continue
                out = workdir / "contenido" / Path(*rel.parts)
                out.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:
                    continue
                with source, open(out, "wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
                extracted[rel.as_posix()] = (out, member.mode & 0o777)
    except RestoreError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise RestoreError(f"El respaldo está dañado o incompleto (no se pudo leer el .tar.gz: {exc})") from exc
    manifest = _read_manifest(extracted)
    if manifest["format"] != ARCHIVE_FORMAT:
        raise RestoreError(f"Formato de respaldo {manifest['format']} desconocido (este programa lee el "
                           f"{ARCHIVE_FORMAT}): el respaldo es de una versión más nueva; actualizá Mini Market")
    backend = manifest["backend"]
    expected_name = {"postgresql": PG_DUMP_NAME, "sqlite": SQLITE_NAME}.get(backend)
    if expected_name is None:
        raise RestoreError(f"El manifest.json indica un motor de base desconocido: {backend!r}")
    db_entry = manifest["database_file"]
    if expected_name not in extracted:
        raise RestoreError(f"El respaldo no contiene {expected_name}: está incompleto y no se restaura")
    db_path = extracted[expected_name][0]
    if sha256_file(db_path) != db_entry.get("sha256"):
        raise RestoreError(f"{expected_name} dentro del respaldo está dañado: su SHA-256 no coincide con el manifiesto")
    configs: dict[str, tuple[Path, int]] = {}
    for entry in manifest.get("config_files", []):
        rel = entry["path"]
        member = extracted.get(CONFIG_PREFIX + rel)
        if member is None:
            raise RestoreError(f"Falta el archivo de configuración {rel} que el manifiesto lista: respaldo incompleto")
        if sha256_file(member[0]) != entry.get("sha256"):
            raise RestoreError(f"El archivo de configuración {rel} del respaldo está dañado (SHA-256 distinto)")
        configs[rel] = member
    return OpenedBackup(archive=archive, manifest=manifest, workdir=workdir, database_file=db_path,
                        config_files=configs)


def _read_manifest(extracted: dict[str, tuple[Path, int]]) -> dict[str, Any]:
    """manifest.json, complete and with every field of the type this code reads."""
    if MANIFEST_NAME not in extracted:
        raise RestoreError("El respaldo no tiene manifest.json: no se puede verificar, así que no se restaura")
    try:
        manifest = json.loads(extracted[MANIFEST_NAME][0].read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise RestoreError(f"El manifest.json del respaldo está dañado: {exc}") from exc
    missing = [key for key in _REQUIRED_KEYS if not isinstance(manifest, dict) or key not in manifest]
    if missing:
        raise RestoreError(f"El manifest.json del respaldo está incompleto (falta: {', '.join(missing)})")
    problem = manifest_type_problem(manifest)
    if problem:
        raise RestoreError(f"El manifest.json del respaldo tiene un valor inválido ({problem}): el respaldo está "
                           "dañado o fue editado, así que no se restaura. Probá con otro respaldo.")
    return manifest


def check_revision(manifest: dict[str, Any]) -> bool:
    """Raise if the backup's schema is unknown to this code (newer); True when it is exactly head."""
    from alembic.script import ScriptDirectory

    from minimarket.migrations.runner import alembic_config

    revision = manifest.get("schema_revision")
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head = script.get_current_head()
    if not revision:
        raise RestoreError("El respaldo no indica la revisión del esquema (¿base sin migrar?): no se restaura")
    try:
        known = script.get_revision(revision)
    except Exception:  # noqa: BLE001 - alembic raises several kinds for an unknown id
        known = None
    if known is None:
        raise RestoreError(f"El respaldo es de una versión más nueva de Mini Market (esquema {revision}); este "
                           f"programa llega hasta la revisión {head}. Actualizá Mini Market y volvé a intentar.")
    return revision == head


# --------------------------------------------------------------------------- the target


@dataclass
class RestoreReport:
    target: Target
    checks: list[TableCheck]
    ledger: dict[str, Any]
    expected_ledger: dict[str, Any]
    revision: str | None
    replaced: bool  # the staging copy became the target
    seconds: float = 0.0

    @property
    def data_ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def ledger_ok(self) -> bool:
        return bool(self.ledger.get("ok"))

    @property
    def ok(self) -> bool:
        return self.data_ok and self.ledger_ok and self.replaced


def _report(opened: OpenedBackup, target: Target, description: dict[str, Any], replaced: bool) -> RestoreReport:
    return RestoreReport(target=target, checks=compare_tables(opened.manifest["tables"], description["tables"]),
                         ledger=description["ledger"], expected_ledger=opened.manifest.get("ledger") or {},
                         revision=description["schema_revision"], replaced=replaced)


def _may_replace(report: RestoreReport) -> bool:
    """Data identical to the manifest, and the ledger no worse than it was when the backup was made."""
    if not report.data_ok:
        return False
    return report.ledger_ok or not report.expected_ledger.get("ok", False)


# --------------------------------------------------------------------------- restoring


def restore_backup(opened: OpenedBackup, target: Target, *, force: bool = False,
                   progress: Progress | None = None) -> RestoreReport:
    """Restore into staging, verify, and replace the target only if the copy verifies."""
    report = progress or no_progress
    backend = opened.manifest["backend"]
    if backend != target.backend:
        raise RestoreError(
            f"El respaldo es de {backend} y el destino es {target.backend}: restauralo en una base {backend} "
            f"(--into) y después copiala con `minimarket db migrate-to`")
    if target.backend == "sqlite":
        try:
            return _restore_sqlite(opened, target, force=force, progress=report)
        except RestoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. "database disk image is malformed"
            raise RestoreError(f"La copia restaurada no se pudo leer (¿respaldo dañado?): "
                               f"{str(exc).splitlines()[0][:300]}") from exc
    return _restore_postgres(opened, target, force=force, progress=report)


def _restore_sqlite(opened: OpenedBackup, target: Target, *, force: bool, progress: Progress) -> RestoreReport:
    path = sqlite_file(target.url)
    if target.new and path.exists():
        raise RestoreError(f"{path} ya existe: --into restaura sólo en un archivo nuevo")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".{path.name}.restaurando-{uuid.uuid4().hex[:8]}"
    progress("Restauración", 0, 1)
    try:
        shutil.copyfile(opened.database_file, staging)
        with open(staging, "rb+") as fh:
            os.fsync(fh.fileno())
        progress("Restauración", 1, 1)
        description = describe_url(f"sqlite:///{staging}", progress)
        result = _report(opened, target, description, replaced=False)
        if not _may_replace(result):
            return result
        if path.exists() and not force and sqlite_in_use(path):
            raise RestoreError(in_use_message(target, []))
        if path.exists():
            _copy_ownership(path, staging)
        # A stale WAL beside the new file would be replayed onto it: remove it before the swap.
        for suffix in ("-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        os.replace(staging, path)
        fsync_dir(path.parent)
        result.replaced = True
        return result
    finally:
        staging.unlink(missing_ok=True)


def _copy_ownership(original: Path, replacement: Path) -> None:
    """Keep the replaced file's mode and owner: a restore run as root must not lock the app out."""
    info = original.stat()
    os.chmod(replacement, info.st_mode & 0o777)
    try:
        os.chown(replacement, info.st_uid, info.st_gid)
    except PermissionError:
        pass  # not root: the file is ours already, as the original was


def _pg_restore(opened: OpenedBackup, staging_url: str, progress: Progress) -> None:
    progress("pg_restore", 0, 1)
    params = pg_params(staging_url)
    try:
        run_pg_tool(["pg_restore", *params.args, "--no-owner", "--no-privileges", "--exit-on-error",
                     "--single-transaction", f"--dbname={params.database}", str(opened.database_file)],
                    params.env, "pg_restore")
    except BackupError as exc:
        raise RestoreError(f"El respaldo no se pudo cargar (¿archivo dañado?): {exc}") from exc
    progress("pg_restore", 1, 1)


def _restore_postgres(opened: OpenedBackup, target: Target, *, force: bool, progress: Progress) -> RestoreReport:
    name = target.name
    try:
        exists = pg_database_exists(target.url)
    except Exception as exc:  # noqa: BLE001 - one Spanish line for the operator
        raise RestoreError(f"No se pudo conectar al servidor PostgreSQL de {target.description}: "
                           f"{str(exc).splitlines()[0][:300]}") from exc
    if target.new and exists:
        raise RestoreError(f"La base {name} ya existe: --into restaura sólo en una base nueva (elegí otro nombre)")
    staging = f"{name[:40]}_restaurando_{uuid.uuid4().hex[:8]}"
    staging_url = make_url(target.url).set(database=staging).render_as_string(hide_password=False)
    admin = plain_engine(maintenance_url(target.url), isolation_level="AUTOCOMMIT")
    created = dropped = False
    try:
        with admin.connect() as conn:
            # template0: pg_restore recreates every object (pgcrypto included) without clashes.
            conn.execute(text(f"CREATE DATABASE {quote_ident(staging)} TEMPLATE template0"))
            created = True
        _pg_restore(opened, staging_url, progress)
        description = describe_url(staging_url, progress)
        result = _report(opened, target, description, replaced=False)
        if not _may_replace(result):
            return result
        with admin.connect() as conn:
            if exists:
                sessions = [] if force else pg_sessions(target.url)
                if sessions:
                    raise RestoreError(in_use_message(target, sessions))
                # WITH (FORCE) (PostgreSQL 13+) ends the sessions that --force said to cut.
                conn.execute(text(f"DROP DATABASE {quote_ident(name)}" + (" WITH (FORCE)" if force else "")))
                dropped = True
            conn.execute(text(f"ALTER DATABASE {quote_ident(staging)} RENAME TO {quote_ident(name)}"))
            created = False
        result.replaced = True
        return result
    except RestoreError:
        raise
    except Exception as exc:  # noqa: BLE001 - one Spanish line for the operator
        if dropped and created:
            created = False  # the verified copy is now the only one: keep it and say how to finish
            raise RestoreError(f"Se borró {name} pero no se pudo renombrar la copia restaurada {staging} "
                               f"({str(exc).splitlines()[0][:200]}). Terminá a mano: psql -d postgres -c "
                               f"'ALTER DATABASE {quote_ident(staging)} RENAME TO {quote_ident(name)}'") from exc
        if isinstance(exc, BackupError):
            raise RestoreError(str(exc)) from exc
        raise RestoreError(f"La restauración falló: {str(exc).splitlines()[0][:300]}") from exc
    finally:
        if created:
            try:
                with admin.connect() as conn:
                    conn.execute(text(f"DROP DATABASE IF EXISTS {quote_ident(staging)} WITH (FORCE)"))
            except Exception:  # noqa: BLE001, S110 - best effort; the name says what it is
                pass
        admin.dispose()


# --------------------------------------------------------------------------- configuration files


def restore_config(opened: OpenedBackup, dest: Path) -> list[tuple[str, str]]:
    """Write the archived configuration under `dest`; an existing different file is never overwritten.

    Returns (relative path, what happened) for each file.
    """
    results: list[tuple[str, str]] = []
    for rel, (source, mode) in sorted(opened.config_files.items()):
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        data = source.read_bytes()
        if out.exists():
            if hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest():
                results.append((rel, "igual al actual, sin cambios"))
                continue
            out = out.with_name(out.name + ".restaurado")
            if out.exists():
                results.append((rel, f"NO se escribió: ya existen el archivo y {out.name}"))
                continue
            status = f"distinto del actual: guardado como {out.name} (revisalo y reemplazalo a mano)"
        else:
            status = "restaurado"
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode or 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(out, mode or 0o600)
        results.append((rel, status))
    return results
