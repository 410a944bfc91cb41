"""What every `minimarket` command shares on the terminal: consoles, checked settings, the store's
database at the code's revision, progress bars, and one Spanish line for an operational failure."""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click
import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

if TYPE_CHECKING:
    from minimarket.accounts.audit import Context
    from minimarket.config import Settings
    from minimarket.db import Database

# The database, settings and app modules are imported inside the functions that use them: every
# `minimarket` process imports this module, and `minimarket version`, `certs`, `keys generate` or
# `apikey create` should not pay for SQLAlchemy, numpy or FastAPI it does not need (startup time).

console = Console()
err = Console(stderr=True)

ProgressReport = Callable[[str, int, int], None]
CLI_ACTOR = "cli"
_debug = {"on": False}  # set by `minimarket --debug`


def load_settings() -> Settings:
    """The settings, refused with exit code 2 and the variable to fix when unsafe or malformed."""
    from minimarket.config import ConfigError, get_settings

    settings = get_settings()
    try:
        settings.check()
    except ConfigError as exc:
        err.print(f"[red]Configuración inválida:[/red] {exc}")
        raise typer.Exit(2) from exc
    return settings


def set_debug(enabled: bool) -> None:
    _debug["on"] = enabled


def debug_requested() -> bool:
    """`--debug` or LOG_LEVEL=DEBUG (environment or .env): show tracebacks of failures."""
    if _debug["on"] or os.environ.get("LOG_LEVEL", "").strip().upper() == "DEBUG":
        return True
    try:
        from minimarket.config import get_settings

        return get_settings().log_level.strip().upper() == "DEBUG"
    except Exception:  # noqa: BLE001 - unreadable settings are reported by the command itself
        return False


def fail(message: str, *, cause: BaseException | None = None, code: int = 1) -> typer.Exit:
    """Print one Spanish line (and, when debugging, the traceback of `cause`); return the Exit to raise."""
    if cause is not None and debug_requested():
        traceback.print_exception(cause, file=err.file)
    err.print(f"[red]{escape(message)}[/red]", soft_wrap=True)
    return typer.Exit(code)


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def describe_failure(exc: BaseException) -> str:
    """What failed and what to do, in one line, for errors no command handled itself."""
    from sqlalchemy.exc import InterfaceError, OperationalError

    if isinstance(exc, (OperationalError, InterfaceError)):
        return (f"No se pudo usar la base de datos ({first_line(exc.orig or exc)}). Revisá que el servidor esté "
                "en marcha y que DATABASE_URL sea correcta.")
    if isinstance(exc, PermissionError):
        return f"Sin permiso sobre {exc.filename or 'un archivo'}: revisá los permisos o elegí otra ruta."
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"Error del sistema de archivos{where}: {exc.strerror or first_line(exc)}. Revisá la ruta y el espacio libre."
    return (f"Error inesperado ({type(exc).__name__}: {first_line(exc)}). Repetí con `minimarket --debug …` "
            "para ver el detalle y reportalo.")


class OperatorErrors(TyperGroup):
    """The top-level command group: an error no command handled ends in one line and exit code 1."""

    def invoke(self, ctx: click.Context):  # noqa: ANN201
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence before a traceback
            raise fail(describe_failure(exc), cause=exc) from exc


def cli_context() -> Context:
    """Who acts when the operator runs a command (the audit's actor)."""
    from minimarket.accounts.audit import Context

    return Context(actor=CLI_ACTOR)


def ensure_schema(settings: Settings, database: Database) -> None:
    """The embedded SQLite upgrades itself (like `serve`); PostgreSQL is upgraded by the operator
    (`minimarket db upgrade`), so a database at another revision is refused with exit code 1."""
    from minimarket.migrations.runner import current_revision, head_revision, upgrade

    if settings.is_sqlite:
        upgrade(settings.database_url)
    current = current_revision(database.engine)
    if current != head_revision():
        raise fail(f"La base está en la revisión {current or 'vacía'} y el código espera {head_revision()}. "
                   "Ejecutá: minimarket db upgrade")


@contextmanager
def open_store(settings: Settings, *, at_head: bool = True) -> Iterator[Database]:
    """The store's database for one command, disposed on exit; with `at_head`, at the code's revision.

    A database that does not answer, here or inside the command, ends in one line and exit code 1.
    """
    from sqlalchemy.exc import InterfaceError, OperationalError

    from minimarket.db import Database

    on_commit = None
    if settings.redis_url:  # With Redis, a command's writes invalidate what the running apps keep (revoked keys, products).
        from minimarket.platform.cache import make_cache
        from minimarket.platform.read_cache import invalidate_after_commit

        on_commit = invalidate_after_commit(make_cache(settings.redis_url))
    database = Database(settings.database_url, on_commit=on_commit)
    try:
        if at_head:
            ensure_schema(settings, database)
        yield database
    except (OperationalError, InterfaceError) as exc:
        raise fail(describe_failure(exc), cause=exc) from exc
    finally:
        database.dispose()


@contextmanager
def progress_bars() -> Iterator[ProgressReport]:
    """A Rich progress display and the `report(stage, done, total)` callback that long work calls."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    tasks: dict[str, int] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=False) as progress:
        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(stage, total=total)
            progress.update(tasks[stage], completed=done, total=total)

        yield report
