"""The store's invoice settings (`ajustes`, through store_settings)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from minimarket import store_settings
from minimarket.accounts.audit import Context, record_audit
from minimarket.errors import InvalidInput


def deposito_can_confirm(session: Session) -> bool:
    return store_settings.parse_flag(store_settings.read_value(session, store_settings.DEPOSITO_CONFIRMS_INVOICES),
                                     default=False)


def set_deposito_can_confirm(session: Session, ctx: Context, *, allowed: bool) -> None:
    before = deposito_can_confirm(session)
    store_settings.write_value(session, store_settings.DEPOSITO_CONFIRMS_INVOICES, "true" if allowed else "false")
    if before != allowed:
        record_audit(session, ctx, action="settings.invoices", entity="ajustes",
                     entity_id=store_settings.DEPOSITO_CONFIRMS_INVOICES,
                     before={"deposito_can_confirm": before}, after={"deposito_can_confirm": allowed})


# The store's standing before IVA. Only a responsable inscripto takes the IVA of an A or M invoice
# as a credit, so only for it is that IVA not part of what the goods cost.
TAX_CONDITIONS = ("responsable_inscripto", "monotributo", "exento")


def tax_condition(session: Session) -> str:
    value = store_settings.read_value(session, store_settings.TAX_CONDITION)
    return value if value in TAX_CONDITIONS else TAX_CONDITIONS[0]


def set_tax_condition(session: Session, ctx: Context, *, condition: str) -> None:
    if condition not in TAX_CONDITIONS:
        raise InvalidInput(f"tax_condition: '{condition[:40]}' no es una condición frente al IVA; "
                           f"usá una de: {', '.join(TAX_CONDITIONS)}")
    before = tax_condition(session)
    store_settings.write_value(session, store_settings.TAX_CONDITION, condition)
    if before != condition:
        record_audit(session, ctx, action="settings.invoices", entity="ajustes",
                     entity_id=store_settings.TAX_CONDITION,
                     before={"tax_condition": before}, after={"tax_condition": condition})
