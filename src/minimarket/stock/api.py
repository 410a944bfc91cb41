"""Routes for stock: movements, stocktake, transfers, POS sales, locations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from minimarket.accounts.audit import Context
from minimarket.accounts.permissions import READ, STOCK_WRITE
from minimarket.api.deps import get_db, get_env_settings, require
from minimarket.api.writes import write_once
from minimarket.config import Settings
from minimarket.db import Database
from minimarket.platform.json_numbers import PlainNumbersRoute
from minimarket.platform.read_cache import note_narrow
from minimarket.stock import service
from minimarket.stock.locations import list_locations as _locations
from minimarket.stock.movement_on_loop import MovementOnLoop
from minimarket.stock.schemas import (
    BatchIn,
    BatchLine,
    BatchOut,
    LocationOut,
    MovementIn,
    MovementOut,
    MovementPage,
    LedgerType,
    SaleIn,
    SaleOut,
    StocktakeIn,
    StocktakeOut,
    TransferIn,
)

read_router = APIRouter(prefix="/api", tags=["stock"])
# JSON numbers keep their text: quantities and money written as 1e3 are refused, not rounded.
write_router = APIRouter(prefix="/api", route_class=PlainNumbersRoute, tags=["stock"])
IDEMPOTENCY_NOTE = "Enviá `Idempotency-Key` para reintentar sin duplicar."


def _stock_only(operation: Callable[[Session, str | None], BaseModel]) -> Callable[[Session, str | None], BaseModel]:
    """These units of work change stock only: their commit bumps the moved products' cache versions
    (noted by the ledger), not the whole catalogue's."""
    def run(session: Session, key: str | None) -> BaseModel:
        note_narrow(session.info)
        return operation(session, key)

    return run


@write_router.post("/inventory/{sku}/movements", status_code=201, response_model=MovementOut,
                   summary="Registrar un movimiento de un producto", description=IDEMPOTENCY_NOTE)
def register_movement(sku: Annotated[str, Path(max_length=60)], movement: MovementIn, request: Request,
                      ctx: Context = Depends(require(STOCK_WRITE)),
                      settings: Settings = Depends(get_env_settings)) -> JSONResponse:
    try:  # the same rules as a batch line: the path's sku is checked like a body's
        line = BatchLine.model_validate({**movement.model_dump(), "sku": sku})
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc
    return write_once(request, ctx, payload=movement, operation=_stock_only(lambda session, key: service.register_movement(
        session, ctx, line=line, settings=settings, idempotency_key=key)))


# POST /api/inventory/{sku}/movements recorded on the event loop by the caller gate when it can do it exactly
# as this route (PostgreSQL; apps.py registers it); anything else reaches the route above.
movement_on_loop = MovementOnLoop(
    route=next(r for r in write_router.routes if getattr(r, "endpoint", None) is register_movement),
    permission=STOCK_WRITE)


@write_router.post("/movements", status_code=201, response_model=BatchOut,
                   summary="Registrar un lote de movimientos (todo o nada, hasta 500)", description=IDEMPOTENCY_NOTE)
def register_batch(batch: BatchIn, request: Request, ctx: Context = Depends(require(STOCK_WRITE)),
                   settings: Settings = Depends(get_env_settings)) -> JSONResponse:
    return write_once(request, ctx, payload=batch, operation=_stock_only(lambda session, key: service.register_movements(
        session, ctx, batch=batch, settings=settings, idempotency_key=key)))


@write_router.post("/stocktake", status_code=201, response_model=StocktakeOut,
                   summary="Cargar un recuento: las diferencias quedan como ajustes", description=IDEMPOTENCY_NOTE)
def stocktake(count: StocktakeIn, request: Request, ctx: Context = Depends(require(STOCK_WRITE)),
              settings: Settings = Depends(get_env_settings)) -> JSONResponse:
    return write_once(request, ctx, payload=count, operation=_stock_only(lambda session, key: service.take_stocktake(
        session, ctx, count=count, settings=settings, idempotency_key=key)))


@write_router.post("/transfers", status_code=201, response_model=BatchOut,
                   summary="Transferir mercadería entre ubicaciones", description=IDEMPOTENCY_NOTE)
def transfer(data: TransferIn, request: Request, ctx: Context = Depends(require(STOCK_WRITE)),
             settings: Settings = Depends(get_env_settings)) -> JSONResponse:
    return write_once(request, ctx, payload=data, operation=_stock_only(lambda session, key: service.transfer_stock(
        session, ctx, transfer=data, settings=settings, idempotency_key=key)))


@write_router.post("/sales", status_code=201, response_model=SaleOut,
                   summary="Registrar una venta de la caja (idempotente por ticket_id)")
def register_sale(sale: SaleIn, request: Request, ctx: Context = Depends(require(STOCK_WRITE)),
                  settings: Settings = Depends(get_env_settings)) -> JSONResponse:
    return write_once(request, ctx, payload=sale,
                      operation=_stock_only(lambda session, _key: service.record_sale(session, ctx, sale=sale,
                                                                                      settings=settings)),
                      natural_key=(f"ticket:{sale.ticket_id}", f"El ticket '{sale.ticket_id}'"))


@read_router.get("/movements", response_model=MovementPage, summary="Libro de movimientos, del más nuevo al más viejo")
def list_movements(
    sku: Annotated[str | None, Query(max_length=40)] = None,
    type: Annotated[LedgerType | None, Query()] = None,  # noqa: A002
    date_from: Annotated[str | None, Query(alias="from", max_length=40, description="AAAA-MM-DD o ISO 8601")] = None,
    date_to: Annotated[str | None, Query(alias="to", max_length=40, description="AAAA-MM-DD (incluye el día)")] = None,
    actor: Annotated[str | None, Query(max_length=120)] = None,
    location: Annotated[str | None, Query(max_length=20)] = None,
    reference: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=30)] = None,
    _ctx: Context = Depends(require(READ)),
    db: Database = Depends(get_db),
) -> MovementPage:
    with db.read() as session:
        return service.list_movements(session, sku=sku, movement_type=type, date_from=date_from, date_to=date_to,
                                      actor=actor, location=location, reference=reference, limit=limit, cursor=cursor)


@read_router.get("/locations", response_model=list[LocationOut], summary="Ubicaciones de stock")
def list_locations(_ctx: Context = Depends(require(READ)), db: Database = Depends(get_db)) -> list[LocationOut]:
    with db.read() as session:
        return [LocationOut(code=loc.code, name=loc.name, branch=loc.branch.name, active=loc.active)
                for loc in _locations(session)]
