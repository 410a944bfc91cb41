"""Invoice rules without a database: the printed number, the IVA breakdown arithmetic, AFIP's QR."""

from __future__ import annotations

import base64
import json
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minimarket.ar.afip_qr import QrError, decode_afip_qr
from minimarket.ar.invoices import (
    LineAmount,
    Totals,
    breakdown_from_lines,
    format_invoice_number,
    line_net,
    parse_invoice_number,
    totals_problems,
    vat_amount,
)

D = Decimal

# ---------------------------------------------------------------- number


@pytest.mark.parametrize(("pos", "number", "shown"), [
    (3, 12345, "0003-00012345"),
    (1, 1, "0001-00000001"),
    (9999, 99999999, "9999-99999999"),
    (12345, 7, "12345-00000007"),  # AFIP's five-digit points of sale
])
def test_invoice_number_is_printed_with_leading_zeros(pos, number, shown):
    assert format_invoice_number(pos, number) == shown
    assert parse_invoice_number(shown) == (pos, number)


@pytest.mark.parametrize("raw", ["3-12345", " 0003 - 00012345 ", "00003-12345"])
def test_short_forms_parse(raw):
    assert parse_invoice_number(raw) == (3, 12345)


@pytest.mark.parametrize(("raw", "problem"), [
    ("0003/00012345", "punto de venta-número"),
    ("0000-00012345", "punto de venta va de 1"),
    ("0003-00000000", "número de comprobante va de 1"),
    ("0003-123456789", "punto de venta-número"),
    ("", "punto de venta-número"),
])
def test_bad_numbers_are_refused_in_spanish(raw, problem):
    with pytest.raises(ValueError, match=problem):
        parse_invoice_number(raw)


@given(st.integers(1, 99999), st.integers(1, 99999999))
def test_format_and_parse_round_trip(pos, number):
    assert parse_invoice_number(format_invoice_number(pos, number)) == (pos, number)


# ---------------------------------------------------------------- IVA breakdown

LINES = [LineAmount(D("12"), D("1033.33"), D("21")),           # 12399.96
         LineAmount(D("3"), D("850.10"), D("10.5"), D("10")),    # 2295.27
         LineAmount(D("1.250"), D("4200.00"), D("21"))]          # 5250.00


def test_line_net_rounds_half_up_after_discount():
    assert line_net(D("3"), D("850.10"), D("10")) == D("2295.27")
    assert line_net(D("1"), D("0.125"), D("0")) == D("0.13")
    assert vat_amount(D("17649.96"), D("21")) == D("3706.49")


def good_totals(**overrides) -> Totals:
    fields = dict(invoice_type="A", net={D("21"): D("17649.96"), D("10.5"): D("2295.27")},
                  vat={D("21"): D("3706.49"), D("10.5"): D("241.00")}, perception_iibb=D("352.99"),
                  perception_vat=D("0"), total=D("24245.71"))
    return Totals(**{**fields, **overrides})


def test_a_consistent_invoice_has_no_problems():
    assert totals_problems(good_totals(), LINES) == []


def test_the_breakdown_from_lines_is_the_same_as_the_header():
    nets, vats = breakdown_from_lines("A", LINES)
    assert nets == good_totals().net and vats == good_totals().vat


def test_a_total_one_cent_off_names_the_difference():
    problems = totals_problems(good_totals(total=D("24245.72")), LINES)
    assert problems == ["total: el total dice 24245.72 pero neto + IVA + percepciones suman 24245.71 "
                        "(diferencia 0.01)"]


def test_per_line_rounding_is_tolerated_up_to_one_cent_per_line():
    # Two lines at 21 %: the supplier's system may be up to 2 cents away from our sum.
    within = good_totals(net={D("21"): D("17649.98"), D("10.5"): D("2295.27")}, total=D("24245.73"))
    assert totals_problems(within, LINES) == []
    beyond = good_totals(net={D("21"): D("17649.99"), D("10.5"): D("2295.27")}, total=D("24245.74"))
    [problem] = totals_problems(beyond, LINES)
    assert problem.startswith("net.21: el encabezado dice 17649.99 pero las líneas suman 17649.96 (diferencia 0.03")


def test_vat_that_is_not_net_times_rate_is_refused():
    wrong = good_totals(vat={D("21"): D("3700.00"), D("10.5"): D("241.00")}, total=D("24239.22"))
    [problem] = totals_problems(wrong, LINES)
    assert problem.startswith("vat.21: el encabezado dice 3700.00 pero el neto × 21 % da 3706.49 (diferencia -6.49")


def test_type_b_and_c_do_not_discriminate_vat():
    lines = [LineAmount(D("2"), D("1210.00"), D("21"))]
    ok = Totals(invoice_type="C", net={D("0"): D("2420.00")}, vat={}, perception_iibb=D("0"), perception_vat=D("0"),
                total=D("2420.00"))
    assert totals_problems(ok, lines) == []
    with_vat = Totals(invoice_type="B", net={D("0"): D("2000.00")}, vat={D("21"): D("420.00")},
                      perception_iibb=D("0"), perception_vat=D("0"), total=D("2420.00"))
    assert any(p.startswith("vat: una factura B no discrimina IVA") for p in totals_problems(with_vat, lines))


def test_a_header_without_lines_checks_vat_and_total_only():
    assert totals_problems(good_totals(), []) == []


@given(st.lists(st.tuples(st.integers(1, 500), st.integers(1, 10_000_000), st.sampled_from(["0", "10.5", "21", "27"]),
                          st.integers(0, 50)), min_size=1, max_size=20),
       st.integers(0, 1_000_000))
def test_a_header_built_from_its_lines_always_adds_up(rows, perception_cents):
    lines = [LineAmount(D(q), D(c) / 100, D(r), D(d)) for q, c, r, d in rows]
    nets, vats = breakdown_from_lines("A", lines)
    perception = D(perception_cents) / 100
    total = sum(nets.values(), D("0")) + sum(vats.values(), D("0")) + perception
    totals = Totals(invoice_type="A", net=nets, vat=vats, perception_iibb=perception, perception_vat=D("0"),
                    total=total)
    assert totals_problems(totals, lines) == []
    off = Totals(invoice_type="A", net=nets, vat=vats, perception_iibb=perception, perception_vat=D("0"),
                 total=total + D("0.01"))
    assert totals_problems(off, lines)[-1].startswith("total:")


# ---------------------------------------------------------------- AFIP QR

QR_DATA = {"ver": 1, "fecha": "2026-11-20", "cuit": 30546689979, "ptoVta": 3, "tipoCmp": 1, "nroCmp": 12345,
           "importe": 24245.71, "moneda": "PES", "ctz": 1, "tipoDocRec": 80, "nroDocRec": 20123456786,
           "tipoCodAut": "E", "codAut": 76123456789012}


def qr_url(data: dict, *, urlsafe: bool = False) -> str:
    raw = json.dumps(data).encode()
    encoded = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode()
    return f"https://www.afip.gob.ar/fe/qr/?p={encoded}"


def test_qr_decodes_the_header():
    qr = decode_afip_qr(qr_url(QR_DATA))
    assert (qr.type, qr.point_of_sale, qr.number, qr.issuer_cuit) == ("A", 3, 12345, "30546689979")
    assert qr.issued_on == date(2026, 11, 20)
    assert qr.total == D("24245.71") and qr.currency == "PES" and qr.authorization == "76123456789012"


def test_qr_with_url_safe_base64_or_unpadded_decodes():
    assert decode_afip_qr(qr_url(QR_DATA, urlsafe=True)).number == 12345
    assert decode_afip_qr(qr_url(QR_DATA).rstrip("=")).number == 12345


def test_a_plus_sign_read_as_a_space_still_decodes():
    data = {**QR_DATA, "moneda": "PES>>>?"}  # bytes that encode to '+' and '/'
    url = qr_url(data)
    assert "+" in url or "/" in url.split("p=")[1]
    assert decode_afip_qr(url.replace("+", " ")).currency == "PES>>>?"


@pytest.mark.parametrize(("url", "problem"), [
    ("https://example.com/fe/qr/?p=e30=", "no es un QR de factura de AFIP"),
    ("https://www.afip.gob.ar/fe/qr/?p=%%%", "no es JSON en base64"),
    (qr_url({**QR_DATA, "tipoCmp": 3}), "tipoCmp: el comprobante 3 no es una factura"),
    (qr_url({**QR_DATA, "cuit": 30546689978}), "cuit: dígito verificador"),
    (qr_url({**QR_DATA, "nroCmp": 0}), "número de comprobante"),
    (qr_url({**QR_DATA, "codAut": 123}), "codAut: el CAE del QR debe tener 14 dígitos"),
    (qr_url({**QR_DATA, "fecha": "20/11/2026"}), "fecha:"),
    (qr_url({**QR_DATA, "importe": "mucho"}), "importe:"),
    (qr_url([1, 2]), "no contiene un objeto JSON"),
    ("", "vacío"),
])
def test_bad_qr_payloads_are_refused_naming_the_field(url, problem):
    with pytest.raises(QrError, match=problem):
        decode_afip_qr(url)
