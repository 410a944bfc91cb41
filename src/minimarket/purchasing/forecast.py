"""Demand forecasting math over a product × day matrix (numpy only, no database).

Every function works on ALL products at once: the recursive methods loop over days
(hundreds) with one vector operation per step over products (up to 100,000s), never a
Python loop per product.

Conventions
- ``demand`` is a float array (days, products) of units sold (``venta`` + ``salida``):
  day-major, so each day's row is contiguous for the day-by-day recursions.
- ``observed`` is a bool array of the same shape: False on censored days (the product was
  out of stock), which are neither zero demand nor an error target.
- ``weekday0`` is the weekday (Monday = 0) of column 0.
- Every method's forecast is ``rate × profile[weekday]``: a daily rate and a weekday profile
  whose mean is 1 (flat methods have a profile of ones).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SES_ALPHAS = (0.05, 0.15, 0.3)
CROSTON_ALPHA = 0.1
TSB_ALPHA, TSB_BETA = 0.1, 0.05
MA_WINDOW = 28
PROFILE_PSEUDO_UNITS = 28.0

METHODS = tuple(f"ses_dow_{a:g}" for a in SES_ALPHAS) + ("croston", "tsb", "seasonal_naive", "ma28")
BASELINES = ("seasonal_naive", "ma28")


def daily_demand(product_idx, day_idx, quantity, n_products: int, n_days: int) -> np.ndarray:
    """Sum movement quantities into a (days, products) float32 matrix (vectorized)."""
    flat = np.asarray(day_idx, dtype=np.int64) * n_products + np.asarray(product_idx, dtype=np.int64)
    sums = np.bincount(flat, weights=np.asarray(quantity, dtype=np.float64), minlength=n_products * n_days)
    return sums.reshape(n_days, n_products).astype(np.float32)


def stockout_mask(net_change: np.ndarray, closing_stock_last: np.ndarray) -> np.ndarray:
    """Observed-day mask from the stock ledger: a day is censored when the product opened
    the day with no stock or closed it with none (demand was cut short).

    ``net_change`` (days, products) is every movement's signed quantity per day (all types);
    ``closing_stock_last`` (products,) the stock at the end of the last day.
    """
    net_change = np.asarray(net_change, dtype=np.float64)
    later = np.cumsum(net_change[::-1], axis=0)[::-1]  # sum of days >= d
    closing = np.asarray(closing_stock_last, dtype=np.float64)[None, :] - (later - net_change)
    opening = closing - net_change
    return (opening > 0) & (closing > 0)


def _weekdays(weekday0: int, start: int, stop: int) -> np.ndarray:
    return (weekday0 + np.arange(start, stop)) % 7


def weekday_profile(demand: np.ndarray, observed: np.ndarray, weekday0: int, end: int | None = None) -> np.ndarray:
    """(7, products) profile with mean 1: each weekday's mean over the overall mean, shrunk
    toward flat by units / (units + PROFILE_PSEUDO_UNITS) (two sales are not a pattern)."""
    end = demand.shape[0] if end is None else end
    onehot = (_weekdays(weekday0, 0, end)[None, :] == np.arange(7)[:, None]).astype(np.float32)  # (7, days)
    obs = observed[:end].astype(np.float32)
    sums = onehot @ (demand[:end] * obs)
    counts = onehot @ obs
    units = sums.sum(0)
    mean_all = units / np.maximum(counts.sum(0), 1.0)
    raw = (sums / np.maximum(counts, 1.0)) / np.maximum(mean_all[None, :], 1e-12)
    raw = np.where(counts > 0, raw, 1.0)
    weight = units / (units + PROFILE_PSEUDO_UNITS)  # few units sold: stay close to flat
    prof = 1.0 + weight[None, :] * (raw - 1.0)
    prof = prof / np.maximum(prof.mean(0, keepdims=True), 1e-12)
    prof[:, mean_all <= 0] = 1.0
    return prof.astype(np.float32)


@dataclass
class _State:
    """Recursive states of the smoothing methods, each shape (products,) or (alphas, products)."""

    ses: np.ndarray
    cro_size: np.ndarray
    cro_interval: np.ndarray
    cro_gap: np.ndarray
    tsb_prob: np.ndarray
    tsb_size: np.ndarray

    @classmethod
    def start(cls, demand, observed, end):
        obs = observed[:end].astype(np.float32)
        y = demand[:end] * obs
        n_obs = obs.sum(0)
        nonzero = (y > 0).sum(0).astype(np.float32)
        mean = y.sum(0) / np.maximum(n_obs, 1)
        size = y.sum(0) / np.maximum(nonzero, 1)
        interval = np.where(nonzero > 0, n_obs / np.maximum(nonzero, 1), 1.0)
        prob = nonzero / np.maximum(n_obs, 1)
        f = np.float32
        return cls(np.repeat(mean[None, :], len(SES_ALPHAS), 0).astype(f), size.astype(f),
                   interval.astype(f), interval.astype(f), prob.astype(f), size.astype(f))

    def step(self, y, obs, inv_deseason):
        """Advance one day; censored days (obs False) leave every state unchanged."""
        o = obs.astype(np.float32)
        sold = (y > 0) & obs
        s = sold.astype(np.float32)
        alphas = np.asarray(SES_ALPHAS, dtype=np.float32)[:, None]
        self.ses += alphas * o * (y * inv_deseason - self.ses)
        self.cro_size += CROSTON_ALPHA * s * (y - self.cro_size)
        self.cro_interval += CROSTON_ALPHA * s * (self.cro_gap - self.cro_interval)
        self.cro_gap = s + (1 - s) * (self.cro_gap + o)
        self.tsb_prob += TSB_BETA * o * (s - self.tsb_prob)
        self.tsb_size += TSB_ALPHA * s * (y - self.tsb_size)

    def rates(self):
        """(smoothing methods, products) daily rates (SES on the deseasonalized scale)."""
        croston = (1 - CROSTON_ALPHA / 2) * self.cro_size / np.maximum(self.cro_interval, 1e-6)
        return np.vstack([self.ses, croston[None], (self.tsb_prob * self.tsb_size)[None]])


def _baselines_at(demand, observed, origin, weekday0):
    """Seasonal-naive (rate, (7, products) profile) and the 28-day mean at ``origin``."""
    lo = max(0, origin - MA_WINDOW)
    win_obs = observed[lo:origin]
    ma = (demand[lo:origin] * win_obs).sum(0) / np.maximum(win_obs.sum(0), 1)
    lo7 = max(0, origin - 7)
    last = np.where(observed[lo7:origin], demand[lo7:origin], ma[None, :]).astype(np.float32)
    by_weekday = np.repeat(ma[None, :].astype(np.float32), 7, 0)
    by_weekday[_weekdays(weekday0, lo7, origin)] = last
    sn_rate = by_weekday.mean(0)
    sn_prof = np.where(sn_rate[None, :] > 0, by_weekday / np.maximum(sn_rate[None, :], 1e-12), 1.0)
    return sn_rate, sn_prof, ma


def _all_forecasts(state, demand, observed, origin, weekday0, profile):
    """(methods, products) rates and (methods, 7, products) profiles at ``origin``."""
    smooth = state.rates()
    sn_rate, sn_prof, ma = _baselines_at(demand, observed, origin, weekday0)
    m, n_ses = len(METHODS), len(SES_ALPHAS)
    rates = np.empty((m, demand.shape[1]), dtype=np.float32)
    rates[: smooth.shape[0]] = smooth
    rates[-2], rates[-1] = sn_rate, ma
    profs = np.ones((m, 7, demand.shape[1]), dtype=np.float32)
    profs[:n_ses] = profile
    profs[-2] = sn_prof
    return rates, profs


@dataclass
class Backtest:
    """Per-origin backtest errors and the forecasts at the end of the history.

    errors: (origins, methods, products) sum of |actual − forecast| over observed days;
    actual: (origins, products) observed units; observed_days: (origins, products);
    scale: (products,) in-sample mean |y_t − y_{t−7}| (the MASE denominator, NaN if none);
    rates: (methods, products), profiles: (methods, 7, products) at the end of the history.
    """

    errors: np.ndarray
    actual: np.ndarray
    observed_days: np.ndarray
    scale: np.ndarray
    rates: np.ndarray
    profiles: np.ndarray


def seasonal_scale(demand: np.ndarray, observed: np.ndarray, end: int, window: int = 182) -> np.ndarray:
    """Mean absolute same-weekday-last-week difference over observed pairs in the
    ``window`` days before ``end`` (the MASE denominator; NaN where undefined)."""
    lo = max(0, end - window)
    if end - lo <= 7:
        return np.full(demand.shape[1], np.nan)
    both = (observed[lo + 7 : end] & observed[lo : end - 7]).astype(np.float32)
    total = (np.abs(demand[lo + 7 : end] - demand[lo : end - 7]) * both).sum(0, dtype=np.float64)
    n = both.sum(0)
    return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def backtest(demand, observed, weekday0: int, origins, horizon: int = 7) -> Backtest:
    """One pass over the days of a (days, products) matrix: every method's state is
    snapshotted at each origin, its forecast for the next ``horizon`` days scored on the
    observed days, and the state at the end of the history turned into each forecast."""
    demand = np.ascontiguousarray(demand, dtype=np.float32)
    observed = np.ascontiguousarray(observed, dtype=bool)
    n_days, n_prod = demand.shape
    origins = sorted(int(o) for o in origins)
    if origins and (origins[0] < 14 or origins[-1] >= n_days):
        raise ValueError("origins must leave at least 14 days of history and lie inside it")
    first = origins[0] if origins else n_days
    profile = weekday_profile(demand, observed, weekday0, end=first)
    inv_deseason = 1.0 / np.maximum(profile, 0.05)  # (7, products)
    state = _State.start(demand, observed, end=min(MA_WINDOW, first))
    k = len(origins)
    errors = np.zeros((k, len(METHODS), n_prod), dtype=np.float64)
    actual = np.zeros((k, n_prod), dtype=np.float64)
    days = np.zeros((k, n_prod), dtype=np.int32)
    at = {o: i for i, o in enumerate(origins)}
    for t in range(n_days):
        if t in at:
            rates, profs = _all_forecasts(state, demand, observed, t, weekday0, profile)
            i = at[t]
            for tt in range(t, min(t + horizon, n_days)):
                obs = observed[tt]
                errors[i] += np.abs(demand[tt] - rates * profs[:, (weekday0 + tt) % 7]) * obs
                actual[i] += demand[tt] * obs
                days[i] += obs
        state.step(demand[t], observed[t], inv_deseason[(weekday0 + t) % 7])
    rates, profs = _all_forecasts(state, demand, observed, n_days, weekday0, profile)
    return Backtest(errors, actual, days, seasonal_scale(demand, observed, first), rates, profs)


def choose(errors: np.ndarray, observed_days: np.ndarray) -> np.ndarray:
    """Per-product index into METHODS with the least backtest error (summed over origins);
    products never observed in the backtest get the 28-day moving average."""
    total = errors.sum(0)
    choice = np.argmin(total, axis=0)
    return np.where(observed_days.sum(0) > 0, choice, METHODS.index("ma28"))


def chosen_errors(errors: np.ndarray, choice: np.ndarray) -> np.ndarray:
    """(origins, products) errors of each product's chosen method."""
    return np.take_along_axis(errors, choice[None, None, :], axis=1)[:, 0, :]


def wape(abs_error_sum, actual_sum) -> float:
    """Weighted absolute percentage error: Σ|e| / Σ actual (NaN without demand)."""
    total = float(np.sum(actual_sum))
    return float(np.sum(abs_error_sum)) / total if total > 0 else float("nan")


def mase(abs_error_sum, observed_days, scale) -> float:
    """Mean over products (with a defined scale and observed days) of MAE / scale."""
    abs_error_sum = np.asarray(abs_error_sum, dtype=np.float64)
    n = np.asarray(observed_days, dtype=np.float64)
    ok = (n > 0) & np.isfinite(scale) & (scale > 0)
    if not ok.any():
        return float("nan")
    return float(np.mean(abs_error_sum[ok] / n[ok] / scale[ok]))


def forecast_days(rate: np.ndarray, profile: np.ndarray, weekday_first: int, horizon: int) -> np.ndarray:
    """(horizon, products) daily forecasts from rates (products,) and profiles (7, products)."""
    return np.asarray(rate)[None, :] * np.asarray(profile)[_weekdays(weekday_first, 0, horizon)]


@dataclass
class Fit:
    """The chosen forecast per product: method index, daily rate, (7, products) profile and
    the chosen method's backtest mean absolute error per day (NaN if never observed)."""

    method: np.ndarray
    rate: np.ndarray
    profile: np.ndarray
    mae: np.ndarray
    wape: np.ndarray


def fit(demand, observed, weekday0: int, weeks: int = 4, horizon: int = 7) -> Fit:
    """Backtest over the last ``weeks`` weekly origins, choose per product, forecast."""
    n_days, n_prod = np.shape(demand)
    origins = [n_days - 7 * (weeks - i) for i in range(weeks) if n_days - 7 * (weeks - i) >= 14]
    bt = backtest(demand, observed, weekday0, origins, horizon)
    choice = choose(bt.errors, bt.observed_days) if origins else np.full(n_prod, METHODS.index("ma28"))
    err = chosen_errors(bt.errors, choice).sum(0) if origins else np.zeros(n_prod)
    n = bt.observed_days.sum(0)
    act = bt.actual.sum(0)
    idx = np.arange(choice.shape[0])
    return Fit(
        method=choice,
        rate=bt.rates[choice, idx],
        profile=bt.profiles[choice, :, idx].T,
        mae=np.where(n > 0, err / np.maximum(n, 1), np.nan),
        wape=np.where(act > 0, err / np.maximum(act, 1e-12), np.nan),
    )


def evaluate(demand, observed, weekday0: int, groups=None, weeks: int = 4, horizon: int = 7) -> dict:
    """Honest evaluation: the method is chosen per product on ``weeks`` weekly origins and
    scored on the ``weeks`` origins after them (the choice never sees what it is scored on).
    Returns WAPE and MASE of every method and of the choice, overall and per group."""
    n_days = np.shape(demand)[0]
    origins = [n_days - 7 * (2 * weeks - i) for i in range(2 * weeks)]
    if origins[0] < 28:
        raise ValueError(f"hace falta al menos {7 * 2 * weeks + 28} días de historia")
    bt = backtest(demand, observed, weekday0, origins, horizon)
    sel, ev = slice(0, weeks), slice(weeks, 2 * weeks)
    choice = choose(bt.errors[sel], bt.observed_days[sel])
    err = bt.errors[ev].sum(0)  # (methods, products)
    chosen = np.take_along_axis(err, choice[None, :], 0)[0]
    act, n = bt.actual[ev].sum(0), bt.observed_days[ev].sum(0)
    groups = np.zeros(err.shape[1], dtype=object) if groups is None else np.asarray(groups, dtype=object)

    def summary(mask):
        rows = {name: {"wape": wape(err[i, mask], act[mask]), "mase": mase(err[i, mask], n[mask], bt.scale[mask])}
                for i, name in enumerate(METHODS)}
        rows["choice"] = {"wape": wape(chosen[mask], act[mask]), "mase": mase(chosen[mask], n[mask], bt.scale[mask])}
        return rows

    every = np.ones(err.shape[1], dtype=bool)
    counts = np.bincount(choice, minlength=len(METHODS))
    return {
        "products": int(err.shape[1]),
        "overall": summary(every),
        "by_group": {str(g): summary(groups == g) for g in sorted(set(groups.tolist()), key=str)},
        "chosen_counts": {name: int(c) for name, c in zip(METHODS, counts)},
    }
