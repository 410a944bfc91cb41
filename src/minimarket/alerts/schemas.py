"""API shapes: Alertmanager's webhook payload (version 4) in, stored alerts out."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from minimarket.types import storable_text

AlertStatus = Literal["firing", "resolved"]
MAX_ALERTS = 1000  # per notification; a bigger group arrives as several (or truncatedAlerts says so)
MAX_LABELS = 64
MAX_LABEL_VALUE = 1000
MAX_ANNOTATION_VALUE = 10_000
_FINGERPRINT = r"^[0-9a-f]{1,64}$"
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,199}$")


def _checked_map(value: dict[str, str], *, max_value: int) -> dict[str, str]:
    if len(value) > MAX_LABELS:
        raise ValueError(f"puede tener como máximo {MAX_LABELS} entradas")
    for name, text in value.items():
        if not _LABEL_NAME.match(name):
            raise ValueError(f"'{name[:50]}' no es un nombre válido (letras, dígitos y _, hasta 200)")
        if len(text) > max_value:
            raise ValueError(f"'{name}' es demasiado largo (máximo {max_value} caracteres)")
        storable_text(text)
    return value


class WebhookAlert(BaseModel):
    """One alert of the notification, as Alertmanager sends it."""

    model_config = ConfigDict(extra="ignore")

    status: AlertStatus
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: AwareDatetime  # noqa: N815 - Alertmanager's field names
    endsAt: AwareDatetime | None = None  # noqa: N815
    generatorURL: str | None = Field(default=None, max_length=2000)  # noqa: N815
    fingerprint: str = Field(pattern=_FINGERPRINT, description="Huella de Alertmanager (hexadecimal)")

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        value = _checked_map(value, max_value=MAX_LABEL_VALUE)
        if not value.get("alertname", "").strip():
            raise ValueError("falta la etiqueta 'alertname'")
        if len(value["alertname"]) > 200:
            raise ValueError("'alertname' es demasiado largo (máximo 200 caracteres)")
        return value

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, value: dict[str, str]) -> dict[str, str]:
        return _checked_map(value, max_value=MAX_ANNOTATION_VALUE)

    @field_validator("generatorURL")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        return storable_text(value)  # type: ignore[return-value]

    @field_validator("endsAt")
    @classmethod
    def _zero_time_is_none(cls, value: datetime | None) -> datetime | None:
        # Alertmanager sends 0001-01-01T00:00:00Z for "no end yet".
        return None if value is not None and value.year <= 1 else value


class AlertmanagerNotification(BaseModel):
    """Alertmanager's webhook payload, version 4 (prometheus.io/docs/alerting/latest/configuration/#webhook_config)."""

    model_config = ConfigDict(extra="ignore")

    version: Literal["4"]
    status: AlertStatus
    receiver: str = Field(max_length=200)
    groupKey: str | None = Field(default=None, max_length=2000)  # noqa: N815
    truncatedAlerts: int = Field(default=0, ge=0)  # noqa: N815
    externalURL: str | None = Field(default=None, max_length=2000)  # noqa: N815
    alerts: list[WebhookAlert] = Field(min_length=1, max_length=MAX_ALERTS)

    @field_validator("receiver", "groupKey", "externalURL")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        return storable_text(value)  # type: ignore[return-value]


class WebhookReceipt(BaseModel):
    received: int = Field(description="Alertas en la notificación")
    created: int = Field(description="Alertas nuevas guardadas")
    updated: int = Field(description="Alertas ya guardadas que se actualizaron (repetición o resolución)")
    ids: list[int]


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    status: AlertStatus
    severity: str | None
    service: str | None
    summary: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    fingerprint: str
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str | None
    receiver: str | None
    notifications: int
    received_at: datetime
    updated_at: datetime
    emailed_at: datetime | None
    email_error: str | None


class AlertPage(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None
