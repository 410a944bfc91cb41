"""Where a restore goes and whether it may go there now: the configured database or a new one,
and who still holds it (PostgreSQL sessions, a SQLite file in use)."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from minimarket.ops.backup.manifest import BackupError, is_sqlite_url, normalise_url, plain_engine, sqlite_file

# What the runbook tells the operator to run before a restore (services that hold the database).
STOP_COMMAND = "docker compose -f docker-compose.production.yml stop dashboard agente-deposito agente-negocio"
SQLITE_LOCK_TIMEOUT = 1.0  # seconds to wait for an exclusive lock before calling the file "in use"
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$-]{0,62}$")


class RestoreError(Exception):
    """The restore was refused or failed before touching the target; the message (Spanish) says why."""



@dataclass(frozen=True)
class Target:
    backend: str  # "sqlite" | "postgresql"
    url: str
    new: bool  # --into: must not exist yet

    @property
    def name(self) -> str:
        return str(sqlite_file(self.url)) if self.backend == "sqlite" else str(make_url(self.url).database)

    @property
    def description(self) -> str:
        if self.backend == "sqlite":
            return f"el archivo SQLite {self.name}"
        parsed = make_url(self.url)
        return f"la base PostgreSQL {self.name} en {parsed.host or 'localhost'}:{parsed.port or 5432}"


def resolve_target(configured_url: str, into: str | None) -> Target:
    """The configured database, or `--into`: a sqlite:/// or postgresql:// URL, or a new database name."""
    configured_url = normalise_url(configured_url)
    if into is None:
        backend = "sqlite" if is_sqlite_url(configured_url) else "postgresql"
        return Target(backend=backend, url=configured_url, new=False)
    if "://" in into:
        url = normalise_url(into)
        if is_sqlite_url(url):
            try:
                sqlite_file(url)
            except BackupError as exc:
                raise RestoreError(str(exc)) from exc
            return Target(backend="sqlite", url=url, new=True)
        if not url.startswith("postgresql"):
            raise RestoreError(f"--into: URL no soportada ({into}); usá sqlite:///archivo.db o postgresql://…")
        if not make_url(url).database:
            raise RestoreError("--into: la URL de PostgreSQL tiene que indicar el nombre de la base")
        return Target(backend="postgresql", url=url, new=True)
    if not _DB_NAME.match(into):
        raise RestoreError(f"--into: '{into}' no es un nombre de base válido (letras, números, _ y -)")
    if is_sqlite_url(configured_url):
        raise RestoreError("--into NOMBRE crea una base PostgreSQL en el servidor de DATABASE_URL, pero DATABASE_URL "
                           "es SQLite: pasá una URL completa (sqlite:///otro.db o postgresql://…/nombre)")
    url = make_url(configured_url).set(database=into).render_as_string(hide_password=False)
    return Target(backend="postgresql", url=url, new=True)


def maintenance_url(url: str) -> str:
    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def pg_database_exists(url: str) -> bool:
    engine = plain_engine(maintenance_url(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            return bool(conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                     {"n": make_url(url).database}).scalar())
    finally:
        engine.dispose()


def target_exists(target: Target) -> bool:
    if target.backend == "sqlite":
        return sqlite_file(target.url).exists()
    return pg_database_exists(target.url)


@dataclass(frozen=True)
class PgSession:
    pid: int
    application: str
    client: str
    user: str
    state: str

    def describe(self) -> str:
        app = self.application or "(sin nombre de aplicación)"
        return f"{app} — pid {self.pid}, usuario {self.user}, desde {self.client}, estado {self.state}"


def pg_sessions(url: str) -> list[PgSession]:
    """Other sessions connected to the database of `url` (seen from the maintenance database)."""
    engine = plain_engine(maintenance_url(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT pid, coalesce(application_name, ''), coalesce(host(client_addr), 'socket local'), "
                "coalesce(usename, ''), coalesce(state, '') FROM pg_stat_activity "
                "WHERE datname = :n AND pid <> pg_backend_pid() ORDER BY application_name, pid"),
                {"n": make_url(url).database}).all()
    finally:
        engine.dispose()
    return [PgSession(pid=r[0], application=r[1], client=r[2], user=r[3], state=r[4]) for r in rows]


def sqlite_in_use(path: Path, timeout: float = SQLITE_LOCK_TIMEOUT) -> bool:
    """True if another connection holds the file (a running server keeps its pool's connections open).

    In WAL mode every open connection keeps a shared lock on the WAL index, so exclusive
    locking mode with BEGIN EXCLUSIVE succeeds only when nobody else has the database open.
    """
    if not path.exists():
        return False
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        conn.execute("COMMIT")
        return False
    except sqlite3.DatabaseError as exc:
        message = str(exc).lower()
        return "locked" in message or "busy" in message  # a damaged file is not "in use": it may be replaced
    finally:
        conn.close()


def in_use_message(target: Target, sessions: list[PgSession]) -> str:
    """Why the restore stops, what is connected, and how to stop it (Spanish)."""
    if target.backend == "sqlite":
        return (f"{target.description} está en uso (un servidor de Mini Market lo tiene abierto). Detené la "
                f"aplicación antes de restaurar:\n  {STOP_COMMAND}\n(o el proceso `minimarket serve`). Si estás "
                "seguro de que nadie escribe, repetí con --force.")
    apps = sorted({s.application or "(sin nombre)" for s in sessions})
    lines = "\n".join(f"  • {s.describe()}" for s in sessions[:20])
    more = f"\n  … y {len(sessions) - 20} más" if len(sessions) > 20 else ""
    return (f"Hay {len(sessions)} sesión(es) conectada(s) a {target.description} (aplicaciones: {', '.join(apps)}):\n"
            f"{lines}{more}\nDetenelas antes de restaurar:\n  {STOP_COMMAND}\n"
            "Con --force se cortan esas conexiones y se restaura igual.")


# --------------------------------------------------------------------------- verification
