"""GTIN barcodes (EAN-13, EAN-8, UPC-A): check digits, shapes and the Spanish reasons given."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minimarket.ar.barcode import barcode_problem, gtin_check_digit, is_valid_barcode, make_ean13

# EAN-13 codes with the GS1 Argentina prefix 779, as printed on products sold in the country.
ARGENTINE_EAN13 = [
    "7790387000016",
    "7790895000997",  # 779 0895: Coca-Cola de Argentina company prefix
    "7790580100018",
    "7790070318343",
]
OTHER_VALID = [
    "7622300489434",  # EAN-13 with a foreign prefix (imported goods)
    "96385074",  # EAN-8
    "036000291452",  # UPC-A
    "012345678905",  # UPC-A
]


@pytest.mark.parametrize("code", ARGENTINE_EAN13 + OTHER_VALID)
def test_valid_gtins_are_accepted(code: str) -> None:
    assert barcode_problem(code) is None
    assert is_valid_barcode(code)


@pytest.mark.parametrize(
    ("body", "digit"),
    [("779038700001", 6), ("779089500099", 7), ("9638507", 4), ("03600029145", 2), ("01234567890", 5)],
)
def test_check_digit_of_known_bodies(body: str, digit: int) -> None:
    assert gtin_check_digit(body) == digit


@pytest.mark.parametrize(
    ("code", "ends_in", "should_be"),
    [("7790387000017", "7", "6"), ("7790895000990", "0", "7"), ("96385075", "5", "4"), ("036000291453", "3", "2")],
)
def test_wrong_check_digit_is_refused_naming_both_digits(code: str, ends_in: str, should_be: str) -> None:
    problem = barcode_problem(code)
    assert problem is not None
    assert "dígito verificador" in problem
    assert f"termina en {ends_in}" in problem
    assert f"debería ser {should_be}" in problem
    assert not is_valid_barcode(code)


@pytest.mark.parametrize("code", ["77903870000A6", "7790387-00016", "ABCDEFGH", "7790387 00016", " 7790387000016", ""])
def test_non_digits_are_refused(code: str) -> None:
    problem = barcode_problem(code)
    assert problem == "el código de barras sólo puede tener dígitos"


@pytest.mark.parametrize(
    "code",
    [
        "７７９０３８７００００１６",  # full-width digits: str.isdigit() is True but no scanner sends these
        "²²²²²²²²",  # superscript digits: isdigit() is True but int() refuses them
        "٧٧٩٠٣٨٧٠٠٠٠١٦",  # Arabic-Indic digits
    ],
    ids=["fullwidth", "superscript", "arabic-indic"],
)
def test_non_ascii_digits_are_refused_without_crashing(code: str) -> None:
    # A barcode is stored and looked up as ASCII; anything else must get a reason, not pass or crash.
    problem = barcode_problem(code)
    assert problem is not None
    assert not is_valid_barcode(code)


@pytest.mark.parametrize("code", ["7790387", "779038700", "77903870000", "77903870000160", "1", "7" * 20])
def test_wrong_lengths_are_refused(code: str) -> None:
    problem = barcode_problem(code)
    assert problem is not None
    assert "8 (EAN-8)" in problem and "12 (UPC-A)" in problem and "13 (EAN-13)" in problem


def test_make_ean13_completes_a_body() -> None:
    assert make_ean13("779038700001") == "7790387000016"
    assert make_ean13("779089500099") == "7790895000997"


@pytest.mark.parametrize(
    "body",
    ["77903870000", "7790387000016", "77903870000A", "", "７７９０３８７００００１"],
    ids=["11-digits", "13-digits", "letter", "empty", "fullwidth"],
)
def test_make_ean13_refuses_bad_bodies(body: str) -> None:
    with pytest.raises(ValueError):
        make_ean13(body)


@given(st.text(alphabet="0123456789", min_size=12, max_size=12))
def test_make_ean13_always_yields_a_valid_13_digit_code(body: str) -> None:
    code = make_ean13(body)
    assert len(code) == 13 and code.startswith(body)
    assert barcode_problem(code) is None


@given(
    st.text(alphabet="0123456789", min_size=12, max_size=12),
    st.integers(min_value=0, max_value=12),
    st.integers(min_value=1, max_value=9),
)
def test_any_single_digit_typo_is_detected(body: str, position: int, shift: int) -> None:
    code = make_ean13(body)
    typo = code[:position] + str((int(code[position]) + shift) % 10) + code[position + 1:]
    assert typo != code
    assert barcode_problem(typo) is not None


@given(st.sampled_from([7, 11]).flatmap(lambda n: st.text(alphabet="0123456789", min_size=n, max_size=n)))
def test_gtin_bodies_of_ean8_and_upca_complete_to_valid_codes(body: str) -> None:
    code = body + str(gtin_check_digit(body))
    assert is_valid_barcode(code)
