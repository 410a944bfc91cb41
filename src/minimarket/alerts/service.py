"""Use cases of the alerts area: store what Alertmanager delivers, list it, note the e-mails."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from minimarket.alerts.models import StoredAlert
from minimarket.alerts.schemas import AlertmanagerNotification, AlertOut, AlertPage, WebhookAlert, WebhookReceipt
from minimarket.errors import InvalidInput
from minimarket.types import utcnow

SUMMARY_MAX = 2000


@dataclass(frozen=True)
class RecordedNotification:
    receipt: WebhookReceipt
    alerts: list[AlertOut]  # as stored, for the e-mail


def _row_values(alert: WebhookAlert, receiver: str, now: datetime) -> dict:
    summary = alert.annotations.get("summary") or alert.annotations.get("description")
    return {
        "name": alert.labels["alertname"],
        "status": alert.status,
        "severity": alert.labels.get("severity"),
        "service": alert.labels.get("service"),
        "summary": summary[:SUMMARY_MAX] if summary else None,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "fingerprint": alert.fingerprint,
        "starts_at": alert.startsAt,
        "ends_at": alert.endsAt,
        "generator_url": alert.generatorURL,
        "receiver": receiver,
        "notifications": 1,
        "received_at": now,
        "updated_at": now,
    }


def _upsert(session: Session, values: dict) -> tuple[int, int]:
    """Insert the occurrence or update the stored one, race-free; returns (id, notifications)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = StoredAlert.__table__
    columns = {StoredAlert.__mapper__.attrs[key].columns[0].name: value for key, value in values.items()}
    stmt = dialect.insert(table).values(**columns)
    new = stmt.excluded
    was_resolved = table.c.estado == "resolved"
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.huella, table.c.inicio],
        set_={
            # A late `firing` never reopens an occurrence Alertmanager already resolved.
            "estado": case((was_resolved, table.c.estado), else_=new.estado),
            "fin": case((was_resolved, table.c.fin), else_=new.fin),
            "severidad": new.severidad, "servicio": new.servicio, "resumen": new.resumen,
            "etiquetas": new.etiquetas, "anotaciones": new.anotaciones, "origen_url": new.origen_url,
            "receptor": new.receptor, "actualizada_en": new.actualizada_en,
            "notificaciones": table.c.notificaciones + 1,
        },
    ).returning(table.c.id, table.c.notificaciones)
    alert_id, count = session.execute(stmt).one()
    return alert_id, count


def record_notification(session: Session, *, notification: AlertmanagerNotification) -> RecordedNotification:
    """Store every alert of one Alertmanager notification (new occurrence: insert; known: update)."""
    now = utcnow()
    ids: list[int] = []
    created = 0
    for alert in notification.alerts:
        alert_id, count = _upsert(session, _row_values(alert, notification.receiver, now))
        ids.append(alert_id)
        created += count == 1
    session.expire_all()  # the upserts bypassed the identity map
    rows = session.scalars(select(StoredAlert).where(StoredAlert.id.in_(ids))).all()
    by_id = {row.id: AlertOut.model_validate(row) for row in rows}
    receipt = WebhookReceipt(received=len(ids), created=created, updated=len(ids) - created, ids=ids)
    return RecordedNotification(receipt=receipt, alerts=[by_id[i] for i in dict.fromkeys(ids)])


def record_email_outcome(session: Session, *, alert_ids: list[int], error: str | None) -> None:
    """Note on each alert when its last e-mail went out, or why it did not."""
    values = {"email_error": error[:1000]} if error else {"emailed_at": utcnow(), "email_error": None}
    session.execute(update(StoredAlert).where(StoredAlert.id.in_(alert_ids)).values(**values))


def list_alerts(session: Session, *, status: str | None = None, active: bool = False, name: str | None = None,
                limit: int = 50, cursor: str | None = None) -> AlertPage:
    """Stored alerts, newest first; `active` keeps only the ones still firing."""
    stmt = select(StoredAlert).order_by(StoredAlert.id.desc()).limit(limit + 1)
    if active:
        stmt = stmt.where(StoredAlert.status == "firing")
    if status:
        stmt = stmt.where(StoredAlert.status == status)
    if name:
        stmt = stmt.where(StoredAlert.name == name)
    if cursor:
        if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 18):  # ids fit in BIGINT
            raise InvalidInput("cursor: valor inválido; usá el next_cursor de la respuesta anterior")
        stmt = stmt.where(StoredAlert.id < int(cursor))
    rows = session.scalars(stmt).all()
    items = [AlertOut.model_validate(row) for row in rows[:limit]]
    return AlertPage(items=items, next_cursor=str(items[-1].id) if len(rows) > limit else None)


def count_firing(session: Session) -> int:
    """How many stored alerts are still firing (Inicio's "alertas activas")."""
    return session.scalar(select(func.count()).select_from(StoredAlert).where(StoredAlert.status == "firing")) or 0
