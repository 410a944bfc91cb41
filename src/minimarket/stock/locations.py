"""Locations (ubicaciones): resolving a code, listing them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from minimarket.errors import InvalidInput
from minimarket.stock.models import Location


def resolve_location(session: Session, code: str) -> Location:
    # Codes are ASCII: "ſal".upper() would be "SAL", a look-alike finding a real location.
    key = code.strip().upper() if code.isascii() else code
    location = session.scalars(select(Location).where(Location.code == key)).first()
    if location is None or not location.active:
        known = session.scalars(select(Location.code).where(Location.active.is_(True))).all()
        raise InvalidInput(
            f"location: la ubicación '{code}' no existe; usá una de: {', '.join(known)}",
            details={"location": code},
        )
    return location


def list_locations(session: Session) -> list[Location]:
    return list(session.scalars(select(Location).order_by(Location.id)).all())
