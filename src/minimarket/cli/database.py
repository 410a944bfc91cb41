"""`minimarket db`: migrations (`upgrade`, `current`); `migrate-to` is registered by cli/backup.py."""

from __future__ import annotations

from typing import Annotated

import typer

from minimarket.cli.terminal import console, load_settings, open_store

db_app = typer.Typer(help="Base de datos: migraciones.", no_args_is_help=True)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Revisión destino")] = "head") -> None:
    """Aplica las migraciones pendientes."""
    from minimarket.migrations.runner import upgrade

    upgrade(load_settings().database_url, revision)
    console.print(f"Base actualizada a {revision}.")


@db_app.command("current")
def db_current() -> None:
    """Muestra la revisión aplicada y la esperada por el código."""
    from minimarket.migrations.runner import current_revision, head_revision

    with open_store(load_settings(), at_head=False) as database:
        console.print(f"actual: {current_revision(database.engine) or '(vacía)'}  esperada: {head_revision()}")
