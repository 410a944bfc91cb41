"""`minimarket user …`: the people who log in to the dashboard."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from minimarket.cli.terminal import cli_context, console, fail, load_settings, open_store

user_app = typer.Typer(help="Usuarios del dashboard (ingreso en /ingresar).", no_args_is_help=True)


def _read_password(from_stdin: bool) -> str:
    """The password from standard input (first line) or typed twice at a hidden prompt."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Contraseña", hide_input=True, confirmation_prompt="Repetí la contraseña")


def _run(work) -> object:  # noqa: ANN001
    """Run `work(session)` in one unit of work; a refused input exits 2 with its Spanish message."""
    from minimarket.errors import DomainError

    with open_store(load_settings()) as database:
        try:
            with database.write() as session:
                return work(session)
        except DomainError as exc:
            raise fail(exc.message, cause=exc, code=1 if type(exc).__name__ == "NotFound" else 2) from exc


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Option(help="Nombre de usuario (minúsculas, ej. maria.gomez)")],
    role: Annotated[str, typer.Option(help="admin | encargado | deposito | lectura")],
    full_name: Annotated[str | None, typer.Option("--name", help="Nombre y apellido")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Lee la contraseña de la entrada estándar")] = False,
) -> None:
    """Crea un usuario; la contraseña se pide (oculta) o se lee con --password-stdin."""
    from minimarket.accounts.users import create_user

    password = _read_password(password_stdin)
    name = _run(lambda s: create_user(s, cli_context(), username=username, role=role, password=password,
                                      full_name=full_name).username)
    console.print(f"Usuario '{name}' creado (rol {role}). Ingresa en /ingresar.")


@user_app.command("list")
def user_list() -> None:
    """Lista los usuarios (nunca muestra contraseñas)."""
    from minimarket.accounts.users import list_users
    from minimarket.types import utcnow

    table = Table("Usuario", "Nombre", "Rol", "Estado", "Último ingreso")
    now = utcnow()

    def rows(session):  # noqa: ANN001, ANN202
        for u in list_users(session):
            state = "activo" if u.active else "deshabilitado"
            if u.active and u.locked_until and u.locked_until > now:
                state = f"bloqueado hasta {u.locked_until:%H:%M:%S} UTC"
            table.add_row(u.username, u.full_name or "—", u.role, state,
                          f"{u.last_login_at:%d/%m/%Y %H:%M}" if u.last_login_at else "—")

    _run(rows)
    console.print(table)


@user_app.command("disable")
def user_disable(username: Annotated[str, typer.Argument(help="Usuario")]) -> None:
    """Deshabilita un usuario: cierra sus sesiones y revoca sus claves de API."""
    from minimarket.accounts.users import disable_user

    _run(lambda s: disable_user(s, cli_context(), username=username))
    console.print(f"Usuario '{username}' deshabilitado; sus sesiones y claves quedaron sin efecto.")


@user_app.command("enable")
def user_enable(username: Annotated[str, typer.Argument(help="Usuario")]) -> None:
    """Vuelve a habilitar un usuario (sus claves revocadas no vuelven)."""
    from minimarket.accounts.users import enable_user

    _run(lambda s: enable_user(s, cli_context(), username=username))
    console.print(f"Usuario '{username}' habilitado.")


@user_app.command("reset-password")
def user_reset_password(
    username: Annotated[str, typer.Argument(help="Usuario")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Lee la contraseña de la entrada estándar")] = False,
) -> None:
    """Cambia la contraseña, desbloquea el usuario y cierra sus sesiones."""
    from minimarket.accounts.users import reset_password

    password = _read_password(password_stdin)
    _run(lambda s: reset_password(s, cli_context(), username=username, password=password))
    console.print(f"Contraseña de '{username}' cambiada; sus sesiones abiertas se cerraron.")
