"""Who is acting, and the append-only audit trail of what they changed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from minimarket.accounts.models import AuditEntry
from minimarket.platform.deferred import defer
from minimarket.types import utcnow

_audit = AuditEntry.__table__
RECORD = insert(_audit).inline()  # built once, sent with each row's values (`audit_row`)


@dataclass(frozen=True)
class Context:
    """The actor and request behind a business operation."""

    actor: str
    request_id: str | None = None
    # Stable identity of the credential (API key id); scopes Idempotency-Key values.
    principal_id: str | None = None
    # The caller's role (API keys); None for the command line and internal jobs.
    role: str | None = None


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda v: str(v) if isinstance(v, Decimal) else v.isoformat()))


def record_audit(
    session: Session,
    ctx: Context,
    *,
    action: str,
    entity: str,
    entity_id: str | None,
    before: dict | None = None,
    after: dict | None = None,
) -> None:
    """Append one audit row in the caller's transaction (sent with its commit: platform.deferred)."""
    defer(session, RECORD, audit_row(ctx, action=action, entity=entity, entity_id=entity_id, before=before,
                                      after=after))


def audit_row(ctx: Context, *, action: str, entity: str, entity_id: str | None, before: dict | None = None,
              after: dict | None = None) -> dict:
    """The values of one audit row (`RECORD`'s parameters)."""
    return {
        "creado_en": utcnow(),
        "actor": ctx.actor,
        "accion": action,
        "entidad": entity,
        "entidad_id": entity_id,
        "antes": _jsonable(before) if before is not None else None,
        "despues": _jsonable(after) if after is not None else None,
        "request_id": ctx.request_id,
    }
