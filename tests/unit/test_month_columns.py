"""Inicio's cost-inflation chart names the month of every column (es-AR), no database."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from minimarket.ar.dates import format_month
from minimarket.ar.money import format_percent
from minimarket.web.charts import columns
from minimarket.web.home import month_names


def test_months_are_written_as_a_store_in_argentina_does() -> None:
    assert [format_month(date(2026, m, 1)) for m in (1, 9, 11, 12)] == ["ene 2026", "sept 2026", "nov 2026",
                                                                         "dic 2026"]


def test_every_column_says_its_month_and_the_year_where_it_starts() -> None:
    months = [date(2025, 11, 1), date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)]
    values = [Decimal("3.1"), None, Decimal("-1.25"), Decimal("12")]
    svg = str(columns("Inflación", month_names(months), values, format_percent,
                      lambda v: format_percent(v).removesuffix(" %")))
    written = [re.sub(r"<[^>]+>", " ", t).split() for t in re.findall(r'<text class="tick"[^>]*>(.*?)</text>', svg)]
    assert written == [["nov", "2025"], ["dic"], ["ene", "2026"], ["feb"]]  # a year where it starts or changes
    # Each column's tooltip names its month in full; December, with nothing to compare, has no column.
    assert re.findall(r"<title>([^<]+)</title></rect>", svg) == ["nov 2025: 3,1 %", "ene 2026: -1,3 %",
                                                                 "feb 2026: 12,0 %"]
    assert re.findall(r'class="col-value"[^>]*>([^<]+)<', svg) == ["3,1", "-1,3", "12,0"]
