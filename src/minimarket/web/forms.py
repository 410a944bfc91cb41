"""What the dashboard's forms share: es-AR numbers in, the service's schema errors out with the form's labels,
and one retry-safe write per form (its hidden `idempotency_key`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
import re
from decimal import Decimal
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from minimarket.accounts.audit import Context
from minimarket.errors import InvalidInput
from minimarket.platform.errors import spanish_message
from minimarket.platform.idempotency import check_client_key, fingerprint, run_once

Model = TypeVar("Model", bound=BaseModel)
_PLAIN = re.compile(r"[-+]?[0-9]+(?:\.[0-9]+)?")
_THOUSANDS = re.compile(r"[-+]?[1-9][0-9]{0,2}(?:\.[0-9]{3})+")
_ES_AR = re.compile(r"[-+]?[0-9]{1,3}(?:\.[0-9]{3})*,[0-9]+|[-+]?[0-9]+,[0-9]+")


def new_form_key() -> str:
    """The hidden key of a form shown once: a double tap or a resent form writes once."""
    return uuid.uuid4().hex


def parse_decimal(raw: str, label: str, *, example: str = "10 o 2,5", required: bool = True) -> Decimal | None:
    """`12`, `1,5`, `1.234,5` (es-AR) or `1.5` → Decimal; InvalidInput naming the field's label.

    Only ASCII digits, one decimal separator and es-AR thousands dots (`1.000` is a thousand, `1.5` one and a
    half, `0.250` a quarter): no exponent, `_` or other scripts' digits.
    """
    text = raw.strip()
    if not text:
        if required:
            raise InvalidInput(f"{label}: completalo (por ejemplo {example})")
        return None
    if ("," in text and _ES_AR.fullmatch(text)) or _THOUSANDS.fullmatch(text):  # es-AR: 1.000 is a thousand
        text = text.replace(".", "").replace(",", ".")
    if not _PLAIN.fullmatch(text):
        raise InvalidInput(f"{label}: '{raw.strip()[:40]}' no es un número; escribí por ejemplo {example}")
    return Decimal(text)


def build(model: type[Model], labels: dict[str, str], **values: Any) -> Model:
    """The service's own input schema from form values; its first error names the form's label."""
    try:
        return model(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(part) for part in first.get("loc", ())]
        field = next((labels[p] for p in reversed(loc) if p in labels), None)
        message = spanish_message(first)
        if field is None:  # a rule over the whole form names the API field first ("percent: …")
            name, sep, rest = message.partition(": ")
            field, message = (labels[name], rest) if sep and name in labels else ("Formulario", message)
        raise InvalidInput(f"{field}: {message}") from None


def write_once(request: Request, ctx: Context, *, form_key: str, route: str, payload: Any,
               work: Callable[[Session], dict]) -> dict:
    """Run `work` in one unit of work at most once per (user, form key); a repeat returns the first answer."""
    client_key = check_client_key(form_key or None)
    outcome = run_once(request.app.state.db,
                       key="k:" + fingerprint(ctx.principal_id, client_key) if client_key else None,
                       request_hash=fingerprint("POST", route, payload),
                       operation=lambda session: (201, work(session)), label="El formulario")
    return outcome.body
