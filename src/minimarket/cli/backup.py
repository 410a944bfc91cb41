"""CLI for backups: `minimarket backup`, `minimarket restore`, `minimarket db migrate-to`.

The commands are plain functions so cli/main.py registers them on its own Typer apps
(`register(app, db_app)`); `app` here is a standalone Typer app with the same commands
(`python -m minimarket.cli.backup …`, and the tests).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from minimarket.cli.terminal import OperatorErrors, console, describe_failure, err, fail, load_settings, progress_bars

_YES = {"s", "si", "sí", "y", "yes"}


def _confirm(question: str) -> bool:
    err.print(question)
    try:
        answer = err.input("¿Continuar? (s/n) ")
    except EOFError:
        answer = ""
    return answer.strip().lower() in _YES


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _thousands(n: int) -> str:
    return f"{n:,}".replace(",", ".")


def _checks_table(checks, expected_label: str, actual_label: str) -> Table:  # noqa: ANN001
    table = Table("Tabla", expected_label, actual_label, "Checksum", "Estado", title="Verificación")
    for c in checks:
        same_sha = c.expected_sha256 is not None and c.expected_sha256 == c.actual_sha256
        table.add_row(c.table, "—" if c.expected_rows is None else _thousands(c.expected_rows),
                      "—" if c.actual_rows is None else _thousands(c.actual_rows),
                      "igual" if same_sha else "[red]distinto[/red]",
                      "[green]OK[/green]" if c.ok else f"[red]{c.problem}[/red]")
    return table


def _ledger_line(ledger: dict) -> str:
    if ledger.get("error"):
        return f"[red]Libro de movimientos: no se pudo verificar ({ledger['error']})[/red]"
    if ledger.get("ok"):
        return (f"[green]Libro de movimientos: OK[/green] ({_thousands(ledger.get('balances', 0))} existencias, "
                f"{_thousands(ledger.get('movements', 0))} movimientos)")
    examples = "; ".join(ledger.get("examples", [])[:3])
    return f"[red]Libro de movimientos: {ledger.get('mismatches')} diferencia(s)[/red] {examples}"


# --------------------------------------------------------------------------- backup


def _unwritable(dest: Path, exc: OSError) -> str:
    if exc.filename is None or not str(exc.filename).startswith(str(dest)):
        return describe_failure(exc)
    return (f"No se pudo escribir el respaldo en {dest} ({exc.strerror}). Elegí otra carpeta con --dest "
            "o revisá sus permisos y el espacio libre.")


def backup_command(
    dest: Annotated[Path, typer.Option("--dest", envvar="BACKUP_DIR",
                                       help="Carpeta de los respaldos (por defecto BACKUP_DIR o ./backups)")] = Path("backups"),
    keep: Annotated[int | None, typer.Option("--keep", min=1,
                                             help="Conserva los N respaldos más nuevos de esta base y borra el resto")] = None,
    no_config: Annotated[bool, typer.Option("--no-config", help="No incluir .env, certificados ni configs")] = False,
    config_root: Annotated[Path, typer.Option("--config-root",
                                              help="Carpeta donde están .env y observability/ (por defecto, la actual)")] = Path("."),
) -> None:
    """Respalda la base (y la configuración) en un archivo .tar.gz verificable."""
    from minimarket.ops.backup.archive import create_backup, total_rows
    from minimarket.ops.backup.manifest import BackupError, describe_target

    settings = load_settings()
    err.print(f"Respaldando {describe_target(settings.database_url)} …")
    try:
        with progress_bars() as report:
            result = create_backup(settings.database_url, dest, keep=keep, include_config=not no_config,
                                   config_root=config_root, progress=report)
    except BackupError as exc:
        raise fail(f"El respaldo falló: {exc}", cause=exc) from exc
    except OSError as exc:  # e.g. --dest under a file, on a read-only disk, or without permission
        raise fail(_unwritable(dest, exc), cause=exc) from exc
    m = result.manifest
    movements = m["tables"].get("movimientos_stock", {}).get("rows", 0)
    console.print(f"[green]Respaldo listo[/green]: {result.path} ({_size(result.size)}, permisos 0600) "
                  f"en {result.seconds:.1f} s", soft_wrap=True)
    console.print(f"  Base: {m['backend']} «{m['database']}», revisión {m['schema_revision']}, "
                  f"{len(m['tables'])} tablas, {_thousands(total_rows(m))} filas "
                  f"({_thousands(movements)} movimientos)")
    console.print("  " + _ledger_line(m["ledger"]))
    if m["config_files"]:
        console.print(f"  Configuración: {len(m['config_files'])} archivo(s) — incluye secretos (.env, claves "
                      "privadas): guardá el respaldo en un lugar seguro y cifrado")
    elif not no_config:
        console.print("  Configuración: no se encontró ningún archivo (.env, observability/…)")
    if keep is not None:
        console.print(f"  Retención (--keep {keep}): " + (f"se borraron {len(result.deleted)} respaldo(s) viejo(s)"
                                                        if result.deleted else "no hubo que borrar nada"))
    for warning in result.warnings:
        err.print(f"[yellow]Atención:[/yellow] {warning}")


# --------------------------------------------------------------------------- restore


def restore_command(
    file: Annotated[Path, typer.Argument(help="Archivo .tar.gz hecho con `minimarket backup`")],
    yes: Annotated[bool, typer.Option("--yes", help="No preguntar confirmación")] = False,
    force: Annotated[bool, typer.Option("--force", help="Restaurar aunque haya sesiones conectadas (las corta)")] = False,
    into: Annotated[str | None, typer.Option("--into", help="Restaurar en otra base: un nombre (base PostgreSQL nueva en "
                                                            "el mismo servidor) o una URL (sqlite:///nueva.db, postgresql://…)")] = None,
    with_config: Annotated[Path | None, typer.Option("--with-config", help="Restaurar también los archivos de "
                                                     "configuración en esta carpeta (nunca pisa uno distinto)")] = None,
) -> None:
    """Restaura un respaldo, lo verifica (filas, checksums, libro) y sale con error ante cualquier diferencia."""
    from minimarket.ops.backup.restore import RestoreError, restore_backup

    settings = load_settings()
    with tempfile.TemporaryDirectory(prefix="minimarket-restaurar-") as tmp:
        plan = _plan_restore(settings.database_url, file, Path(tmp), into=into, force=force)
        if not yes and not _confirm(_restore_question(plan)):
            err.print("Cancelado: no se cambió nada.")
            raise typer.Exit(1)
        try:
            with progress_bars() as report:
                result = restore_backup(plan.opened, plan.target, force=force, progress=report)
        except RestoreError as exc:
            raise fail(f"La restauración falló: {exc}", cause=exc) from exc
        _report_restore(result, plan)
        _after_restore(plan, with_config=with_config, into=into)


@dataclass(frozen=True)
class _RestorePlan:
    opened: Any  # OpenedBackup: the archive read and checked
    target: Any  # Target: where it goes
    exists: bool  # the target holds a database that will be replaced
    at_head: bool  # the backup's schema is the code's


def _plan_restore(url: str, file: Path, workdir: Path, *, into: str | None, force: bool) -> _RestorePlan:
    """Read and check the archive and the target; anything wrong ends here, before any question."""
    from minimarket.ops.backup.manifest import sqlite_file
    from minimarket.ops.backup.restore import check_revision, open_backup
    from minimarket.ops.backup.restore_target import (
        RestoreError,
        in_use_message,
        pg_sessions,
        resolve_target,
        sqlite_in_use,
        target_exists,
    )

    try:
        opened = open_backup(file, workdir)
        at_head = check_revision(opened.manifest)
        target = resolve_target(url, into)
        if opened.manifest["backend"] != target.backend:
            raise RestoreError(
                f"El respaldo es de {opened.manifest['backend']} y el destino es {target.backend}: restauralo "
                f"en una base {opened.manifest['backend']} con --into y después copiala con "
                "`minimarket db migrate-to`")
        exists = target_exists(target)
        if target.new and exists:
            raise RestoreError(f"{target.description} ya existe: --into restaura sólo en una base nueva")
        if exists and not force:
            if target.backend == "postgresql":
                sessions = pg_sessions(target.url)
                if sessions:
                    raise RestoreError(in_use_message(target, sessions))
            elif sqlite_in_use(sqlite_file(target.url)):
                raise RestoreError(in_use_message(target, []))
    except RestoreError as exc:
        raise fail(f"No se restaura: {exc}", cause=exc) from exc
    except Exception as exc:  # noqa: BLE001 - e.g. the PostgreSQL server does not answer
        raise fail(f"No se restaura: {describe_failure(exc)}", cause=exc) from exc
    return _RestorePlan(opened=opened, target=target, exists=exists, at_head=at_head)


def _restore_question(plan: _RestorePlan) -> str:
    m = plan.opened.manifest
    movements = m["tables"].get("movimientos_stock", {}).get("rows", 0)
    question = (f"Se va a {'REEMPLAZAR' if plan.exists else 'crear'} {plan.target.description} con el respaldo del "
                f"{m['created_at']} ({m['backend']}, revisión {m['schema_revision']}, {_thousands(movements)} "
                "movimientos).")
    if plan.exists:
        question += " Lo que tenga ahora esa base se pierde."
    return question


def _report_restore(result, plan: _RestorePlan) -> None:  # noqa: ANN001
    """The verification table; exit code 1 unless the restored database verified and replaced the target."""
    console.print(_checks_table(result.checks, "Filas en el respaldo", "Filas restauradas"))
    console.print(_ledger_line(result.ledger))
    target = plan.target.description
    if not result.replaced:
        raise fail(f"El respaldo no coincide con su manifiesto: no se restauró. {target} quedó como estaba; la copia "
                   "de prueba se descartó. Probá con otro respaldo.")
    if not result.ok:
        raise fail(f"Se restauró {target}, pero el libro de movimientos tiene diferencias (ya estaban en el "
                   "respaldo). Revisalas con `minimarket verify`.")
    console.print(f"[green]Restauración verificada[/green]: {target} tiene exactamente los datos del "
                  f"respaldo ({len(result.checks)} tablas).", soft_wrap=True)


def _after_restore(plan: _RestorePlan, *, with_config: Path | None, into: str | None) -> None:
    from minimarket.ops.backup.restore import restore_config

    m = plan.opened.manifest
    if not plan.at_head:
        console.print(f"[yellow]El respaldo es de la revisión {m['schema_revision']}:[/yellow] "
                      "ejecutá `minimarket db upgrade` antes de iniciar el sistema.")
    if with_config is not None:
        for rel, status in restore_config(plan.opened, with_config):
            console.print(f"  {rel}: {status}")
    elif m.get("config_files"):
        console.print(f"El respaldo incluye {len(m['config_files'])} archivo(s) de configuración; para "
                      "recuperarlos usá --with-config CARPETA.")
    if into is not None:
        console.print("La base original (DATABASE_URL) no se tocó.")


# --------------------------------------------------------------------------- migrate-to


def migrate_to_command(
    url: Annotated[str, typer.Argument(help="Base destino, vacía: postgresql://… o sqlite:///archivo.db")],
    yes: Annotated[bool, typer.Option("--yes", help="No preguntar confirmación")] = False,
) -> None:
    """Copia toda la tienda de la base configurada a otra (SQLite ⇄ PostgreSQL) y verifica la copia."""
    from minimarket.ops.backup.manifest import describe_target
    from minimarket.ops.backup.migrate import MigrateError, migrate_store

    settings = load_settings()
    try:
        target_text = describe_target(url)
    except Exception as exc:  # noqa: BLE001 - a malformed URL
        err.print(f"[red]URL destino inválida:[/red] {exc}")
        raise typer.Exit(2) from exc
    question = (f"Se va a copiar la tienda de {describe_target(settings.database_url)} a {target_text} (que tiene que "
                "estar vacía). La copia es una foto del momento en que empieza: detené la aplicación antes.")
    if not yes and not _confirm(question):
        err.print("Cancelado: no se cambió nada.")
        raise typer.Exit(1)
    try:
        with progress_bars() as report:
            result = migrate_store(settings.database_url, url, progress=report)
    except MigrateError as exc:
        err.print(f"[red]No se migró:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(_checks_table(result.checks, "Filas en el origen", "Filas en el destino"))
    console.print(_ledger_line(result.ledger))
    if not result.ok:
        err.print(f"[red]La copia en {result.target} NO coincide con el origen.[/red] No la uses; el origen no se "
                  "tocó.")
        raise typer.Exit(1)
    console.print(f"[green]Migración verificada[/green]: {_thousands(result.rows_copied)} filas copiadas a "
                  f"{result.target} en {result.seconds:.1f} s. Para usarla, apuntá DATABASE_URL a la base nueva.",
                  soft_wrap=True)


# --------------------------------------------------------------------------- registration


def register(main_app: typer.Typer, db_app: typer.Typer) -> None:
    """Add `backup` and `restore` to the top-level app and `migrate-to` to the `db` group."""
    main_app.command("backup")(backup_command)
    main_app.command("restore")(restore_command)
    db_app.command("migrate-to")(migrate_to_command)


app = typer.Typer(cls=OperatorErrors, help="Respaldos de Mini Market: backup, restore, db migrate-to.",
                  no_args_is_help=True)
_db_app = typer.Typer(help="Base de datos.", no_args_is_help=True)
app.add_typer(_db_app, name="db")
register(app, _db_app)

if __name__ == "__main__":
    app()
