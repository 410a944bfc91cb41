"""Routes for /api/forecast: recompute on demand, one product's next 14 days."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path

from minimarket.accounts.audit import Context, record_audit
from minimarket.accounts.permissions import CATALOG_WRITE, READ
from minimarket.api.deps import get_db, require
from minimarket.db import Database
from minimarket.purchasing import service
from minimarket.purchasing.schemas import ForecastOut, ForecastRunIn, ForecastRunOut

forecast_router = APIRouter(prefix="/api/forecast", tags=["compras"])


@forecast_router.post("/run", response_model=ForecastRunOut,
                      summary="Recalcular el pronóstico de demanda de todos los productos activos")
def run_forecast(data: Annotated[ForecastRunIn | None, Body()] = None, ctx: Context = Depends(require(CATALOG_WRITE)),
                 db: Database = Depends(get_db)) -> ForecastRunOut:
    days = (data or ForecastRunIn()).days
    with db.write() as session:
        summary = service.run_forecast(session, days=days)
        record_audit(session, ctx, action="forecast.run", entity="pronosticos", entity_id=summary.computed_on,
                     before=None, after={"products": summary.products, "history_days": summary.history_days})
    return ForecastRunOut(**service.summary_dict(summary))


@forecast_router.get("/{sku}", response_model=ForecastOut,
                     summary="Pronóstico de un producto: los próximos 14 días y cómo se eligió el método")
def get_forecast(sku: Annotated[str, Path(min_length=1, max_length=40)], _ctx: Context = Depends(require(READ)),
                 db: Database = Depends(get_db)) -> ForecastOut:
    with db.read() as session:
        return ForecastOut(**service.forecast_for_sku(session, sku))
