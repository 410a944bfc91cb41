"""Locations (ubicaciones) and store-wide stock settings."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from minimarket.accounts.models import SystemSetting
from minimarket.errors import InvalidInput
from minimarket.stock.models import Location
from minimarket.types import utcnow

NEGATIVE_STOCK_SETTING = "stock.permitir_negativo"


def resolve_location(session: Session, code: str) -> Location:
    location = session.scalars(select(Location).where(Location.code == code.strip().upper())).first()
    if location is None or not location.active:
        known = session.scalars(select(Location.code).where(Location.active.is_(True))).all()
        raise InvalidInput(
            f"location: la ubicación '{code}' no existe; usá una de: {', '.join(known)}",
            details={"location": code},
        )
    return location


def list_locations(session: Session) -> list[Location]:
    return list(session.scalars(select(Location).order_by(Location.id)).all())


def negative_stock_allowed(session: Session, *, default: bool) -> bool:
    """The store's own setting wins over the environment default."""
    value = session.scalar(select(SystemSetting.value).where(SystemSetting.key == NEGATIVE_STOCK_SETTING))
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "si", "sí", "yes")


def set_negative_stock_allowed(session: Session, *, allowed: bool) -> None:
    """Store-wide switch for selling below zero (default: refuse)."""
    row = session.get(SystemSetting, NEGATIVE_STOCK_SETTING)
    value = "true" if allowed else "false"
    if row is None:
        session.add(SystemSetting(key=NEGATIVE_STOCK_SETTING, value=value, updated_at=utcnow()))
    else:
        row.value, row.updated_at = value, utcnow()
