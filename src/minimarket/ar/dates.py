"""The store's clock: Argentina has one time zone and no daylight saving."""

from __future__ import annotations

from zoneinfo import ZoneInfo

STORE_TZ = ZoneInfo("America/Argentina/Buenos_Aires")
