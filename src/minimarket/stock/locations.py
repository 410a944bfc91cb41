"""Locations (ubicaciones): resolving a code, listing them."""

from __future__ import annotations

from sqlalchemy import String, bindparam, select
from sqlalchemy.orm import Session

from minimarket.errors import InvalidInput
from minimarket.stock.models import Location


def location_key(code: str) -> str:
    # Codes are ASCII: "ſal".upper() would be "SAL", a look-alike finding a real location.
    return code.strip().upper() if code.isascii() else code


def active_location_id():  # noqa: ANN201
    """The id of the active location whose code is the parameter `location_code` (a `location_key`) as a scalar
    subquery (NULL when there is none), to read it in the same statement as other rows; `resolve_location`
    says why when it is NULL."""
    return (select(Location.id).where(Location.code == bindparam("location_code", type_=String), Location.active.is_(True))
            .scalar_subquery())


def resolve_location(session: Session, code: str) -> Location:
    key = location_key(code)
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
