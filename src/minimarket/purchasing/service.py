"""Forecast use cases: compute and store (`pronosticos`), evaluate on the store's own history,
and read one product's next days. The math is in `forecast.py`; the data in `history.py`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta

import numpy as np
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from minimarket.ar.dates import store_day_start
from minimarket.catalog.models import Product
from minimarket.errors import InvalidInput, NotFound
from minimarket.purchasing import forecast as F
from minimarket.purchasing.history import DEFAULT_HISTORY_DAYS, load_history
from minimarket.purchasing.models import Forecast
from minimarket.types import utcnow

MAX_HISTORY_DAYS = 3 * 365
METHOD_LABELS = {
    **{m: f"suavizado exponencial con perfil semanal (α {m.rsplit('_', 1)[1].replace('.', ',')})"
       for m in F.METHODS if m.startswith("ses_dow")},
    "croston": "Croston (SBA), para ventas intermitentes",
    "tsb": "TSB (probabilidad de venta × tamaño), para ventas intermitentes",
    "seasonal_naive": "lo mismo que el mismo día de la semana pasada",
    "ma28": "promedio de los últimos 28 días",
}


@dataclass
class RunSummary:
    computed_on: str
    products: int
    history_days: int
    methods: dict[str, int]
    seconds: float


def check_days(days: int) -> int:
    if not 28 <= days <= MAX_HISTORY_DAYS:
        raise InvalidInput(f"days: {days} no sirve; usá entre 28 y {MAX_HISTORY_DAYS} días de historia",
                           details={"field": "days"})
    return days


def run_forecast(session: Session, *, days: int = DEFAULT_HISTORY_DAYS, now: datetime | None = None) -> RunSummary:
    """Fit every active product and store today's row per product (replacing today's earlier run)."""
    started = datetime.now()
    hist = load_history(session, check_days(days), now)
    computed_on = store_day_start(now).date()
    session.execute(delete(Forecast).where(Forecast.computed_on == computed_on))
    counts = {m: 0 for m in F.METHODS}
    if hist.product_ids.size:
        fit = F.fit(hist.demand, hist.observed, hist.weekday0)
        observed_days = hist.observed.sum(0)
        stamp = utcnow()
        rows = [
            {"product_id": int(pid), "computed_on": computed_on, "daily_rate": round(float(fit.rate[i]), 4),
             "weekday_profile": [round(float(x), 4) for x in fit.profile[:, i]],
             "method": F.METHODS[int(fit.method[i])], "backtest_mae": _finite(fit.mae[i]),
             "backtest_wape": _finite(fit.wape[i]), "history_days": hist.days,
             "observed_days": int(observed_days[i]), "created_at": stamp}
            for i, pid in enumerate(hist.product_ids)
        ]
        for chunk in range(0, len(rows), 5000):
            session.execute(insert(Forecast), rows[chunk : chunk + 5000])
        for m in fit.method:
            counts[F.METHODS[int(m)]] += 1
    return RunSummary(computed_on.isoformat(), int(hist.product_ids.size), hist.days, counts,
                      round((datetime.now() - started).total_seconds(), 2))


def _finite(value) -> float | None:  # noqa: ANN001
    value = float(value)
    return round(value, 4) if np.isfinite(value) else None


def evaluate_store(session: Session, *, days: int = DEFAULT_HISTORY_DAYS, now: datetime | None = None,
                   weeks: int = 4) -> dict:
    """WAPE and MASE of every method and of the per-product choice, overall and per category:
    the choice is made on `weeks` weekly origins and scored on the `weeks` after them."""
    hist = load_history(session, check_days(days), now)
    if hist.product_ids.size == 0:
        raise InvalidInput("No hay productos activos para evaluar", details={"field": "products"})
    try:
        report = F.evaluate(hist.demand, hist.observed, hist.weekday0, groups=hist.categories, weeks=weeks)
    except ValueError as exc:
        raise InvalidInput(f"days: {exc}", details={"field": "days"}) from exc
    report["history_days"] = hist.days
    report["first_day"] = hist.first_day.isoformat()
    report["scored_weeks"] = weeks
    return report


def latest_forecast(session: Session, product_id: int) -> Forecast | None:
    return session.scalars(select(Forecast).where(Forecast.product_id == product_id)
                           .order_by(Forecast.computed_on.desc()).limit(1)).first()


def forecast_for_sku(session: Session, sku: str, *, horizon: int = 14, now: datetime | None = None) -> dict:
    """The next `horizon` days (from today) of a product's stored forecast, and how it was chosen."""
    product = session.scalars(select(Product).where(Product.sku == sku.strip().upper())).first()
    if product is None:
        raise NotFound(f"sku: no hay un producto con SKU '{sku}'", details={"sku": sku})
    row = latest_forecast(session, product.id)
    if row is None:
        raise NotFound(f"sku: todavía no hay pronóstico para '{product.sku}'; corré `minimarket forecast run` "
                       "o POST /api/forecast/run", details={"sku": product.sku})
    today = store_day_start(now).date()
    days = [today + timedelta(days=i) for i in range(horizon)]
    return {
        "sku": product.sku, "name": product.name, "computed_on": row.computed_on.isoformat(),
        "method": row.method, "method_label": METHOD_LABELS.get(row.method, row.method),
        "daily_rate": row.daily_rate, "weekday_profile": row.weekday_profile,
        "backtest_mae": row.backtest_mae, "backtest_wape": row.backtest_wape,
        "history_days": row.history_days, "observed_days": row.observed_days,
        "how_chosen": _how_chosen(row),
        "days": [{"date": d.isoformat(), "units": round(row.daily_rate * row.weekday_profile[d.weekday()], 3)}
                 for d in days],
    }


def _how_chosen(row: Forecast) -> str:
    label = METHOD_LABELS.get(row.method, row.method)
    if row.backtest_mae is None:
        return (f"{label}: sin días con stock en las últimas 4 semanas para medir métodos "
                f"({row.observed_days} de {row.history_days} días observados)")
    mae = f"{row.backtest_mae:.2f}".replace(".", ",")  # es-AR: 1,91
    return (f"{label}: el de menor error en 4 semanas de backtest con origen móvil entre {len(F.METHODS)} "
            f"métodos (error medio {mae} u/día); {row.observed_days} de {row.history_days} "
            "días con stock")


def summary_dict(summary: RunSummary) -> dict:
    return asdict(summary)


def forecast_count(session: Session, computed_on: date) -> int:
    return int(session.scalar(select(func.count()).select_from(Forecast).where(Forecast.computed_on == computed_on)) or 0)


def latest_run(session: Session) -> dict | None:
    """The last stored computation: its day, how many products and how many chose each method."""
    computed_on = session.scalar(select(func.max(Forecast.computed_on)))
    if computed_on is None:
        return None
    counts = dict(session.execute(select(Forecast.method, func.count()).where(Forecast.computed_on == computed_on)
                                  .group_by(Forecast.method)).all())
    methods = [{"method": m, "label": METHOD_LABELS.get(m, m), "products": int(counts[m])}
               for m in sorted(counts, key=lambda m: -counts[m])]
    return {"computed_on": computed_on, "products": sum(counts.values()), "methods": methods}


def top_sellers(session: Session, *, limit: int = 20) -> list[dict]:
    """The products with the highest forecast daily demand in the last computation, with their method."""
    computed_on = session.scalar(select(func.max(Forecast.computed_on)))
    if computed_on is None:
        return []
    rows = session.execute(select(Product.sku, Product.name, Forecast.daily_rate, Forecast.method,
                                  Forecast.backtest_wape).join(Product, Product.id == Forecast.product_id)
                           .where(Forecast.computed_on == computed_on, Forecast.daily_rate > 0)
                           .order_by(Forecast.daily_rate.desc(), Product.sku).limit(limit)).all()
    return [{"sku": sku, "name": name, "daily_rate": rate, "method": method,
             "method_label": METHOD_LABELS.get(method, method),
             "wape": wape} for sku, name, rate, method, wape in rows]
