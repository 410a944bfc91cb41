"""`minimarket alerts`: who gets the alert e-mails, a test e-mail, and the last alerts received.

Registered in cli/main.py with ``app.add_typer(alerts_app, name="alerts")``.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from minimarket.cli.terminal import load_settings, open_store

# The store's modules are imported inside each command (startup time of every `minimarket` process).

alerts_app = typer.Typer(help="Alertas que llegan de Alertmanager: correos de aviso e historial.",
                         no_args_is_help=True)
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)

def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]{escape(message)}[/red]")
    return typer.Exit(code)

@alerts_app.command("emails")
def emails(
    addresses: Annotated[list[str] | None, typer.Argument(help="Direcciones que reciben las alertas")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="No mandar más correos de alertas")] = False,
) -> None:
    """Muestra o cambia a quién se mandan las alertas por correo (ajuste `alertas.emails`)."""
    from minimarket.accounts.audit import Context, record_audit
    from minimarket.alerts.notify import read_recipients, write_recipients

    settings = load_settings()
    with open_store(settings) as database:
        if addresses or clear:
            with database.write() as session:
                before = read_recipients(session)
                try:
                    write_recipients(session, [] if clear else list(addresses or []))
                except ValueError as exc:
                    raise _fail(f"No se guardó: {exc}", 2) from exc
                record_audit(session, Context(actor="cli"), action="settings.alert_emails", entity="ajustes",
                             entity_id="alertas.emails", before={"emails": before},
                             after={"emails": read_recipients(session)})
        with database.read() as session:
            current = read_recipients(session)
    console.print("Correos de alertas: " + (", ".join(current) if current else "ninguno (no se manda correo)"))
    if current and not settings.smtp_host:
        console.print("[yellow]Falta SMTP_HOST: sin servidor de correo no sale ningún aviso.[/yellow]")

@alerts_app.command("test-email")
def test_email() -> None:
    """Manda ahora un correo de prueba a las direcciones de alertas (comprueba SMTP)."""
    from minimarket.alerts.notify import EmailNotSent, compose_email, read_recipients, send_email, smtp_config
    from minimarket.alerts.schemas import AlertOut
    from minimarket.types import utcnow

    settings = load_settings()
    with open_store(settings) as database:
        with database.read() as session:
            try:
                config = smtp_config(settings, session)
            except EmailNotSent as exc:
                raise _fail(str(exc)) from exc
            recipients = read_recipients(session)
    if config is None:
        raise _fail("SMTP_HOST no está definido: configurá SMTP_HOST, SMTP_PORT, SMTP_USER y SMTP_FROM")
    if not recipients:
        raise _fail("No hay direcciones: cargalas con minimarket alerts emails encargado@ejemplo.com")
    now = utcnow()
    sample = AlertOut(id=0, name="PruebaDeCorreo", status="firing", severity="info", service=None,
                      summary="Correo de prueba de Mini Market: si lo recibís, las alertas te van a llegar",
                      labels={"alertname": "PruebaDeCorreo"}, annotations={}, fingerprint="0", starts_at=now,
                      ends_at=None, generator_url=None, receiver=None, notifications=1, received_at=now,
                      updated_at=now, emailed_at=None, email_error=None)
    try:
        send_email(config, compose_email([sample], sender=config.sender, recipients=recipients))
    except EmailNotSent as exc:
        raise _fail(f"No se pudo mandar: {exc}") from exc
    console.print(f"Correo de prueba enviado a {', '.join(recipients)} por {config.host}:{config.port}.")

@alerts_app.command("list")
def list_recent(
    active: Annotated[bool, typer.Option("--active", help="Sólo las que siguen activas")] = False,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
) -> None:
    """Las últimas alertas recibidas de Alertmanager."""
    from minimarket.alerts.service import list_alerts
    from minimarket.ar.dates import STORE_TZ

    settings = load_settings()
    with open_store(settings) as database:
        with database.read() as session:
            page = list_alerts(session, active=active, limit=limit)
    table = Table("Alerta", "Estado", "Severidad", "Servicio", "Desde", "Correo", title="Alertas recibidas")
    for a in page.items:
        mail = "enviado" if a.emailed_at else ("error" if a.email_error else "—")
        table.add_row(a.name, "ACTIVA" if a.status == "firing" else "resuelta", a.severity or "—", a.service or "—",
                      a.starts_at.astimezone(STORE_TZ).strftime("%d/%m/%Y %H:%M"), mail)
    console.print(table)
