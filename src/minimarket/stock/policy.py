"""The store's stock policy: where movements go by default and whether stock may go below zero.

Stock services load it inside their own unit of work (`load_stock_policy`); routes never read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from minimarket import store_settings
from minimarket.config import Settings


@dataclass(frozen=True)
class StockPolicy:
    allow_negative: bool
    default_location: str


def negative_stock_allowed(session: Session, *, default: bool) -> bool:
    """The store's own setting wins over the environment default."""
    return store_settings.parse_flag(store_settings.read_value(session, store_settings.NEGATIVE_STOCK),
                                     default=default)


def negative_stock_setting():  # noqa: ANN201
    """The stored setting as a scalar subquery, for a statement that reads other rows too (`policy_from`)."""
    return store_settings.value_query(store_settings.NEGATIVE_STOCK)


def set_negative_stock_allowed(session: Session, *, allowed: bool) -> None:
    """Store-wide switch for selling below zero (default: refuse)."""
    store_settings.write_value(session, store_settings.NEGATIVE_STOCK, "true" if allowed else "false")


def load_stock_policy(session: Session, settings: Settings) -> StockPolicy:
    """The policy in force for this unit of work: the store's `ajustes` over the environment's defaults."""
    return StockPolicy(allow_negative=negative_stock_allowed(session, default=settings.allow_negative_stock),
                       default_location=settings.default_location)


def policy_from(stored: str | None, settings: Settings) -> StockPolicy:
    """`load_stock_policy` from the setting as read by `negative_stock_setting()` in the caller's statement."""
    return StockPolicy(allow_negative=store_settings.parse_flag(stored, default=settings.allow_negative_stock),
                       default_location=settings.default_location)
