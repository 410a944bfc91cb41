"""Text search in SQL: `q=` finds what was typed, literally, on PostgreSQL and SQLite alike."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func

ESCAPE = "\\"


def escape_like(text: str) -> str:
    """`text` for a LIKE pattern with ESCAPE '\\': %, _ and the escape itself stand for themselves."""
    return text.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")


def contains_text(column: ColumnElement, text: str) -> ColumnElement[bool]:
    """lower(column) contains lower(text) as written: `q=%` is a percent sign, `q=SEC_1` does not find SEC-1."""
    return func.lower(column).like("%" + escape_like(text.strip().lower()) + "%", escape=ESCAPE)
