"""CUIT/CUIL validation (AFIP mod-11) and money/quantity helpers with es-AR formatting."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minimarket.ar import money
from minimarket.ar.cuit import VALID_PREFIXES, cuit_check_digit, cuit_problem, format_cuit, normalise_cuit
from minimarket.ar.money import format_ars, to_money, to_qty
from minimarket.catalog import schemas as catalog_schemas

# ---------------------------------------------------------------- CUIT

VALID_CUITS = [
    "30-54668997-9",  # YPF S.A.
    "30-70308853-4",  # MercadoLibre S.R.L.
    "33-69345023-9",  # AFIP
    "20-12345678-6",
    "27-12345678-0",
    "30-71234567-1",  # the example in the error message
    "30500010912",  # without dashes
    "20-00000000-1",
]


@pytest.mark.parametrize("cuit", VALID_CUITS)
def test_valid_cuits_are_accepted(cuit: str) -> None:
    assert cuit_problem(cuit) is None


@pytest.mark.parametrize("cuit", ["30 54668997 9", "30.54668997.9", "30546689979", " 30-54668997-9 "])
def test_separators_are_ignored(cuit: str) -> None:
    assert normalise_cuit(cuit) == "30546689979"
    assert cuit_problem(cuit) is None


@pytest.mark.parametrize("cuit", ["30-54668997-8", "30-70308853-5", "20-12345678-7", "33-69345023-0"])
def test_wrong_check_digit_is_refused(cuit: str) -> None:
    assert cuit_problem(cuit) == "dígito verificador del CUIT inválido"


@pytest.mark.parametrize("prefix", ["10", "21", "22", "28", "31", "99", "00"])
def test_unknown_type_prefix_is_refused_naming_it(prefix: str) -> None:
    body = prefix + "54668997"
    digit = cuit_check_digit(body)
    cuit = body + str(digit if digit is not None else 0)
    problem = cuit_problem(cuit)
    assert problem is not None
    assert f"empieza con {prefix}" in problem


@pytest.mark.parametrize("cuit", ["", "3054668997", "305466899799", "30-5466899A-9", "CUIT", "30-54668997-"])
def test_wrong_shape_is_refused(cuit: str) -> None:
    problem = cuit_problem(cuit)
    assert problem is not None
    assert "11 dígitos" in problem


def test_check_digit_eleven_becomes_zero() -> None:
    # 11 - (sum mod 11) == 11 when the weighted sum is a multiple of 11: AFIP writes 0.
    assert cuit_check_digit("2000000006") == 0
    assert cuit_problem("20-00000006-0") is None


def test_bodies_without_a_check_digit_are_never_valid() -> None:
    # 11 - (sum mod 11) == 10 has no digit; AFIP re-prefixes those (e.g. 20 -> 23).
    assert cuit_check_digit("2000000001") is None
    for last in "0123456789":
        assert cuit_problem("2000000001" + last) == "dígito verificador del CUIT inválido"


@pytest.mark.parametrize(
    "cuit",
    ["３０５４６６８９９７９", "20" + "０" * 8 + "１", "20" + "²" * 9],
    ids=["fullwidth", "fullwidth-after-valid-prefix", "superscript-after-valid-prefix"],
)
def test_non_ascii_digits_are_refused_without_crashing(cuit: str) -> None:
    problem = cuit_problem(cuit)
    assert problem is not None


def test_format_cuit_puts_the_dashes_back() -> None:
    assert format_cuit("30546689979") == "30-54668997-9"
    assert format_cuit("30 54668997 9") == "30-54668997-9"


@given(st.sampled_from(sorted(VALID_PREFIXES)), st.integers(min_value=0, max_value=99_999_999))
def test_every_computed_cuit_is_valid_and_any_other_last_digit_is_not(prefix: str, number: int) -> None:
    body = prefix + str(number).zfill(8)
    digit = cuit_check_digit(body)
    if digit is None:
        assert all(cuit_problem(body + d) is not None for d in "0123456789")
        return
    assert cuit_problem(body + str(digit)) is None
    assert cuit_problem(f"{body[:2]}-{body[2:]}-{digit}") is None
    for other in set("0123456789") - {str(digit)}:
        assert cuit_problem(body + other) is not None


# ---------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("1234.56", "$ 1.234,56"),
        ("0", "$ 0,00"),
        ("0.5", "$ 0,50"),
        ("999", "$ 999,00"),
        ("1000", "$ 1.000,00"),
        ("4200", "$ 4.200,00"),
        ("1234567.89", "$ 1.234.567,89"),
        ("100000000", "$ 100.000.000,00"),
    ],
)
def test_format_ars_uses_dot_thousands_and_comma_decimals(value: str, text: str) -> None:
    assert format_ars(Decimal(value)) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [("-1234.56", "-$ 1.234,56"), ("-0.5", "-$ 0,50"), ("-1000000", "-$ 1.000.000,00")],
)
def test_format_ars_negatives(value: str, text: str) -> None:
    assert format_ars(Decimal(value)) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("0.005", "$ 0,01"),
        ("2.675", "$ 2,68"),
        ("2.665", "$ 2,67"),  # half-up, not banker's rounding (which would give 2,66)
        ("1234.564", "$ 1.234,56"),
        ("999.995", "$ 1.000,00"),  # rounding carries into a new thousands group
        ("-0.005", "-$ 0,01"),
        ("-2.665", "-$ 2,67"),
        ("-0.004", "$ 0,00"),  # rounds to zero: no "-$ 0,00"
    ],
)
def test_format_ars_rounds_half_up(value: str, text: str) -> None:
    assert format_ars(Decimal(value)) == text


@given(st.decimals(min_value=Decimal("-1e11"), max_value=Decimal("1e11"), allow_nan=False, allow_infinity=False,
                   places=3))
def test_format_ars_reads_back_as_the_rounded_amount(value: Decimal) -> None:
    text = format_ars(value)
    negative = text.startswith("-")
    body = text.removeprefix("-").removeprefix("$ ")
    assert text.removeprefix("-").startswith("$ ")
    whole, cents = body.split(",")
    assert len(cents) == 2
    groups = whole.split(".")
    assert all(len(g) == 3 for g in groups[1:]) and 1 <= len(groups[0]) <= 3
    parsed = Decimal(whole.replace(".", "") + "." + cents)
    assert (-parsed if negative else parsed) == to_money(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2.675", "2.68"), ("2.665", "2.67"), ("-2.665", "-2.67"), ("10", "10.00"), (3, "3.00"), ("0.004", "0.00"),
     (Decimal("1.5"), "1.50")],
)
def test_to_money_two_places_half_up(value: object, expected: str) -> None:
    result = to_money(value)
    assert isinstance(result, Decimal)
    assert str(result) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1.2345", "1.235"), ("1.0005", "1.001"), ("0.0004", "0.000"), (2, "2.000"), ("-0.0005", "-0.001"),
     (Decimal("0.75"), "0.750")],
)
def test_to_qty_three_places_half_up(value: object, expected: str) -> None:
    result = to_qty(value)
    assert isinstance(result, Decimal)
    assert str(result) == expected


def test_vat_rates_agree_between_money_and_catalog() -> None:
    assert set(money.VAT_RATES) == catalog_schemas.VAT_RATES == {Decimal("0"), Decimal("10.5"), Decimal("21"),
                                                                  Decimal("27")}
