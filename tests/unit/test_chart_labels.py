"""What the dashboard writes beside its numbers: the days under a line chart and who did a change (no database)."""

from __future__ import annotations

import re
from decimal import Decimal

from minimarket.web.charts import lines
from minimarket.web.templating import format_actor


def day_labels(svg: str) -> list[tuple[str, str]]:
    return re.findall(r'<text class="tick" x="[^"]+" y="[^"]+" text-anchor="(\w+)">([^<]+)</text>', svg)[2:]


def test_a_two_point_history_names_each_day_once() -> None:
    svg = str(lines("Historia", ["antes", "17/11"], [("Precio", "c-out", [Decimal(1900), Decimal(2000)])]))
    assert day_labels(svg) == [("start", "antes"), ("end", "17/11")]  # no second "17/11" drawn over the last one


def test_a_month_names_its_first_middle_and_last_day() -> None:
    days = [f"{d:02d}/11" for d in range(1, 31)]
    svg = str(lines("Flujo", days, [("Ventas", "c-out", [Decimal(d) for d in range(30)])]))
    assert day_labels(svg) == [("start", "01/11"), ("middle", "16/11"), ("end", "30/11")]
    one = str(lines("Uno", ["01/11"], [("Ventas", "c-out", [Decimal(3)])]))
    assert day_labels(one) == [("start", "01/11")]


def test_who_is_written_as_a_person_reads_it() -> None:
    assert format_actor("usuario:maria") == "maria"
    assert format_actor("apikey:caja-1") == "clave caja-1"
    assert format_actor("demo") == "demo"  # the demo generator and the system keep their own names
    assert format_actor("sistema:importador") == "sistema:importador"
    assert format_actor(None) == "—" and format_actor("") == "—"
