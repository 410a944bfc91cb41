"""Routes of the alerts area: Alertmanager's webhook (bearer token) and the stored alerts (API key)."""

from __future__ import annotations

import hmac
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import ValidationError

from minimarket.accounts.audit import Context
from minimarket.accounts.permissions import READ
from minimarket.alerts import service
from minimarket.alerts.notify import notify_by_email
from minimarket.alerts.schemas import AlertmanagerNotification, AlertPage, AlertStatus, WebhookReceipt
from minimarket.api.deps import get_db, require
from minimarket.api.gate import AUTH_FAILURES, Caller, Refusal, header
from minimarket.db import Database
from minimarket.errors import Unauthorized
from minimarket.platform.crypto import DecryptError
from minimarket.platform.errors import validation_response
from minimarket.platform.secrets import get_secret

router = APIRouter(prefix="/api", tags=["alertas"])
log = structlog.get_logger("minimarket.alerts")
TOKEN_SECRET = "alertmanager_webhook_token"
WEBHOOK_PATH = "/api/alerts/webhook"
CHALLENGE = 'Bearer realm="alertmanager"'
RECEIVED = Counter("minimarket_alerts_received_total", "Alerts stored from Alertmanager notifications, by status",
                   ["status"])
# E-mails go out on their own threads, after the answer: a slow SMTP server never holds the
# webhook (nor its latency metrics) and Alertmanager is never kept waiting.
MAILER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="alert-email")
for _status in ("firing", "resolved"):
    RECEIVED.labels(_status)
for _reason in ("webhook_missing", "webhook_invalid", "webhook_not_configured"):
    AUTH_FAILURES.labels(_reason)  # the gate counts the webhook's refusals under these reasons


def webhook_caller(scope: dict[str, Any], app: Any) -> Caller | Refusal:  # noqa: ANN401
    """The gate's check for the webhook: `Authorization: Bearer <token>` equal (constant time) to the
    secret alertmanager_webhook_token. Runs before the body is read; refusals are counted by the gate
    in minimarket_auth_failures_total{reason="webhook_…"}."""
    scheme, _, presented = (header(scope, b"authorization") or "").partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        return Refusal("webhook_missing", "Falta el token: enviá Authorization: Bearer <token> "
                       "(alertmanager.yml: http_config.authorization)", challenge=CHALLENGE)
    settings, expected = app.state.settings, None
    if settings.database_encryption_key:
        try:
            with app.state.db.read() as session:
                expected = get_secret(session, TOKEN_SECRET, settings.database_encryption_key)
        except DecryptError as exc:
            log.error("alert_webhook_token_unreadable", error=str(exc))
    if not expected:
        return Refusal("webhook_not_configured",
                       f"El webhook de alertas no tiene token: definilo con 'minimarket secret set {TOKEN_SECRET}' "
                       "(requiere DATABASE_ENCRYPTION_KEY) y poné el mismo en el credentials_file de alertmanager.yml",
                       status=503, code="webhook_no_configurado")
    if not hmac.compare_digest(presented.encode(), expected.encode()):
        return Refusal("webhook_invalid", "Token inválido para el webhook de alertas", challenge=CHALLENGE)
    return Caller(actor="alertmanager", principal_id="token:alertmanager")


def _store(db: Database, notification: AlertmanagerNotification) -> service.RecordedNotification:
    with db.write() as session:
        recorded = service.record_notification(session, notification=notification)
    for alert in notification.alerts:  # counted once committed
        RECEIVED.labels(alert.status).inc()
    return recorded


@router.post(
    WEBHOOK_PATH.removeprefix("/api"), status_code=200, response_model=WebhookReceipt,
    summary="Receptor de Alertmanager (webhook, versión 4)",
    description="Lo llama Alertmanager con `Authorization: Bearer <token>` (secreto alertmanager_webhook_token). "
                "El token se comprueba antes de leer el cuerpo. Cada alerta se guarda en `alertas` (la misma "
                "ocurrencia —huella + inicio— se actualiza) y, con SMTP configurado, se avisa por correo "
                "a las direcciones de `alertas.emails` después de guardar, sin demorar la respuesta.",
)
async def receive_alerts(request: Request) -> JSONResponse:
    caller = request.scope.get("state", {}).get("caller")
    if not (isinstance(caller, Caller) and caller.principal_id == "token:alertmanager"):
        raise Unauthorized("Falta el token: enviá Authorization: Bearer <token>")  # the gate was bypassed
    db, settings = request.app.state.db, request.app.state.settings
    try:
        notification = AlertmanagerNotification.model_validate_json(await request.body())
    except ValidationError as exc:
        return validation_response(list(exc.errors()))
    recorded = await run_in_threadpool(_store, db, notification)
    log.info("alerts_received", receiver=notification.receiver, status=notification.status,
             created=recorded.receipt.created, updated=recorded.receipt.updated)
    MAILER.submit(notify_by_email, db, settings, recorded.alerts)
    return JSONResponse(recorded.receipt.model_dump(mode="json"))


@router.get("/alerts", response_model=AlertPage, summary="Alertas recibidas de Alertmanager, de la más nueva a la más vieja")
def list_alerts(
    status: Annotated[AlertStatus | None, Query(description="firing (activa) o resolved (resuelta)")] = None,
    active: Annotated[bool, Query(description="Sólo las que siguen activas")] = False,
    name: Annotated[str | None, Query(max_length=200, description="Nombre de la alerta (ej. DatabaseDown)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=30)] = None,
    _ctx: Context = Depends(require(READ)),
    db: Database = Depends(get_db),
) -> AlertPage:
    with db.read() as session:
        return service.list_alerts(session, status=status, active=active, name=name, limit=limit, cursor=cursor)
