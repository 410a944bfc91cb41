"""Pronóstico: one product's next 14 days and how its method was chosen, the last run's methods, the
products that sell most, and (on request) the evaluation on the store's own history."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from minimarket.accounts.permissions import READ
from minimarket.accounts.sessions import SessionUser
from minimarket.ar.money import format_number
from minimarket.errors import DomainError
from minimarket.purchasing import service
from minimarket.suppliers.models import WEEKDAYS
from minimarket.web.auth import page_user
from minimarket.web.charts import hbars
from minimarket.web.kept_pages import keep
from minimarket.web.templating import render

router = APIRouter(include_in_schema=False)
SHORT_NAMES = {"croston": "Croston", "tsb": "TSB", "seasonal_naive": "Semana pasada", "ma28": "Promedio 28 días"}


def short_name(method: str) -> str:
    """A method's name that fits a phone's table cell (the long label is in the product's page)."""
    if method.startswith("ses_dow_"):
        return f"Suavizado α {method.rsplit('_', 1)[1].replace('.', ',')}"
    return SHORT_NAMES.get(method, method)


def _days_chart(forecast: dict):  # noqa: ANN202
    items = []
    for day in forecast["days"]:
        when = date.fromisoformat(day["date"])
        items.append((f"{WEEKDAYS[when.weekday()]} {when:%d/%m}", Decimal(str(day["units"]))))
    return hbars(f"Pronóstico de {forecast['name']} para los próximos 14 días", items,
                 lambda v: f"{format_number(v, 1)} u")


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _evaluation(report: dict) -> dict:
    """The overall rows of `evaluate_store` in the order a store owner reads them, and the verdict."""
    overall = report["overall"]
    rows = [{"label": "Elección por producto", "wape": _finite(overall["choice"]["wape"]),
             "mase": _finite(overall["choice"]["mase"]), "choice": True}]
    rows += [{"label": short_name(m), "wape": _finite(overall[m]["wape"]),
              "mase": _finite(overall[m]["mase"]), "choice": False} for m in overall if m != "choice"]
    groups = [{"name": name, "choice": _finite(r["choice"]["wape"]), "naive": _finite(r["seasonal_naive"]["wape"])}
              for name, r in report["by_group"].items()]
    return {"rows": rows, "groups": groups, "products": report["products"], "first_day": date.fromisoformat(report["first_day"]),
            "history_days": report["history_days"], "weeks": report["scored_weeks"],
            "beats": rows[0]["wape"] is not None and _finite(overall["seasonal_naive"]["wape"]) is not None
            and overall["choice"]["wape"] < overall["seasonal_naive"]["wape"]}


@router.get("/pronostico", response_class=HTMLResponse)
def forecast_page(
    request: Request,
    user: SessionUser = Depends(page_user(READ)),
    producto: Annotated[str, Query(max_length=40)] = "",
    evaluar: Annotated[str, Query(max_length=2)] = "",
) -> HTMLResponse:
    context: dict = {"producto": producto.strip(), "forecast": None, "chart": None, "error": None,
                     "evaluation": None, "evaluation_error": None}
    status = 200
    with request.app.state.db.read() as session:
        context["run"] = service.latest_run(session)
        context["top"] = service.top_sellers(session, limit=15)
        if context["producto"]:
            try:
                context["forecast"] = service.forecast_for_sku(session, context["producto"])
                context["forecast"]["computed_on"] = date.fromisoformat(context["forecast"]["computed_on"])
                context["chart"] = _days_chart(context["forecast"])
            except DomainError as exc:
                context["error"], status = exc.message.removeprefix("sku: "), exc.status_code
        if evaluar:
            try:
                context["evaluation"] = _evaluation(service.evaluate_store(session))
            except DomainError as exc:
                context["evaluation_error"] = exc.message.removeprefix("days: ")
    response = render(request, "forecast.html", user, status_code=status, short_name=short_name, **context)
    return keep(request, response)  # web/kept_pages.py: for the store's day, until the next write
