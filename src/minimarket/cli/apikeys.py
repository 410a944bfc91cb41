"""`minimarket apikey`: create (shown once), list (never the secret), revoke."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from minimarket.cli.terminal import cli_context, console, fail, load_settings, open_store

apikey_app = typer.Typer(help="Claves de API (X-API-Key).", no_args_is_help=True)


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Option(help="Para qué o quién es la clave (ej. caja-1)")],
    role: Annotated[str, typer.Option(help="admin | encargado | deposito | lectura")],
    as_json: Annotated[bool, typer.Option("--json", help='Imprime {"key": …} para scripts')] = False,
) -> None:
    """Crea una clave; se muestra una sola vez."""
    from minimarket.accounts.keys import create_api_key
    from minimarket.errors import DomainError

    with open_store(load_settings()) as database:
        try:
            with database.write() as session:
                row, plaintext = create_api_key(session, cli_context(), name=name, role=role)
                prefix, key_role = row.prefix, row.role
        except DomainError as exc:
            raise fail(exc.message, cause=exc, code=2) from exc
    if as_json:
        sys.stdout.write(json.dumps({"key": plaintext, "name": name, "role": key_role, "prefix": prefix}) + "\n")
        return
    console.print(f"Clave '{name}' (rol {key_role}, prefijo {prefix}). Guardala ahora: no se vuelve a mostrar.")
    console.print(plaintext, markup=False, highlight=False)


@apikey_app.command("list")
def apikey_list() -> None:
    """Lista las claves (nunca muestra el secreto)."""
    from minimarket.accounts.keys import list_api_keys

    table = Table("Prefijo", "Nombre", "Rol", "Creada", "Último uso", "Estado")
    with open_store(load_settings()) as database, database.read() as session:
        for r in list_api_keys(session):
            table.add_row(r.prefix, r.name, r.role, f"{r.created_at:%d/%m/%Y %H:%M}",
                          f"{r.last_used_at:%d/%m/%Y %H:%M}" if r.last_used_at else "—",
                          "revocada" if r.revoked_at else "activa")
    console.print(table)


@apikey_app.command("revoke")
def apikey_revoke(ref: Annotated[str, typer.Argument(help="Prefijo o nombre de la clave")]) -> None:
    """Revoca una clave por prefijo o nombre."""
    from minimarket.accounts.keys import revoke_api_key
    from minimarket.errors import NotFound

    with open_store(load_settings()) as database:
        try:
            with database.write() as session:
                count = len(revoke_api_key(session, cli_context(), ref=ref))
        except NotFound as exc:
            raise fail(exc.message, cause=exc) from exc
    console.print(f"{count} clave(s) revocada(s).")
