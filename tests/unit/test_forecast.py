"""Forecast math (purchasing/forecast.py) on synthetic series whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from minimarket.purchasing import forecast as F

DAYS = 140  # 20 weeks, starting on a Monday (weekday0 = 0)


def _matrix(*series):
    """(days, products) from per-product series."""
    return np.stack([np.asarray(s, dtype=np.float32) for s in series], axis=1)


def _all_observed(y):
    return np.ones_like(y, dtype=bool)


def _rate(bt, name):
    return bt.rates[F.METHODS.index(name)]


def test_daily_demand_sums_movements_per_product_and_day():
    y = F.daily_demand([0, 0, 1, 1, 0], [0, 0, 2, 2, 3], [1, 2, 5, 1.5, 4], n_products=2, n_days=4)
    assert y.shape == (4, 2)
    assert y[:, 0].tolist() == [3, 0, 0, 4]
    assert y[:, 1].tolist() == [0, 0, 6.5, 0]


def test_constant_series_every_method_forecasts_the_constant():
    y = _matrix([5.0] * DAYS)
    bt = F.backtest(y, _all_observed(y), 0, origins=[DAYS - 28, DAYS - 14])
    assert np.allclose(bt.rates[:, 0], [5.0] * 3 + [5.0 * (1 - F.CROSTON_ALPHA / 2), 5.0, 5.0, 5.0])
    fit = F.fit(y, _all_observed(y), 0)
    assert fit.rate[0] == pytest.approx(5.0)
    assert np.allclose(fit.profile[:, 0], 1.0)
    assert fit.mae[0] == pytest.approx(0.0) and fit.wape[0] == pytest.approx(0.0)


def test_weekly_pattern_is_chosen_seasonal_and_forecast_exactly():
    week = [1, 2, 3, 4, 5, 6, 7]
    y = _matrix(week * (DAYS // 7))
    fit = F.fit(y, _all_observed(y), 0)
    assert F.METHODS[fit.method[0]] == "seasonal_naive"
    assert fit.mae[0] == pytest.approx(0.0, abs=1e-6)
    nxt = F.forecast_days(fit.rate, fit.profile, weekday_first=0, horizon=14)[:, 0]
    assert np.allclose(nxt, week * 2, atol=1e-5)


def test_weekday_profile_finds_the_weekly_shape_and_shrinks_sparse_sellers():
    week = np.array([1, 1, 1, 1, 2, 4, 4], dtype=np.float32)
    y = _matrix(np.tile(week, DAYS // 7), [0] * (DAYS - 1) + [3])
    prof = F.weekday_profile(y, _all_observed(y), 0)
    assert np.allclose(prof.mean(0), 1.0)
    # raw Saturday 4 / 2 = 2, Monday 1 / 2 = 0.5; 280 units sold: weight 280 / (280 + 28)
    w = 280 / 308
    assert prof[5, 0] == pytest.approx(1 + w) and prof[0, 0] == pytest.approx(1 - w / 2)
    # one sale of 3 on a Sunday: raw Sunday 7, weight 3 / 31, renormalized to mean 1
    w1 = 3 / 31
    sunday = (1 + 6 * w1) / (1 + 6 * w1 + 6 * (1 - w1)) * 7
    assert prof[6, 1] == pytest.approx(sunday, rel=1e-4) and sunday < 1.6


def test_intermittent_series_croston_and_tsb_give_the_average_rate():
    y = _matrix([3.0, 0, 0, 0] * (DAYS // 4))
    bt = F.backtest(y, _all_observed(y), 0, origins=[DAYS - 28])
    assert _rate(bt, "croston")[0] == pytest.approx(0.75 * (1 - F.CROSTON_ALPHA / 2))
    assert _rate(bt, "tsb")[0] == pytest.approx(0.75, abs=0.08)
    assert _rate(bt, "ma28")[0] == pytest.approx(0.75)


def test_censored_stockout_days_are_not_zero_demand():
    sold = np.full(DAYS, 6.0)
    sold[60:75] = 0  # fifteen days without stock
    sold[-10:-3] = 0  # and a week just before the end
    y = _matrix(sold)
    observed = y > 0
    bt = F.backtest(y, observed, 0, origins=[DAYS - 28])
    for name in ("ses_dow_0.15", "tsb", "ma28"):
        assert _rate(bt, name)[0] == pytest.approx(6.0, rel=1e-4), name
    naive = F.backtest(y, _all_observed(y), 0, origins=[DAYS - 28])
    assert _rate(naive, "ma28")[0] < 5.0  # counting stock-outs as zero sales under-forecasts
    assert bt.observed_days[0, 0] == 7 - 0  # the censored days are not scored
    unbiased = [i for i, name in enumerate(F.METHODS) if name != "croston"]  # SBA shrinks by α/2
    assert bt.errors[0, unbiased, 0].max() == pytest.approx(0.0, abs=1e-4)


def test_stockout_mask_from_the_ledger():
    # stock: opens 2, sells 2 (closes 0), next day nothing (opens 0), then 5 arrive and 1 sold.
    net = np.array([[-2.0], [0.0], [4.0], [-1.0]])
    mask = F.stockout_mask(net, closing_stock_last=np.array([3.0]))
    assert mask[:, 0].tolist() == [False, False, False, True]


def test_products_are_independent_of_each_other():
    rng = np.random.default_rng(7)
    y = rng.poisson([0.3, 2.0, 9.0], size=(DAYS, 3)).astype(np.float32)
    obs = rng.random((DAYS, 3)) > 0.05
    together = F.fit(y, obs, 2)
    for p in range(3):
        alone = F.fit(y[:, [p]], obs[:, [p]], 2)
        assert alone.method[0] == together.method[p]
        assert alone.rate[0] == pytest.approx(together.rate[p], rel=1e-5)


def test_wape_and_mase_known_values():
    assert F.wape([1.0, 3.0], [10.0, 10.0]) == pytest.approx(0.2)
    assert np.isnan(F.wape([1.0], [0.0]))
    # product 0: MAE 2 over scale 4 → 0.5; product 1: MAE 1 over scale 1 → 1; product 2 has no scale
    assert F.mase([14.0, 7.0, 5.0], [7, 7, 7], np.array([4.0, 1.0, np.nan])) == pytest.approx(0.75)


def test_evaluate_scores_the_choice_on_weeks_it_did_not_see():
    rng = np.random.default_rng(3)
    week = np.array([0.6, 0.7, 0.8, 1.0, 1.2, 1.6, 1.1])
    base = rng.gamma(2.0, 2.0, 300)
    y = rng.poisson(base[None, :] * np.tile(week, 26)[:, None]).astype(np.float32)
    report = F.evaluate(y, _all_observed(y), 0, groups=["a"] * 150 + ["b"] * 150)
    overall = report["overall"]
    assert overall["choice"]["wape"] < overall["seasonal_naive"]["wape"]
    assert overall["choice"]["mase"] < overall["seasonal_naive"]["mase"]
    assert set(report["by_group"]) == {"a", "b"}
    assert sum(report["chosen_counts"].values()) == 300


def test_evaluate_refuses_a_history_too_short():
    y = _matrix([1.0] * 60)
    with pytest.raises(ValueError):
        F.evaluate(y, _all_observed(y), 0)
