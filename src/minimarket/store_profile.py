"""The store's own data: its name, CUIT, address, phone and e-mail, as the store writes them on its papers
(purchase orders, reports). Kept in `ajustes` through store_settings; every change audited."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from sqlalchemy.orm import Session

from minimarket import store_settings
from minimarket.accounts.audit import Context, record_audit
from minimarket.ar.cuit import cuit_problem, format_cuit, normalise_cuit
from minimarket.errors import InvalidInput
from minimarket.plain_input import name_text

KEYS = {"name": store_settings.STORE_NAME, "cuit": store_settings.STORE_CUIT,
        "address": store_settings.STORE_ADDRESS, "phone": store_settings.STORE_PHONE,
        "email": store_settings.STORE_EMAIL}
LIMITS = {"name": 200, "cuit": 13, "address": 300, "phone": 50, "email": 200}
LABELS = {"name": "Nombre", "cuit": "CUIT", "address": "Dirección", "phone": "Teléfono", "email": "E-mail"}
_EMAIL = re.compile(r"^[^@\s,;<>\"]+@[^@\s,;<>\"]+\.[^@\s,;<>\"]+$")


@dataclass(frozen=True)
class StoreProfile:
    name: str = ""
    cuit: str = ""  # 11 digits, shown with dashes by `cuit_display`
    address: str = ""
    phone: str = ""
    email: str = ""

    @property
    def cuit_display(self) -> str:
        return format_cuit(self.cuit) if self.cuit else ""

    @property
    def empty(self) -> bool:
        return not any(asdict(self).values())


def load_store_profile(session: Session) -> StoreProfile:
    return StoreProfile(**{field: store_settings.read_value(session, key) or "" for field, key in KEYS.items()})


def _checked(field: str, raw: str) -> str:
    label = LABELS[field]
    try:
        value = name_text(raw) or ""
    except ValueError as exc:
        raise InvalidInput(f"{label}: {exc}") from None
    if len(value) > LIMITS[field]:
        raise InvalidInput(f"{label}: tiene {len(value)} caracteres; el máximo es {LIMITS[field]}")
    if field == "cuit" and value:
        problem = cuit_problem(value)
        if problem:
            raise InvalidInput(f"CUIT: {problem}")
        return normalise_cuit(value)
    if field == "email" and value and not _EMAIL.match(value):
        raise InvalidInput(f"E-mail: '{value[:80]}' no es una dirección válida (ej. compras@minimercado.com.ar)")
    return value.lower() if field == "email" else value


def update_store_profile(session: Session, ctx: Context, **values: str) -> StoreProfile:
    """Check and save every field given (empty clears it); audited as `settings.store_profile`."""
    before = load_store_profile(session)
    checked = {field: _checked(field, values[field]) for field in KEYS if field in values}
    for field, value in checked.items():
        store_settings.write_value(session, KEYS[field], value)
    after = StoreProfile(**{**asdict(before), **checked})
    if after != before:
        record_audit(session, ctx, action="settings.store_profile", entity="ajustes", entity_id="tienda",
                     before=asdict(before), after=asdict(after))
    return after
