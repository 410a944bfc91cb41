"""Pricing rules without a database: shelf price, rounding, markup resolution, margin, replacement cost."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minimarket.pricing import rules

D = Decimal
costs = st.decimals(min_value=D("0.01"), max_value=D("9999999"), places=2)
markups = st.decimals(min_value=D("0"), max_value=D("1000"), places=2)
vats = st.sampled_from([D("0"), D("10.5"), D("21"), D("27")])
amounts = st.decimals(min_value=D("0"), max_value=D("99999999"), places=2)
rounding = st.sampled_from(rules.ROUNDING_RULES)


@given(costs, markups, vats, rounding)
def test_with_a_non_negative_markup_the_price_is_never_below_cost_plus_vat(cost, markup, vat, rule):
    price = rules.shelf_price(cost, markup, vat, rule)
    assert price >= cost * (1 + vat / 100)
    assert price >= rules.raw_price(cost, markup, vat)  # rounding never eats into the markup
    assert not rules.below_target(price, cost, vat, markup)


@given(amounts, rounding)
def test_rounding_is_idempotent(value, rule):
    once = rules.round_price(value, rule)
    assert rules.round_price(once, rule) == once
    assert once >= value and once == once.quantize(D("0.01"))


@given(amounts, rounding)
def test_rounding_lands_on_the_rule_and_within_one_step(value, rule):
    price = rules.round_price(value, rule)
    if value == 0:
        assert price == 0
    elif rule in rules.STEPS:
        step = rules.STEPS[rule]
        assert price % step == 0 and price - value < step
    else:
        assert price % 10 == rules.ENDINGS[rule] and price - value < 10


@pytest.mark.parametrize(("value", "rule", "expected"), [
    ("1234.01", "1", "1235.00"), ("1234.00", "1", "1234.00"), ("1231", "5", "1235.00"), ("1235", "5", "1235.00"),
    ("1231", "10", "1240.00"), ("1201", "50", "1250.00"), ("1201", "100", "1300.00"),
    ("1230.5", "termina_9", "1239.00"), ("1239", "termina_9", "1239.00"), ("1239.01", "termina_9", "1249.00"),
    ("1231", "termina_0", "1240.00"), ("0.30", "termina_9", "9.00"), ("0", "100", "0.00"),
])
def test_rounding_examples(value, rule, expected):
    assert rules.round_price(D(value), rule) == D(expected)


def test_unknown_rounding_rule_is_refused():
    with pytest.raises(ValueError, match="redondeo"):
        rules.round_price(D("10"), "7")


def test_price_formula_example():
    # 1000 net, 35 % markup, 21 % IVA = 1633.50 → rounded up to $10 = 1640
    assert rules.raw_price(D("1000"), D("35"), D("21")) == D("1633.5")
    assert rules.shelf_price(D("1000"), D("35"), D("21"), "10") == D("1640.00")
    assert rules.shelf_price(D("1000"), D("35"), D("21"), "1") == D("1634.00")
    assert rules.shelf_price(D("80.00"), D("0"), D("0"), "100") == D("100.00")


def test_markup_resolution_product_then_category_then_store():
    assert rules.resolve_markup(D("50"), D("30"), D("35")) == D("50")
    assert rules.resolve_markup(None, D("30"), D("35")) == D("30")
    assert rules.resolve_markup(None, None, D("35")) == D("35")
    assert rules.resolve_markup(D("0"), D("30"), D("35")) == D("0")  # zero is a markup, not "unset"


def test_realized_markup_and_below_target():
    assert rules.realized_markup(D("1633.50"), D("1000"), D("21")) == D("35.00")
    assert rules.realized_markup(D("1210"), D("1000"), D("21")) == D("0.00")
    assert rules.realized_markup(D("500"), D("0"), D("21")) is None
    assert rules.below_target(D("1633.49"), D("1000"), D("21"), D("35"))
    assert not rules.below_target(D("1633.50"), D("1000"), D("21"), D("35"))


@given(costs, markups, vats)
def test_realized_markup_of_the_raw_price_is_the_markup(cost, markup, vat):
    price = rules.raw_price(cost, markup, vat)
    assert rules.realized_markup(price, cost, vat) == markup


def test_replacement_cost_examples():
    # One month (30.44 days) at 4 % monthly: 1000 → 1040; two months → 1081.60; none → the cost.
    assert rules.replacement_cost(D("1000"), D("4"), D("30.44")) == D("1040.00")
    assert rules.replacement_cost(D("1000"), D("4"), D("60.88")) == D("1081.60")
    assert rules.replacement_cost(D("1000"), D("4"), 0) == D("1000.00")
    assert rules.replacement_cost(D("1000"), D("0"), 400) == D("1000.00")
    # Half a month at 10 %: 1000 × 1.1^0.5 = 1048.808848… → 1048.81
    assert rules.replacement_cost(D("1000"), D("10"), D("15.22")) == D("1048.81")


@given(costs, st.decimals(min_value=D("0"), max_value=D("100"), places=2),
       st.decimals(min_value=D("0"), max_value=D("3650"), places=2))
def test_replacement_cost_grows_with_time_and_matches_the_formula(cost, rate, days):
    value = rules.replacement_cost(cost, rate, days)
    expected = float(cost) * (1 + float(rate) / 100) ** (float(days) / 30.44)
    assert abs(float(value) - expected) <= max(0.011, expected * 1e-9)
    assert value >= rules.money(cost)
    assert rules.replacement_cost(cost, rate, days + 1) >= value


@given(amounts, st.decimals(min_value=D("-90"), max_value=D("1000"), places=2))
def test_apply_percent_is_half_up_to_cents(value, percent):
    result = rules.apply_percent(value, percent)
    assert result == result.quantize(D("0.01"))
    assert abs(result - value * (1 + percent / 100)) <= D("0.005")


def test_apply_percent_half_up():
    assert rules.apply_percent(D("0.25"), D("10")) == D("0.28")  # 0.275 → 0.28
    assert rules.apply_percent(D("1000"), D("20")) == D("1200.00")
    assert rules.apply_percent(D("1000"), D("-90")) == D("100.00")


def test_daily_loss_is_net_of_vat_and_never_negative():
    assert rules.daily_loss(D("1000"), D("1121"), D("21"), D("3")) == D("300.00")
    assert rules.daily_loss(D("1200"), D("1100"), D("21"), D("3")) == D("0.00")


def test_price_list_costs_are_plain_decimal_text_in_es_ar_or_dot_notation() -> None:
    from minimarket.pricing.pricelist_file import parse_cost

    assert parse_cost("1.234,56") == Decimal("1234.56") and parse_cost("$ 1234.5") == Decimal("1234.50")
    assert parse_cost(900) == Decimal("900.00")
    for written in ("1_200", "١٢٠٠", "１２", "1.2e3", "1E3", "NaN", "+5", "Infinity"):
        with pytest.raises(ValueError, match="0-9"):
            parse_cost(written)
