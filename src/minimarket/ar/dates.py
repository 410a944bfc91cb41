"""The store's clock: Argentina has one time zone and no daylight saving; dates as `dd/mm/aaaa`."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

STORE_TZ = ZoneInfo("America/Argentina/Buenos_Aires")


def local(moment: datetime) -> datetime:
    """A stored (UTC) moment on the store's clock."""
    return moment.astimezone(STORE_TZ) if moment.tzinfo else moment.replace(tzinfo=STORE_TZ)


def format_date(value: date | datetime | None) -> str:
    """`30/11/2026` (a moment is shown on the store's clock)."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        value = local(value)
    return f"{value:%d/%m/%Y}"


def format_datetime(value: datetime | None) -> str:
    """`30/11/2026 18:45` on the store's clock."""
    return "—" if value is None else f"{local(value):%d/%m/%Y %H:%M}"


MONTHS_SHORT = ("ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic")  # es-AR (CLDR)


def format_month(value: date) -> str:
    """`nov 2026`: a month as es-AR abbreviates it."""
    return f"{MONTHS_SHORT[value.month - 1]} {value.year}"


def store_day_start(now: datetime | None = None) -> datetime:
    """Midnight today on the store's clock."""
    moment = (now or datetime.now(STORE_TZ)).astimezone(STORE_TZ)
    return datetime.combine(moment.date(), time(0), STORE_TZ)


def store_week_start(now: datetime | None = None) -> datetime:
    """Monday 00:00 of this week on the store's clock."""
    day = store_day_start(now)
    return day - timedelta(days=day.weekday())
