"""Reorder arithmetic (purchasing/reorder.py): next order day, safety stock, pack rounding, suggestions."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal

import pytest

from minimarket.purchasing import reorder as R

MONDAY = date(2026, 11, 30)
FLAT = [1.0] * 7


def test_next_order_day_and_review_period():
    assert R.next_order_day(MONDAY, ["martes", "viernes"]) == date(2026, 12, 1)
    assert R.next_order_day(MONDAY, ["lunes"]) == MONDAY  # orders are taken today
    assert R.next_order_day(MONDAY, None) == MONDAY
    assert R.review_days(MONDAY, ["lunes"]) == 7  # ordering today, the next chance is next Monday
    assert R.review_days(MONDAY, ["martes", "viernes"]) == 1
    assert R.review_days(date(2026, 12, 2), ["martes", "viernes"]) == 2  # Wednesday → Friday
    assert R.review_days(MONDAY, []) == 1


def test_safety_stock_from_the_backtest_error():
    # z(95 %) = 1.6449; σ = 1.25 × 2 u/día; 9 days → × 3
    assert R.safety_stock(2.0, 9) == pytest.approx(1.6448536 * 1.25 * 2 * 3, rel=1e-6)
    assert R.safety_stock(2.0, 9, service_level=0.5) == pytest.approx(0.0, abs=1e-9)
    assert R.safety_stock(None, 9) == 0.0 and R.safety_stock(float("nan"), 9) == 0.0
    with pytest.raises(ValueError, match="service_level"):
        R.safety_stock(1.0, 4, service_level=1.0)


def test_pack_rounding():
    assert R.round_to_pack(Decimal("13"), 12) == 24
    assert R.round_to_pack(Decimal("12"), 12) == 12
    assert R.round_to_pack(Decimal("0.2"), None) == 1
    assert R.round_to_pack(Decimal("-3"), 6) == 0


def test_suggestion_orders_up_to_cover_when_below_the_reorder_point():
    s = R.suggest(stock=Decimal(10), on_order=Decimal(0), rate=4.0, profile=FLAT, mae=None, today=MONDAY,
                  lead_days=2, review=3, cover_days=14, pack_size=12)
    assert s.reorder_point == Decimal("20.0")  # 4 × (2 + 3), no safety stock without an error
    assert s.target == Decimal("64.0")  # 4 × (2 + 14)
    assert s.quantity == 60  # 54 rounded up to 5 packs of 12
    assert s.days_of_cover == 2.5
    assert any("bultos de 12" in r for r in s.reasons)
    assert s.reasons[0] == "vende 4 u/día; stock 10 + pedido 0 = 10 alcanzan para 2,5 días"  # es-AR numbers


def test_open_orders_count_and_max_stock_caps():
    s = R.suggest(stock=Decimal(10), on_order=Decimal(20), rate=4.0, profile=FLAT, mae=None, today=MONDAY,
                  lead_days=2, review=3)
    assert s.quantity == 0  # 30 on hand + on order > reorder point 20
    capped = R.suggest(stock=Decimal(0), on_order=Decimal(0), rate=4.0, profile=FLAT, mae=None, today=MONDAY,
                       lead_days=2, review=3, max_stock=Decimal(30))
    assert capped.target == 30 and capped.quantity == 30


def test_weekday_profile_shapes_the_demand_over_the_lead_time():
    weekend = [0.5, 0.5, 0.5, 0.5, 1.0, 2.0, 2.0]  # mean 1
    assert R.demand_over(2.0, weekend, MONDAY, 7) == pytest.approx(14.0)
    assert R.demand_over(2.0, weekend, date(2026, 12, 5), 2) == pytest.approx(8.0)  # Saturday + Sunday


def test_no_history_falls_back_to_min_max():
    s = R.suggest(stock=Decimal(2), on_order=Decimal(0), rate=0.0, profile=None, mae=None, today=MONDAY,
                  lead_days=2, review=1, min_stock=Decimal(5), max_stock=Decimal(20), pack_size=6)
    assert s.quantity == 18 and s.days_of_cover is None  # 20 − 2 = 18 = 3 packs of 6
    none = R.suggest(stock=Decimal(6), on_order=Decimal(0), rate=None, profile=None, mae=None, today=MONDAY,
                     lead_days=2, review=1, min_stock=Decimal(5), max_stock=Decimal(20))
    assert none.quantity == 0
    assert math.isclose(R.service_z(0.95), 1.6448536, rel_tol=1e-6)
