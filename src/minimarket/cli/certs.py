"""`minimarket certs`: generate and check the TLS material between Prometheus and Alertmanager.

Registered in cli.py with ``app.add_typer(certs_app, name="certs")``. It needs no database
nor settings, so it runs on the monitoring host without the store's environment.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from minimarket.ops.tls import (
    ALL_FILES,
    CA_CERT,
    CA_KEY,
    LEAVES,
    TLSMaterialError,
    TLSMaterialExists,
    certificate_expiry,
    check_certificates,
    generate_tls_material,
    last_backup,
    missing_files,
)

DEFAULT_DIR = Path("observability/prometheus/tls")

certs_app = typer.Typer(help="Certificados TLS entre Prometheus y Alertmanager (TLS mutuo).", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _date(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%d/%m/%Y}"


def _parse_owner(value: str | None) -> tuple[int, int] | None:
    """UID[:GID] or USER[:GROUP]; a bare numeric uid uses the same number as gid (65534:65534)."""
    if not value:
        return None
    import grp
    import pwd

    user, _, group = value.partition(":")
    try:
        if user.isdigit():
            uid, default_gid = int(user), int(user)
        else:
            entry = pwd.getpwnam(user)
            uid, default_gid = entry.pw_uid, entry.pw_gid
        if not group:
            gid = default_gid
        else:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError as exc:
        raise typer.BadParameter(f"no existe el usuario o grupo de '{value}'", param_hint="--key-owner") from exc
    return uid, gid


def _parse_hosts(values: list[str] | None) -> dict[str, list[str]] | None:
    if not values:
        return None
    hosts: dict[str, list[str]] = {}
    for value in values:
        name, sep, sans = value.partition("=")
        name = name.strip()
        entries = [s.strip() for s in sans.split(",") if s.strip()]
        if not sep or name not in LEAVES or not entries:
            raise typer.BadParameter(
                f"'{value}' no es válido: usá NOMBRE=SAN1,SAN2 con NOMBRE {' o '.join(LEAVES)} "
                "(ej. alertmanager=alertmanager,localhost,127.0.0.1)", param_hint="--host")
        hosts.setdefault(name, []).extend(entries)
    return hosts


@certs_app.command("generate")
def generate(
    dest: Annotated[Path, typer.Option("--dest", help="Carpeta de los certificados")] = DEFAULT_DIR,
    days: Annotated[int, typer.Option("--days", min=1, max=3650, help="Validez de los certificados de "
                                      "Prometheus y Alertmanager, en días")] = 825,
    ca_days: Annotated[int, typer.Option("--ca-days", min=1, max=36500, help="Validez de una CA nueva, en días")] = 3650,
    force: Annotated[bool, typer.Option("--force", help="Reemplaza los existentes, con copia previa en "
                                        "backup_AAAAMMDD_HHMMSS/")] = False,
    renew_ca: Annotated[bool, typer.Option("--renew-ca", help="Genera también una CA nueva (hay que "
                                           "distribuir el nuevo ca.crt)")] = False,
    host: Annotated[list[str] | None, typer.Option("--host", metavar="NOMBRE=SAN1,SAN2",
                                                   help="Nombres (DNS o IP) de un certificado; reemplaza los de "
                                                   "fábrica. Repetible.")] = None,
    key_owner: Annotated[str | None, typer.Option("--key-owner", metavar="USUARIO[:GRUPO]",
                                                  help="Dueño de prometheus.key y alertmanager.key (ej. 65534 "
                                                  "para las imágenes oficiales de Docker, prometheus con "
                                                  "systemd). Requiere root. ca.key no cambia de dueño.")] = None,
) -> None:
    """Genera la CA y los certificados de Prometheus (cliente) y Alertmanager (servidor)."""
    hosts = _parse_hosts(host)
    owner = _parse_owner(key_owner)
    had_files = any((dest / name).exists() for name in ALL_FILES)
    try:
        written = generate_tls_material(dest, days=days, ca_days=ca_days, hosts=hosts, overwrite=force,
                                        renew_ca=renew_ca, key_owner=owner)
    except TLSMaterialExists as exc:
        err.print(f"[red]Ya hay certificados en {dest}:[/red] " + ", ".join(p.name for p in exc.paths), soft_wrap=True)
        err.print("No se tocó nada. Para reemplazarlos (con copia de respaldo) usá --force.")
        raise typer.Exit(1) from exc
    except TLSMaterialError as exc:
        err.print(f"[red]No se pudieron generar los certificados:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(2) from exc
    except PermissionError as exc:
        hint = " (--key-owner necesita root: probá con sudo)" if owner else ""
        err.print(f"[red]Sin permiso para escribir en {dest}{hint}:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from exc
    except OSError as exc:
        err.print(f"[red]No se pudo escribir en {dest}:[/red] {exc}", soft_wrap=True)
        raise typer.Exit(1) from exc

    backup = last_backup(dest) if force and had_files else None
    if backup is not None:
        console.print(f"Copia de respaldo de los anteriores en {backup}", soft_wrap=True, markup=False)
    table = Table("Archivo", "Vence", title=f"Escritos en {dest}")
    for path in written:
        if path.suffix == ".crt":
            table.add_row(path.name, _date(certificate_expiry(path)))
        else:
            table.add_row(path.name, "clave privada (0600" + (f", dueño {owner[0]}:{owner[1]})"
                                                               if owner and path.name != CA_KEY else ")"))
    console.print(table)
    ca_path = Path(dest) / CA_CERT
    if ca_path in written:
        console.print(f"CA nueva (vence {_date(certificate_expiry(ca_path))}). Si otro equipo tenía una copia de "
                      f"{CA_CERT}, reemplazala también. Guardá {CA_KEY} fuera del servidor si podés.", soft_wrap=True)
    else:
        console.print(f"Se conservó la CA existente (vence {_date(certificate_expiry(ca_path))}): Prometheus y "
                      "Alertmanager se siguen reconociendo.", soft_wrap=True)
    console.print("Reiniciá prometheus y alertmanager para que tomen los certificados nuevos.")


@certs_app.command("check")
def check(
    directory: Annotated[Path, typer.Option("--dir", help="Carpeta de los certificados")] = DEFAULT_DIR,
    warn_days: Annotated[int, typer.Option("--warn-days", min=0, help="Falla si a algún certificado le quedan "
                                           "menos días que estos")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="Imprime el resultado en JSON (para scripts y "
                                          "monitoreo)")] = False,
) -> None:
    """Muestra el vencimiento de cada certificado; sale con 1 si alguno vence pronto, falta o no es válido."""
    now = datetime.now(UTC)
    statuses = check_certificates(directory, warn_days=warn_days, now=now) if directory.is_dir() else []
    missing = missing_files(directory)
    ok = not missing and all(s.ok for s in statuses)
    if as_json:
        sys.stdout.write(json.dumps({
            "ok": ok,
            "directory": str(directory),
            "warn_days": warn_days,
            "missing": missing,
            "certificates": [{
                "file": s.file.name,
                "cn": s.subject_cn,
                "not_after": s.not_after.isoformat() if s.not_after else None,
                "days_left": s.days_left,
                "ok": s.ok,
                "error": s.error,
            } for s in statuses],
        }, ensure_ascii=False) + "\n")
        raise typer.Exit(0 if ok else 1)

    if statuses:
        table = Table("Archivo", "CN", "Vence (UTC)", "Días restantes", "Estado",
                      title=f"Certificados en {directory} (aviso: menos de {warn_days} días)")
        for s in statuses:
            if s.error:
                state = f"[red]{s.error}[/red]"
            elif s.not_after is not None and s.not_after <= now:
                state = "[red]VENCIDO[/red]"
            elif not s.ok:
                state = "[yellow]renovar[/yellow]"
            else:
                state = "[green]OK[/green]"
            table.add_row(s.file.name, s.subject_cn or "—", _date(s.not_after) if s.not_after else "—",
                          str(s.days_left) if s.days_left is not None else "—", state)
        console.print(table)
    for name in missing:
        console.print(f"[red]Falta {directory / name}[/red]", soft_wrap=True)
    if ok:
        console.print(f"[green]OK[/green]: todos los certificados vencen en {warn_days} días o más.")
        return
    console.print("[red]Hay certificados para renovar o corregir.[/red] Ver security/TLS_SETUP.md "
                  "(rotación: minimarket certs generate --force).", soft_wrap=True)
    raise typer.Exit(1)


if __name__ == "__main__":
    certs_app(prog_name="minimarket certs")
