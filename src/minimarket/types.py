"""Column types shared by every area: money, quantities, timestamps, ids."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Integer, Numeric

Money = Numeric(14, 2, asdecimal=True)
Quantity = Numeric(12, 3, asdecimal=True)
# BIGINT on PostgreSQL; SQLite only autoincrements an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Timestamp = DateTime(timezone=True)


def utcnow() -> datetime:
    return datetime.now(UTC)
