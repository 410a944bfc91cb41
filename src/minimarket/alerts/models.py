"""Alerts Alertmanager delivered to the store's webhook: one row per alert occurrence."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from minimarket.db import Base
from minimarket.types import BigId, Timestamp, utcnow

ALERT_STATUSES = ("firing", "resolved")


class StoredAlert(Base):
    """One occurrence of an alert (Alertmanager fingerprint + start time).

    Re-sent notifications of the same occurrence (repeat_interval, then `resolved`) update the
    row instead of adding one, so the table reads as the store's alert history.
    """

    __tablename__ = "alertas"
    __table_args__ = (
        UniqueConstraint("huella", "inicio", name="uq_alertas_huella_inicio"),
        Index("ix_alertas_estado_inicio", "estado", "inicio"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column("nombre", String(200), index=True)
    status: Mapped[str] = mapped_column("estado", String(10))
    severity: Mapped[str | None] = mapped_column("severidad", String(50))
    service: Mapped[str | None] = mapped_column("servicio", String(100))
    summary: Mapped[str | None] = mapped_column("resumen", Text)
    labels: Mapped[dict] = mapped_column("etiquetas", JSON)
    annotations: Mapped[dict] = mapped_column("anotaciones", JSON)
    fingerprint: Mapped[str] = mapped_column("huella", String(64))
    starts_at: Mapped[datetime] = mapped_column("inicio", Timestamp)
    ends_at: Mapped[datetime | None] = mapped_column("fin", Timestamp)
    generator_url: Mapped[str | None] = mapped_column("origen_url", Text)
    receiver: Mapped[str | None] = mapped_column("receptor", String(200))
    notifications: Mapped[int] = mapped_column("notificaciones", Integer, default=1)
    received_at: Mapped[datetime] = mapped_column("recibida_en", Timestamp, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column("actualizada_en", Timestamp, default=utcnow)
    # The last e-mail about this alert: when it went out, or why it did not.
    emailed_at: Mapped[datetime | None] = mapped_column("correo_enviado_en", Timestamp)
    email_error: Mapped[str | None] = mapped_column("correo_error", Text)
