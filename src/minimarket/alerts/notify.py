"""E-mail the store's addresses about the alerts Alertmanager delivered (after they are stored).

Runs on its own thread after the alerts are committed (api.MAILER), with a short SMTP timeout. A failure
is logged, counted and noted on the alert rows (`correo_error`); the stored alerts stay.
SMTP: SMTP_HOST / SMTP_PORT / SMTP_USER / SMTP_FROM / SMTP_SECURITY in the environment, the
password in the `smtp_password` secret, the recipients in the store setting `alertas.emails`.
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

import structlog
from prometheus_client import Counter
from sqlalchemy.orm import Session

from minimarket.alerts.schemas import AlertOut
from minimarket.alerts.service import record_email_outcome
from minimarket.ar.dates import STORE_TZ
from minimarket.config import Settings
from minimarket.db import Database
from minimarket.platform.crypto import DecryptError
from minimarket.platform.secrets import get_secret
from minimarket.store_settings import ALERT_EMAILS, read_value, write_value

log = structlog.get_logger("minimarket.alerts")
EMAILS = Counter("minimarket_alert_emails_total", "Alert e-mails: sent, failed, or skipped (SMTP or recipients "
                 "not configured)", ["result"])
for _result in ("sent", "failed", "skipped"):
    EMAILS.labels(_result)
_ADDRESS = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\"]+$")
STATUS_ES = {"firing": "ACTIVA", "resolved": "RESUELTA"}


class EmailNotSent(Exception):
    """The e-mail could not go out; the message says why, in Spanish."""


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    user: str | None
    password: str | None
    security: str
    timeout: float


def parse_recipients(text: str) -> list[str]:
    """Comma-separated addresses, each checked; ValueError names the bad one."""
    addresses = [a.strip() for a in text.split(",") if a.strip()]
    for address in addresses:
        if len(address) > 254 or not _ADDRESS.match(address):
            raise ValueError(f"'{address[:80]}' no es una dirección de correo válida (ej. encargado@minimercado.com.ar)")
    return addresses


def read_recipients(session: Session) -> list[str]:
    return parse_recipients(read_value(session, ALERT_EMAILS) or "")


def write_recipients(session: Session, addresses: list[str]) -> None:
    write_value(session, ALERT_EMAILS, ",".join(parse_recipients(",".join(addresses))))


def smtp_config(settings: Settings, session: Session) -> SmtpConfig | None:
    """The SMTP server to use, or None when SMTP_HOST is not set; EmailNotSent if half-configured."""
    if not settings.smtp_host:
        return None
    password = None
    if settings.smtp_user:
        if not settings.database_encryption_key:
            raise EmailNotSent("SMTP_USER está definido pero falta DATABASE_ENCRYPTION_KEY para leer smtp_password")
        try:
            password = get_secret(session, "smtp_password", settings.database_encryption_key)
        except DecryptError as exc:
            raise EmailNotSent(f"no se pudo leer el secreto smtp_password: {exc}") from None
        if password is None:
            raise EmailNotSent("SMTP_USER está definido pero falta el secreto: minimarket secret set smtp_password")
    sender = settings.smtp_from or settings.smtp_user or f"minimarket@{settings.smtp_host}"
    return SmtpConfig(host=settings.smtp_host, port=settings.smtp_port, sender=sender, user=settings.smtp_user,
                      password=password, security=settings.smtp_security, timeout=settings.smtp_timeout_seconds)


def _when(value) -> str:  # noqa: ANN001
    return value.astimezone(STORE_TZ).strftime("%d/%m/%Y %H:%M:%S") if value else "—"


def compose_email(alerts: list[AlertOut], *, sender: str, recipients: list[str]) -> EmailMessage:
    """One message about the alerts of one notification, in Spanish."""
    firing = [a for a in alerts if a.status == "firing"]
    head = alerts[0]
    state = STATUS_ES["firing"] if firing else STATUS_ES["resolved"]
    names = ", ".join(dict.fromkeys(a.name for a in alerts))
    where = f" en {head.service}" if head.service and all(a.service == head.service for a in alerts) else ""
    message = EmailMessage()
    message["Subject"] = f"[Mini Market] {state}: {names}{where}"[:200]
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Message-ID"] = make_msgid(domain="minimarket")
    lines = [f"Alertmanager avisó {len(alerts)} alerta(s) ({len(firing)} activa(s)).", ""]
    for a in alerts:
        lines += [f"• {a.name} — {STATUS_ES[a.status]}" + (f" — {a.severity}" if a.severity else ""),
                  f"  Servicio: {a.service or 'toda la tienda'}",
                  f"  Resumen: {a.summary or '—'}"]
        if description := a.annotations.get("description"):
            lines.append(f"  Detalle: {description}")
        lines.append(f"  Desde: {_when(a.starts_at)}" + (f"  Hasta: {_when(a.ends_at)}" if a.status == "resolved" else ""))
        if runbook := a.annotations.get("runbook_url"):
            lines.append(f"  Qué hacer: {runbook}")
        lines.append("")
    lines.append("Historial: GET /api/alerts (docs/RESPONDING_TO_ALERTS.md).")
    message.set_content("\n".join(lines))
    return message


def send_email(config: SmtpConfig, message: EmailMessage) -> None:
    """Deliver through the SMTP server; EmailNotSent (in Spanish) on any failure."""
    try:
        context = ssl.create_default_context()
        # HELO with the plain host name: smtplib's default getfqdn() can wait on DNS for seconds.
        helo = socket.gethostname() or "minimarket"
        if config.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(config.host, config.port, local_hostname=helo,
                                                    timeout=config.timeout, context=context)
        else:
            client = smtplib.SMTP(config.host, config.port, local_hostname=helo, timeout=config.timeout)
        with client:
            if config.security == "starttls":
                client.starttls(context=context)
            if config.user:
                client.login(config.user, config.password or "")
            refused = client.send_message(message)
        if refused:
            raise EmailNotSent(f"el servidor SMTP rechazó a: {', '.join(refused)}")
    except (OSError, smtplib.SMTPException) as exc:
        raise EmailNotSent(f"SMTP {config.host}:{config.port}: {type(exc).__name__}: {exc}"[:500]) from None


def notify_by_email(db: Database, settings: Settings, alerts: list[AlertOut]) -> str:
    """E-mail the store about `alerts`; never raises. Returns sent | failed | skipped."""
    ids = [a.id for a in alerts]
    try:
        with db.read() as session:
            config = smtp_config(settings, session)
            recipients = read_recipients(session) if config else []
        if config is None or not recipients:
            EMAILS.labels("skipped").inc()
            log.info("alert_email_skipped", reason="smtp" if config is None else "recipients", alerts=len(ids))
            return "skipped"
        send_email(config, compose_email(alerts, sender=config.sender, recipients=recipients))
        error = None
    except (EmailNotSent, ValueError) as exc:
        error = str(exc)
    except Exception as exc:  # noqa: BLE001 - a mail thread must not die silently
        error = f"{type(exc).__name__}: {exc}"[:500]
    EMAILS.labels("failed" if error else "sent").inc()
    if error:
        log.warning("alert_email_failed", error=error, alerts=len(ids))
    else:
        log.info("alert_email_sent", recipients=len(recipients), alerts=len(ids))
    try:
        with db.write() as session:
            record_email_outcome(session, alert_ids=ids, error=error)
    except Exception as exc:  # noqa: BLE001 - the alerts are stored; only the note is lost
        log.warning("alert_email_outcome_not_recorded", error=str(exc)[:200])
    return "failed" if error else "sent"
