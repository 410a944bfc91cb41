"""Routes for /api/forecast (recompute on demand, one product's next 14 days) and
/api/purchasing (reorder suggestions per supplier)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query

from minimarket.accounts.audit import Context, record_audit
from minimarket.accounts.permissions import CATALOG_WRITE, READ
from minimarket.api.deps import get_db, require
from minimarket.db import Database
from minimarket.purchasing import service, suggestions
from minimarket.purchasing.schemas import ForecastOut, ForecastRunIn, ForecastRunOut

forecast_router = APIRouter(prefix="/api/forecast", tags=["compras"])


@forecast_router.post("/run", response_model=ForecastRunOut,
                      summary="Recalcular el pronóstico de demanda de todos los productos activos")
def run_forecast(data: Annotated[ForecastRunIn | None, Body()] = None, ctx: Context = Depends(require(CATALOG_WRITE)),
                 db: Database = Depends(get_db)) -> ForecastRunOut:
    days = (data or ForecastRunIn()).days
    with db.write() as session:
        summary = service.run_forecast(session, days=days)
        record_audit(session, ctx, action="forecast.run", entity="pronostico", entity_id=summary.computed_on,
                     before=None, after={"products": summary.products, "history_days": summary.history_days})
    return ForecastRunOut(**service.summary_dict(summary))


@forecast_router.get("/{sku}", response_model=ForecastOut,
                     summary="Pronóstico de un producto: los próximos 14 días y cómo se eligió el método")
def get_forecast(sku: Annotated[str, Path(min_length=1, max_length=40)], _ctx: Context = Depends(require(READ)),
                 db: Database = Depends(get_db)) -> ForecastOut:
    with db.read() as session:
        return ForecastOut(**service.forecast_for_sku(session, sku))


purchasing_router = APIRouter(prefix="/api/purchasing", tags=["compras"])


@purchasing_router.get("/suggestions", summary="Qué pedir a cada proveedor y por qué (de lo más urgente a lo menos)")
def get_suggestions(
    supplier: Annotated[str | None, Query(max_length=200, description="Id, CUIT o nombre del proveedor")] = None,
    cover_days: Annotated[int, Query(ge=1, le=120, description="Días de cobertura después de la entrega")] = 14,
    service_level: Annotated[float, Query(ge=0.5, le=0.999, description="Nivel de servicio (0,95 = 95 %)")] = 0.95,
    all_lines: Annotated[bool, Query(description="true: también los productos que no hace falta pedir")] = False,
    _ctx: Context = Depends(require(READ)),
    db: Database = Depends(get_db),
) -> dict:
    with db.read() as session:
        return suggestions.suggestions(session, supplier=supplier, cover_days=cover_days,
                                       service_level=service_level, include_all=all_lines)
