"""Supplier invoice rules as pure functions: AFIP types, the printed number, the IVA breakdown check."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from minimarket.ar.money import CENT, to_money

# Invoice letters a store receives and AFIP's comprobante codes for them (Factura A/B/C/M).
INVOICE_TYPES = {"A": 1, "B": 6, "C": 11, "M": 51}
# Letters whose IVA is shown apart from the net amount (the buyer computes its IVA credit from them).
VAT_DISCRIMINATED = frozenset({"A", "M"})
RATES = (Decimal("0"), Decimal("10.5"), Decimal("21"), Decimal("27"))
# A supplier's system may round each line's amounts before adding them up: every line may
# move a per-rate sum by up to one cent. The invoice total itself must add up exactly.
LINE_TOLERANCE = CENT
MAX_POINT_OF_SALE = 99999
MAX_NUMBER = 99999999
_NUMBER = re.compile(r"^\s*(\d{1,5})\s*-\s*(\d{1,8})\s*$")


def format_invoice_number(point_of_sale: int, number: int) -> str:
    """`0003-00012345` as printed; points of sale above 9999 use AFIP's five digits."""
    problem = invoice_number_problem(point_of_sale, number)
    if problem:
        raise ValueError(problem)
    return f"{point_of_sale:0{4 if point_of_sale <= 9999 else 5}d}-{number:08d}"


def invoice_number_problem(point_of_sale: int, number: int) -> str | None:
    if not 1 <= point_of_sale <= MAX_POINT_OF_SALE:
        return f"point_of_sale: el punto de venta va de 1 a {MAX_POINT_OF_SALE} (se recibió {point_of_sale})"
    if not 1 <= number <= MAX_NUMBER:
        return f"number: el número de comprobante va de 1 a {MAX_NUMBER} (se recibió {number})"
    return None


def parse_invoice_number(raw: str) -> tuple[int, int]:
    """`0003-00012345` (or `3-12345`) → (3, 12345); ValueError in Spanish otherwise."""
    match = _NUMBER.match(raw or "")
    if not match:
        raise ValueError(f"el número '{raw}' no tiene la forma punto de venta-número (ej. 0003-00012345)")
    pos, number = int(match.group(1)), int(match.group(2))
    problem = invoice_number_problem(pos, number)
    if problem:
        raise ValueError(problem)
    return pos, number


def line_net(quantity: Decimal, unit_cost: Decimal, discount_pct: Decimal = Decimal("0")) -> Decimal:
    """A line's net amount: quantity × unit cost less its discount, half-up to the cent."""
    return to_money(quantity * unit_cost * (1 - discount_pct / 100))


def vat_amount(net: Decimal, rate: Decimal) -> Decimal:
    return to_money(net * rate / 100)


@dataclass(frozen=True)
class LineAmount:
    quantity: Decimal
    unit_cost: Decimal
    vat_rate: Decimal
    discount_pct: Decimal = Decimal("0")


@dataclass(frozen=True)
class Totals:
    """An invoice header's amounts: net and IVA per rate, perceptions and the total."""

    invoice_type: str
    net: Mapping[Decimal, Decimal]
    vat: Mapping[Decimal, Decimal]
    perception_iibb: Decimal
    perception_vat: Decimal
    total: Decimal

    def expected_total(self) -> Decimal:
        return sum(self.net.values(), Decimal("0")) + sum(self.vat.values(), Decimal("0")) + \
            self.perception_iibb + self.perception_vat


def rate_label(rate: Decimal) -> str:
    return format(rate.normalize(), "f")


def net_by_rate(lines: Iterable[LineAmount]) -> tuple[dict[Decimal, Decimal], dict[Decimal, int]]:
    """Sum of the lines' net amounts per IVA rate, and how many lines each rate has."""
    sums: dict[Decimal, Decimal] = {}
    counts: dict[Decimal, int] = {}
    for line in lines:
        rate = Decimal(line.vat_rate)
        sums[rate] = sums.get(rate, Decimal("0.00")) + line_net(line.quantity, line.unit_cost, line.discount_pct)
        counts[rate] = counts.get(rate, 0) + 1
    return sums, counts


def breakdown_from_lines(invoice_type: str, lines: list[LineAmount]) -> tuple[dict[Decimal, Decimal],
                                                                                dict[Decimal, Decimal]]:
    """Net and IVA per rate computed from the lines (for an import whose file has no header amounts)."""
    nets, _ = net_by_rate(lines)
    if invoice_type not in VAT_DISCRIMINATED:
        return {Decimal("0"): sum(nets.values(), Decimal("0.00"))} if nets else {}, {}
    vats = {rate: vat_amount(net, rate) for rate, net in nets.items() if rate != 0}
    return nets, vats


def totals_problems(totals: Totals, lines: list[LineAmount]) -> list[str]:
    """Why the header does not add up, each naming the field and the difference; empty when it does.

    For A and M the IVA of each rate must be its net × rate (one cent per line of that rate of
    tolerance), and with lines, each rate's net must be the sum of its lines (same tolerance).
    B and C do not discriminate IVA: all goes to `net["0"]`-style buckets and `vat` must be empty.
    The total must equal nets + IVA + perceptions to the cent.
    """
    problems: list[str] = []
    nets, counts = net_by_rate(lines)
    discriminated = totals.invoice_type in VAT_DISCRIMINATED
    if not discriminated:
        if any(v != 0 for v in totals.vat.values()):
            problems.append(f"vat: una factura {totals.invoice_type} no discrimina IVA; dejá vat vacío")
        if lines:  # the lines' amounts already include IVA: compare the sum of everything
            problems += _compare("net", sum(totals.net.values(), Decimal("0")),
                                 sum(nets.values(), Decimal("0")), len(lines), "las líneas suman")
    else:
        for rate in sorted(set(totals.net) | set(nets)):
            if lines:
                problems += _compare(f"net.{rate_label(rate)}", totals.net.get(rate, Decimal("0")),
                                     nets.get(rate, Decimal("0")), counts.get(rate, 0), "las líneas suman")
        for rate in sorted(set(totals.vat) | set(totals.net)):
            if rate == 0:
                if totals.vat.get(rate, 0):
                    problems.append("vat.0: lo no gravado o exento no lleva IVA")
                continue
            expected = vat_amount(totals.net.get(rate, Decimal("0")), rate)
            problems += _compare(f"vat.{rate_label(rate)}", totals.vat.get(rate, Decimal("0")), expected,
                                 max(1, counts.get(rate, 0)), f"el neto × {rate_label(rate)} % da")
    expected_total = totals.expected_total()
    if totals.total != expected_total:
        problems.append(f"total: el total dice {totals.total} pero neto + IVA + percepciones suman {expected_total} "
                        f"(diferencia {to_money(totals.total - expected_total)})")
    return problems


def _compare(field: str, stated: Decimal, computed: Decimal, lines: int, how: str) -> list[str]:
    difference = to_money(stated - computed)
    if abs(difference) <= LINE_TOLERANCE * lines:
        return []
    return [f"{field}: el encabezado dice {to_money(stated)} pero {how} {to_money(computed)} "
            f"(diferencia {difference}; tolerancia {to_money(LINE_TOLERANCE * lines)} por redondeo de "
            f"{lines} línea(s))"]
