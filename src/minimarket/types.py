"""Column types shared by every area: money, quantities, timestamps, ids."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Integer, Numeric
from sqlalchemy.types import TypeDecorator

Money = Numeric(14, 2, asdecimal=True)
Quantity = Numeric(12, 3, asdecimal=True)
# BIGINT on PostgreSQL; SQLite only autoincrements an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator):
    """TIMESTAMPTZ on PostgreSQL; on SQLite (no zones) stored in UTC and read back as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):  # noqa: ANN001, ANN201
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):  # noqa: ANN001, ANN201
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


Timestamp = UTCDateTime()


def utcnow() -> datetime:
    return datetime.now(UTC)


def storable_text(value: object) -> object:
    """Refuse text PostgreSQL cannot store (NUL, 0x00), the same on every backend; other values pass."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("no puede contener el carácter NUL (\\u0000)")
    return value
