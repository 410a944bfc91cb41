"""CLI for backups: `minimarket backup`, `minimarket restore`, `minimarket db migrate-to`.

The commands are plain functions so cli.py can register them on its own Typer apps
(`register(app, db_app)`); `app` here is a standalone Typer app with the same commands
(`python -m minimarket.cli.backup …`, and the tests).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from minimarket.cli.terminal import console, err, load_settings, progress_bars


_YES = {"s", "si", "sí", "y", "yes"}


_settings = load_settings


_progress = progress_bars


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

    settings = _settings()
    err.print(f"Respaldando {describe_target(settings.database_url)} …")
    try:
        with _progress() as report:
            result = create_backup(settings.database_url, dest, keep=keep, include_config=not no_config,
                                   config_root=config_root, progress=report)
    except BackupError as exc:
        err.print(f"[red]El respaldo falló:[/red] {exc}")
        raise typer.Exit(1) from exc
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
    from minimarket.ops.backup.restore import check_revision, open_backup, restore_backup, restore_config
    from minimarket.ops.backup.restore_target import (
        RestoreError,
        in_use_message,
        pg_sessions,
        resolve_target,
        sqlite_in_use,
        target_exists,
    )
    from minimarket.ops.backup.manifest import sqlite_file

    settings = _settings()
    with tempfile.TemporaryDirectory(prefix="minimarket-restaurar-") as tmp:
        try:
            opened = open_backup(file, Path(tmp))
            at_head = check_revision(opened.manifest)
            target = resolve_target(settings.database_url, into)
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
            err.print(f"[red]No se restaura:[/red] {exc}")
            raise typer.Exit(1) from exc
        except Exception as exc:  # noqa: BLE001 - e.g. the PostgreSQL server does not answer
            err.print(f"[red]No se restaura:[/red] {str(exc).splitlines()[0][:300]}")
            raise typer.Exit(1) from exc
        m = opened.manifest
        movements = m["tables"].get("movimientos_stock", {}).get("rows", 0)
        action = "REEMPLAZAR" if exists else "crear"
        question = (f"Se va a {action} {target.description} con el respaldo del {m['created_at']} "
                    f"({m['backend']}, revisión {m['schema_revision']}, {_thousands(movements)} movimientos).")
        if exists:
            question += " Lo que tenga ahora esa base se pierde."
        if not yes and not _confirm(question):
            err.print("Cancelado: no se cambió nada.")
            raise typer.Exit(1)
        try:
            with _progress() as report:
                result = restore_backup(opened, target, force=force, progress=report)
        except RestoreError as exc:
            err.print(f"[red]La restauración falló:[/red] {exc}")
            raise typer.Exit(1) from exc
        console.print(_checks_table(result.checks, "Filas en el respaldo", "Filas restauradas"))
        console.print(_ledger_line(result.ledger))
        if not result.replaced:
            err.print(f"[red]El respaldo no coincide con su manifiesto: no se restauró.[/red] {target.description} "
                      "quedó como estaba; la copia de prueba se descartó. Probá con otro respaldo.")
            raise typer.Exit(1)
        if not result.ok:
            err.print(f"[red]Se restauró {target.description}, pero el libro de movimientos tiene diferencias[/red] "
                      "(ya estaban en el respaldo). Revisalas con `minimarket verify`.")
            raise typer.Exit(1)
        console.print(f"[green]Restauración verificada[/green]: {target.description} tiene exactamente los datos del "
                      f"respaldo ({len(result.checks)} tablas).", soft_wrap=True)
        if not at_head:
            console.print(f"[yellow]El respaldo es de la revisión {m['schema_revision']}:[/yellow] "
                          "ejecutá `minimarket db upgrade` antes de iniciar el sistema.")
        if with_config is not None:
            for rel, status in restore_config(opened, with_config):
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

    settings = _settings()
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
        with _progress() as report:
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


app = typer.Typer(help="Respaldos de Mini Market: backup, restore, db migrate-to.", no_args_is_help=True)
_db_app = typer.Typer(help="Base de datos.", no_args_is_help=True)
app.add_typer(_db_app, name="db")
register(app, _db_app)

if __name__ == "__main__":
    app()
