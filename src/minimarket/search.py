"""Text search in SQL: `q=` finds what was typed, literally, on PostgreSQL and SQLite alike."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func

ESCAPE = "\\"


def escape_like(text: str) -> str:
    """`text` for a LIKE pattern with ESCAPE '\\': %, _ and the escape itself stand for themselves."""
    return text.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")


def contains_text(column: ColumnElement, text: str, *, fold: bool = True) -> ColumnElement[bool]:
    """lower(column) contains lower(text) as written: `q=%` is a percent sign, `q=SEC_1` does not find SEC-1.

    fold=False (only for text that `caseless` accepts): the column as stored, the same answer without
    lowering every row (on SQLite `lower()` is a Python function: a barcode over 100,000 products took
    ~1 s with it, ~0.1 s without)."""
    pattern = "%" + escape_like(text.strip().lower()) + "%"
    return (func.lower(column) if fold else column).like(pattern, escape=ESCAPE)


def caseless(text: str) -> bool:
    """Whether `text` has nothing lower() could change or produce: ASCII digits, spaces and punctuation (a
    barcode, a numeric code). No letter of any alphabet lowers to one of those, so `lower(column)` contains it
    exactly when `column` does."""
    return all(ch.isascii() and not ch.isalpha() for ch in text.strip())
