"""`minimarket keys` (DATABASE_ENCRYPTION_KEY) and `minimarket secret` (the encrypted secrets).

Secret values and keys are never echoed nor logged: values come from a hidden prompt, stdin
or --value, and `secret get` prints a value only with --show.
"""

from __future__ import annotations

import secrets as pysecrets
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from minimarket.config import Settings
from minimarket.platform.crypto import DecryptError, KeyFormatError, key_id, validate_key
from minimarket.platform.secrets import (
    SECRET_FIELDS,
    UnknownSecret,
    clear_secret,
    get_secret,
    rotate_key,
    secrets_status,
    set_secret,
)
from minimarket.cli.terminal import cli_context, fail, load_settings, open_store

keys_app = typer.Typer(help="Clave de cifrado de la base (DATABASE_ENCRYPTION_KEY): estado, rotación.",
                       no_args_is_help=True)
secrets_app = typer.Typer(help="Secretos de la tienda, cifrados en la base (" + ", ".join(SECRET_FIELDS) + ").",
                          no_args_is_help=True)
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

ENV_REMINDER = (
    "Ahora: (1) guardá la clave nueva en DATABASE_ENCRYPTION_KEY de .env.production (y en el gestor de "
    "contraseñas), (2) reiniciá los servicios, (3) comprobá con: minimarket keys status. "
    "Conservá la clave anterior mientras existan backups hechos antes de esta rotación: solo ella los descifra."
)


def _current_key(settings: Settings) -> str:
    key = settings.database_encryption_key
    if not key:
        raise fail("DATABASE_ENCRYPTION_KEY no está configurada; generá una con: minimarket keys generate", code=2)
    try:
        validate_key(key)
    except KeyFormatError as exc:
        raise fail(f"DATABASE_ENCRYPTION_KEY: {exc}", code=2) from exc
    return key


def _audit(session, action: str, entity_id: str | None, after: dict | None = None) -> None:  # noqa: ANN001
    from minimarket.accounts.audit import record_audit

    # Never the value: only which secret and under which key id.
    record_audit(session, cli_context(), action=action, entity="secreto", entity_id=entity_id,
                 after=after)


def _check_name(name: str) -> str:
    if name not in SECRET_FIELDS:
        raise fail(f"Secreto desconocido '{name}'; usá uno de: {', '.join(SECRET_FIELDS)}", code=2)
    return name


def _stdin_is_tty() -> bool:
    return sys.stdin.isatty()


# --------------------------------------------------------------------------- keys


@keys_app.command("generate")
def keys_generate() -> None:
    """Genera una clave nueva al azar (64 hex, 256 bits). No cambia nada en la base."""
    new_key = pysecrets.token_hex(32)
    typer.echo(new_key)  # alone on stdout, for scripts
    err.print(f"Clave nueva generada (id {key_id(new_key)}). Guardala en un lugar seguro antes de usarla; "
              "para ponerla en uso: minimarket keys rotate")


@keys_app.command("status")
def keys_status() -> None:
    """Id de la clave configurada y, por secreto: si está cargado y si se descifra con esa clave."""
    settings = load_settings()
    key = _current_key(settings)
    with open_store(settings) as database, database.read() as session:
        statuses = secrets_status(session, key)
    console.print(f"Clave configurada (DATABASE_ENCRYPTION_KEY): id [bold]{key_id(key)}[/bold]")
    failing = 0
    for status in statuses:
        if not status.is_set:
            console.print(f"  {status.name}: no cargado")
        elif status.ok:
            console.print(f"  {status.name}: [green]OK, se descifra[/green] (clave {status.key_id})")
        else:
            failing += 1
            console.print(f"  {status.name}: [red]FALLA[/red]: {escape(status.error or '')}")
    if failing:
        raise fail(f"{failing} secreto(s) no se descifran con la clave configurada (ver runbook PB5).")


@keys_app.command("rotate")
def keys_rotate(
    new_key: Annotated[str | None, typer.Option(
        "--new-key", help="Clave nueva (64 hex). Si se omite se pide sin mostrarla (evita el historial del shell).",
    )] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="No pedir confirmación")] = False,
) -> None:
    """Re-cifra todos los secretos con una clave nueva, en una sola transacción (todo o nada)."""
    settings = load_settings()
    old_key = _current_key(settings)
    if new_key is None:
        new_key = typer.prompt("Clave nueva (64 hex)", hide_input=True, confirmation_prompt=True)
    try:
        validate_key(new_key)
    except KeyFormatError as exc:
        raise fail(f"Clave nueva inválida: {exc}. Generá una con: minimarket keys generate", code=2) from exc
    if bytes.fromhex(new_key) == bytes.fromhex(old_key):
        raise fail("La clave nueva es igual a la actual (DATABASE_ENCRYPTION_KEY); no hay nada que rotar.", code=2)
    old_id, new_id = key_id(old_key), key_id(new_key)
    if not yes:
        typer.confirm(f"¿Re-cifrar todos los secretos de la clave {old_id} a la clave {new_id}?", abort=True)
    with open_store(settings) as database:
        try:
            with database.write() as session:
                count = rotate_key(session, old_key, new_key)
                _audit(session, "secrets.rotate_key", None, {"from_key_id": old_id, "to_key_id": new_id,
                                                             "secrets": count})
        except DecryptError as exc:
            raise fail(f"Rotación cancelada, no se cambió nada: {exc}") from exc
    console.print(f"{count} secreto(s) re-cifrado(s) con la clave nueva (id [bold]{new_id}[/bold]).")
    console.print(f"[yellow]{escape(ENV_REMINDER)}[/yellow]")


# --------------------------------------------------------------------------- secret


def _read_value(value: str | None) -> str:
    if value is not None:
        return value
    if _stdin_is_tty():
        return typer.prompt("Valor", hide_input=True, confirmation_prompt=True)
    return sys.stdin.read().removesuffix("\n").removesuffix("\r")


@secrets_app.command("set")
def secret_set(
    name: Annotated[str, typer.Argument(help="Nombre: " + ", ".join(SECRET_FIELDS))],
    value: Annotated[str | None, typer.Option(
        "--value", help="Valor (queda en el historial del shell: preferí el prompt oculto o stdin)")] = None,
) -> None:
    """Guarda un secreto cifrado; el valor se pide sin mostrarlo (o por stdin / --value)."""
    _check_name(name)
    settings = load_settings()
    key = _current_key(settings)
    secret = _read_value(value)
    if secret == "":
        raise fail("El valor está vacío; no se guardó nada.", code=2)
    with open_store(settings) as database:
        try:
            with database.write() as session:
                set_secret(session, name, secret, key)
                _audit(session, "secrets.set", name, {"key_id": key_id(key)})
        except (DecryptError, UnknownSecret, ValueError) as exc:
            raise fail(f"No se guardó: {exc}") from exc
    console.print(f"Secreto {name} guardado, cifrado con la clave {key_id(key)}.")


@secrets_app.command("get")
def secret_get(
    name: Annotated[str, typer.Argument(help="Nombre: " + ", ".join(SECRET_FIELDS))],
    show: Annotated[bool, typer.Option("--show", help="Imprimir el valor (solo el valor, en stdout)")] = False,
) -> None:
    """Comprueba que un secreto está cargado y se descifra; con --show imprime el valor."""
    _check_name(name)
    settings = load_settings()
    key = _current_key(settings)
    with open_store(settings) as database, database.read() as session:
        try:
            plaintext = get_secret(session, name, key)
        except DecryptError as exc:
            raise fail(f"No se puede descifrar: {exc}") from exc
    if plaintext is None:
        raise fail(f"El secreto {name} no está cargado. Cargalo con: minimarket secret set {name}")
    if show:
        typer.echo(plaintext)
    else:
        console.print(f"Secreto {name}: cargado y se descifra con la clave {key_id(key)} "
                      "(usá --show para ver el valor).")


@secrets_app.command("clear")
def secret_clear(
    name: Annotated[str, typer.Argument(help="Nombre: " + ", ".join(SECRET_FIELDS))],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="No pedir confirmación")] = False,
) -> None:
    """Borra un secreto (por ejemplo, uno cifrado con una clave perdida, para volver a cargarlo)."""
    _check_name(name)
    settings = load_settings()
    if not yes:
        typer.confirm(f"¿Borrar el secreto {name}? No se puede deshacer.", abort=True)
    with open_store(settings) as database:
        with database.write() as session:
            removed = clear_secret(session, name)
            if removed:
                _audit(session, "secrets.clear", name)
    console.print(f"Secreto {name} borrado." if removed else f"El secreto {name} no estaba cargado.")
