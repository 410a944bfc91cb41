"""Forecast benchmark: 100,000 products × 365 days, per-product method selection, beside statsforecast.

    .venv/bin/python bench/forecast.py [--products 100000] [--days 365] [--runs 3]
                                       [--library-products N] [--write docs/PERFORMANCE.md]

The matrix is synthetic and shaped like a minimercado: a third regular sellers with a weekday
pattern and a payday bump (days 1–5 of the month), the rest intermittent (a few units a week),
and stock-outs (censored days: the product had no stock, sales read 0). The last 7 days are
held out: both sides see days 0..357 and forecast 358..364, scored on the observed held-out
days (WAPE and MASE, scale = same weekday last week in sample).

Timed: `purchasing.forecast.fit` (rolling-origin backtest of every method over 4 weekly
origins, choice per product, final forecast) on the whole matrix. The library is
statsforecast (bench-only: `pip install statsforecast`, not a dependency of the project) on the
same series with the censored days as the zeros a sales table shows (it has no censoring
notion), models SeasonalNaive(7), SimpleExponentialSmoothingOptimized, CrostonOptimized, TSB
and WindowAverage(28), n_jobs=2.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from minimarket.purchasing import forecast as F

HOLDOUT = 7


def synthetic(n_products: int, n_days: int, seed: int = 11):
    """(days, products) demand, observed mask and weekday of day 0 (a Monday)."""
    rng = np.random.default_rng(seed)
    week = np.array([0.8, 0.85, 0.9, 1.0, 1.15, 1.4, 0.9], dtype=np.float32)
    day = np.arange(n_days)
    payday = np.where((day % 30) < 5, 1.25, 1.0).astype(np.float32)
    regular = rng.random(n_products) < 0.33
    level = np.where(regular, rng.gamma(2.0, 3.0, n_products), rng.gamma(1.0, 0.4, n_products)).astype(np.float32)
    strength = np.where(regular, 1.0, 0.3).astype(np.float32)
    shape = 1 + strength[None, :] * ((week[day % 7] * payday[day])[:, None] - 1)
    demand = rng.poisson(level[None, :] * shape).astype(np.float32)
    observed = np.ones_like(demand, dtype=bool)
    out = rng.random(n_products) < 0.1  # one product in ten runs out for a stretch
    starts = rng.integers(30, n_days - 20, n_products)
    lengths = rng.integers(2, 10, n_products)
    for_rows = day[:, None]
    observed &= ~(out[None, :] & (for_rows >= starts[None, :]) & (for_rows < (starts + lengths)[None, :]))
    demand[~observed] = 0  # a stock-out reads as no sales
    return demand, observed, 0


def score(forecast, actual, observed, scale):
    err = (np.abs(actual - forecast) * observed).sum(0)
    return F.wape(err, (actual * observed).sum(0)), F.mase(err, observed.sum(0), scale)


def run_ours(train, obs_train, weekday0, runs):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fit = F.fit(train, obs_train, weekday0)
        times.append(time.perf_counter() - t0)
    fc = F.forecast_days(fit.rate, fit.profile, (weekday0 + train.shape[0]) % 7, HOLDOUT)
    return fit, fc, times


def run_library(train, n, weekday0):
    """statsforecast on the first ``n`` products; returns {model: forecast (7, n)}, seconds, or an error."""
    try:
        import pandas as pd
        from statsforecast import StatsForecast
        from statsforecast.models import (TSB, CrostonOptimized, SeasonalNaive,
                                          SimpleExponentialSmoothingOptimized, WindowAverage)
    except Exception as exc:  # noqa: BLE001 - reported as-is in the table
        return None, None, f"{type(exc).__name__}: {exc}"
    days = train.shape[0]
    ds = pd.date_range("2025-01-06", periods=days, freq="D")  # a Monday, as weekday0 = 0
    frame = pd.DataFrame({"unique_id": np.repeat(np.arange(n), days), "ds": np.tile(ds, n),
                          "y": train[:, :n].T.reshape(-1).astype(np.float64)})
    models = [SeasonalNaive(season_length=7), SimpleExponentialSmoothingOptimized(), CrostonOptimized(),
              TSB(alpha_d=0.1, alpha_p=0.05), WindowAverage(window_size=28)]
    try:
        t0 = time.perf_counter()
        out = StatsForecast(models=models, freq="D", n_jobs=2).forecast(df=frame, h=HOLDOUT)
        seconds = time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001
        return None, None, f"{type(exc).__name__}: {exc}"
    out = out.reset_index() if "unique_id" not in out.columns else out
    out = out.sort_values(["unique_id", "ds"])
    cols = [c for c in out.columns if c not in ("unique_id", "ds", "index")]
    return {c: out[c].to_numpy().reshape(n, HOLDOUT).T for c in cols}, seconds, None


def table(args, ours, lib, lib_n, lib_seconds, lib_error, truth):
    fit, fc, times = ours
    actual, observed, scale = truth
    n = actual.shape[1]
    lines = [
        f"{n:,} products × {args.days} days (synthetic minimercado, {HOLDOUT}-day holdout), "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end, Python {platform.python_version()}, "
        f"numpy {np.__version__}.",
        "",
        "| forecaster | products | seconds | WAPE | MASE |",
        "|---|---:|---:|---:|---:|",
    ]
    w, m = score(fc, actual, observed, scale)
    lines.append(f"| Mini Market `fit` (backtest of {len(F.METHODS)} methods, choice per product; "
                 f"median of {len(times)}) | {n:,} | {statistics.median(times):.2f} | {w:.3f} | {m:.3f} |")
    sub = slice(0, lib_n)
    w, m = score(fc[:, sub], actual[:, sub], observed[:, sub], scale[sub])
    if lib_n != n:
        lines.append(f"| Mini Market, same products as the library | {lib_n:,} | — | {w:.3f} | {m:.3f} |")
    if lib_error:
        lines.append(f"| statsforecast: did not run — `{lib_error[:200]}` | — | — | — | — |")
    else:
        for name, pred in lib.items():
            w, m = score(pred, actual[:, sub], observed[:, sub], scale[sub])
            lines.append(f"| statsforecast {name} | {lib_n:,} | {lib_seconds:.2f} (all five) | {w:.3f} | {m:.3f} |")
    counts = np.bincount(fit.method, minlength=len(F.METHODS))
    lines += ["", "Chosen per product: " + ", ".join(f"{k} {c:,}" for k, c in zip(F.METHODS, counts)) + "."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--library-products", type=int, help="statsforecast on the first N products (default all)")
    parser.add_argument("--write", type=Path, help="replace the bench-forecast section of this Markdown file")
    args = parser.parse_args()
    demand, observed, weekday0 = synthetic(args.products, args.days)
    cut = args.days - HOLDOUT
    train, obs_train = demand[:cut], observed[:cut]
    truth = (demand[cut:], observed[cut:], F.seasonal_scale(train, obs_train, cut))
    ours = run_ours(train, obs_train, weekday0, args.runs)
    print(f"ours: {[round(t, 2) for t in ours[2]]} s", flush=True)
    lib_n = min(args.library_products or args.products, args.products)
    lib, lib_seconds, lib_error = run_library(train, lib_n, weekday0)
    print(f"statsforecast: {lib_seconds} s {lib_error or ''}", flush=True)
    block = table(args, ours, lib, lib_n, lib_seconds, lib_error, truth)
    print(block)
    if args.write:
        doc = args.write.read_text()
        if "<!-- bench-forecast:start -->" not in doc:
            sys.exit(f"{args.write}: no <!-- bench-forecast:start --> section to replace")
        new = f"<!-- bench-forecast:start -->\n{block}\n<!-- bench-forecast:end -->"
        args.write.write_text(re.sub(r"<!-- bench-forecast:start -->.*?<!-- bench-forecast:end -->",
                                     lambda _: new, doc, flags=re.S))


if __name__ == "__main__":
    main()
