"""Routes for /api/inventory: products with their stock. Parse, authorize, call the service, shape the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from minimarket.accounts.audit import Context
from minimarket.accounts.permissions import CATALOG_WRITE, READ
from minimarket.api.deps import get_db, get_env_settings, require
from minimarket.api.writes import write_once
from minimarket.catalog import service
from minimarket.stock import inventory, list_reads, product_reads
from minimarket.stock import service as stock_service
from minimarket.catalog.schemas import ProductCreate, ProductUpdate
from minimarket.stock.schemas import ProductDetail, ProductPage
from minimarket.config import Settings
from minimarket.db import Database
from minimarket.platform.json_numbers import PlainNumbersRoute

read_router = APIRouter(prefix="/api", tags=["inventario"])
# JSON numbers keep their text: quantities and money written as 1e3 are refused, not rounded.
write_router = APIRouter(prefix="/api", route_class=PlainNumbersRoute, tags=["inventario"])


@read_router.get("/inventory", response_model=ProductPage, summary="Listar productos con su stock")
async def list_inventory(
    request: Request,
    q: Annotated[str | None, Query(max_length=100, description="Nombre, marca, SKU o código de barras")] = None,
    category: Annotated[str | None, Query(max_length=100)] = None,
    supplier: Annotated[str | None, Query(max_length=200, description="Nombre o CUIT")] = None,
    low_stock: Annotated[bool | None, Query(description="true: stock ≤ mínimo")] = None,
    out_of_stock: Annotated[bool | None, Query(description="true: sin stock")] = None,
    active: Annotated[bool | None, Query(description="Por defecto sólo activos")] = True,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    _ctx: Context = Depends(require(READ)),
) -> Response:
    # A kept page never gets here: the caller gate serves it (kept_list below). Kept or read in a worker thread
    # and kept until a write changes what it lists or shows (stock.list_reads).
    body = await list_reads.page_answer(request.scope, request.app.state, q=q, category=category, supplier=supplier,
                                        low_stock=low_stock, out_of_stock=out_of_stock, active=active, limit=limit,
                                        cursor=cursor)
    return Response(body, media_type="application/json")


@read_router.get("/inventory/{sku}", response_model=ProductDetail, summary="Un producto (por SKU o código de barras)")
async def get_product(sku: Annotated[str, Path(max_length=60)], request: Request,
                      _ctx: Context = Depends(require(READ))) -> Response:
    # A kept answer never gets here: the caller gate serves it (kept_product below). This is a miss: read
    # in a worker thread and kept under the versions the request read before (stock.product_reads).
    return Response(await product_reads.product_answer(request.scope, request.app.state, sku),
                    media_type="application/json")


# GET /api/inventory/{sku} answered from the kept bytes by the caller gate (apps.py registers it).
kept_product = product_reads.KeptProduct(
    route=next(r for r in read_router.routes if getattr(r, "endpoint", None) is get_product), permission=READ)
# GET /api/inventory answered from a kept page by the caller gate (apps.py registers it).
kept_list = list_reads.KeptList(
    route=next(r for r in read_router.routes if getattr(r, "endpoint", None) is list_inventory), permission=READ)


@write_router.post("/inventory", status_code=201, response_model=ProductDetail, summary="Dar de alta un producto")
def create_product(
    data: ProductCreate,
    request: Request,
    ctx: Context = Depends(require(CATALOG_WRITE)),
    settings: Settings = Depends(get_env_settings),
) -> JSONResponse:
    def operation(session, _key):  # noqa: ANN001, ANN202
        product = stock_service.register_product(session, ctx, data=data, settings=settings)
        return inventory.product_detail(session, product)

    return write_once(request, ctx, payload=data, operation=operation)


@write_router.patch("/inventory/{sku}", response_model=ProductDetail, summary="Modificar datos de un producto")
def update_product(
    sku: Annotated[str, Path(max_length=60)], changes: ProductUpdate, ctx: Context = Depends(require(CATALOG_WRITE)), db: Database = Depends(get_db)
) -> ProductDetail:
    with db.write() as session:
        product = stock_service.change_product(session, ctx, sku=sku, changes=changes)
        return inventory.product_detail(session, product)


@write_router.delete("/inventory/{sku}", response_model=ProductDetail,
                     summary="Desactivar un producto (nunca se borra su historia)")
def deactivate_product(sku: Annotated[str, Path(max_length=60)], ctx: Context = Depends(require(CATALOG_WRITE)),
                       db: Database = Depends(get_db)) -> ProductDetail:
    with db.write() as session:
        product = service.deactivate_product(session, ctx, sku=sku)
        return inventory.product_detail(session, product)
