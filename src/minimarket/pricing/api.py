"""Routes for /api/prices: settings, history, markups, bulk changes and their undo. Parse, authorize, call, shape."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import JSONResponse

from minimarket.accounts.audit import Context
from minimarket.accounts.permissions import ADMIN, CATALOG_WRITE, READ
from minimarket.api.deps import get_db, require
from minimarket.catalog.service import find_product
from minimarket.db import Database
from minimarket.api.writes import write_once
from minimarket.platform.json_numbers import PlainNumbersRoute
from minimarket.pricing import batches, bulk, lagging, pricelist, service
from minimarket.pricing.pricelist_file import MAX_FILE_BYTES
from minimarket.pricing.schemas import (
    BatchOut,
    BatchPage,
    BulkChangeIn,
    BulkPreviewOut,
    LaggingOut,
    MarkupIn,
    PriceHistoryOut,
    PriceListOut,
    PriceListRequest,
    PricingSettingsOut,
    PricingSettingsPatch,
)
from minimarket.pricing.settings import category_markups, load_pricing_settings, update_pricing_settings

router = APIRouter(prefix="/api/prices", tags=["precios"], route_class=PlainNumbersRoute)
SkuPath = Annotated[str, Path(max_length=60, description="SKU o código de barras")]


def _settings_out(session) -> PricingSettingsOut:  # noqa: ANN001
    settings = load_pricing_settings(session)
    return PricingSettingsOut(
        default_markup=settings.default_markup, rounding=settings.rounding,
        monthly_inflation=settings.monthly_inflation, apply_suggested_price=settings.apply_suggested_price,
        category_markups=[{"category": c, "target_markup": t, "products": n} for c, t, n in category_markups(session)])


@router.get("/settings", response_model=PricingSettingsOut, summary="Ajustes de precios de la tienda")
def get_pricing_settings(_ctx: Context = Depends(require(READ)), db: Database = Depends(get_db)) -> PricingSettingsOut:
    with db.read() as session:
        return _settings_out(session)


@router.patch("/settings", response_model=PricingSettingsOut,
              summary="Cambiar margen por defecto, redondeo, inflación, márgenes por categoría (admin)")
def patch_pricing_settings(changes: PricingSettingsPatch, ctx: Context = Depends(require(ADMIN)),
                           db: Database = Depends(get_db)) -> PricingSettingsOut:
    with db.write() as session:
        update_pricing_settings(session, ctx, changes={n: getattr(changes, n) for n in changes.model_fields_set})
        return _settings_out(session)


@router.get("/lagging", response_model=LaggingOut,
            summary="Precios atrasados: bajo su margen objetivo, ordenados por plata perdida por día")
def get_lagging(limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                offset: Annotated[int, Query(ge=0, le=10_000_000, description="Saltear los primeros N")] = 0,
                category: Annotated[str | None, Query(max_length=100)] = None,
                _ctx: Context = Depends(require(READ)), db: Database = Depends(get_db)) -> LaggingOut:
    with db.lookup() as session:  # independent reads: no BEGIN/ROLLBACK round trips
        return LaggingOut(**lagging.lagging_prices(session, limit=limit, offset=offset, category=category))


@router.get("/{sku}/history", response_model=PriceHistoryOut,
            summary="Historia de costo y precio de un producto (con costo de reposición)")
def get_price_history(sku: SkuPath, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                      _ctx: Context = Depends(require(READ)), db: Database = Depends(get_db)) -> PriceHistoryOut:
    with db.read() as session:
        return PriceHistoryOut(**service.price_history(session, find_product(session, sku), limit=limit))


@router.put("/{sku}/markup", response_model=PriceHistoryOut, summary="Fijar (o quitar) el margen propio de un producto")
def put_markup(sku: SkuPath, data: MarkupIn, ctx: Context = Depends(require(CATALOG_WRITE)),
               db: Database = Depends(get_db)) -> PriceHistoryOut:
    with db.write() as session:
        product = service.set_product_markup(session, ctx, product=find_product(session, sku, lock=True),
                                             markup=data.markup)
        return PriceHistoryOut(**service.price_history(session, product, limit=20))


@router.post("/bulk/preview", response_model=BulkPreviewOut,
             summary="Vista previa de un cambio masivo (no cambia nada)")
def preview_bulk(change: BulkChangeIn, offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
                 limit: Annotated[int, Query(ge=1, le=1000)] = bulk.PREVIEW_ITEMS,
                 _ctx: Context = Depends(require(READ)), db: Database = Depends(get_db)) -> BulkPreviewOut:
    with db.read() as session:
        return BulkPreviewOut(**bulk.preview_bulk(session, change=change, offset=offset, limit=limit))


@router.post("/bulk", status_code=201, response_model=BatchOut,
             summary="Aplicar un cambio masivo como un lote (todo o nada)",
             description="Enviá `Idempotency-Key` para reintentar sin aplicar dos veces.")
def apply_bulk(change: BulkChangeIn, request: Request, ctx: Context = Depends(require(CATALOG_WRITE))) -> JSONResponse:
    def operation(session, _key):  # noqa: ANN001, ANN202
        return BatchOut(**batches.batch_out(bulk.apply_bulk(session, ctx, change=change)))

    return write_once(request, ctx, payload=change, operation=operation)


@router.get("/batches", response_model=BatchPage, summary="Lotes de cambios de precios, del más nuevo al más viejo")
def list_batches(limit: Annotated[int, Query(ge=1, le=200)] = 50,
                 before_id: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Página anterior a este lote")] = None,
                 _ctx: Context = Depends(require(READ)), db: Database = Depends(get_db)) -> BatchPage:
    with db.read() as session:
        return BatchPage(items=[batches.batch_out(b) for b in batches.list_batches(session, limit=limit,
                                                                                     before_id=before_id)])


@router.post("/batches/{batch_id}/undo", status_code=201, response_model=BatchOut,
             summary="Deshacer un lote: vuelve cada costo y precio a su valor anterior exacto")
def undo_batch(batch_id: Annotated[int, Path(ge=1, le=2**31 - 1)], request: Request,
               ctx: Context = Depends(require(CATALOG_WRITE))) -> JSONResponse:
    def operation(session, _key):  # noqa: ANN001, ANN202
        return BatchOut(**batches.batch_out(batches.undo_batch(session, ctx, batch_id=batch_id)))

    return write_once(request, ctx, payload=None, operation=operation)


def _upload(file: UploadFile, supplier: str | None, update_prices: bool) -> tuple[bytes, PriceListRequest]:
    content = file.file.read(MAX_FILE_BYTES + 1)  # never more than the limit + 1 byte into memory
    request = PriceListRequest.of(filename=file.filename or "lista", content=content, supplier=supplier,
                                  update_prices=update_prices)
    return content, request


ListFile = Annotated[UploadFile, File(description="CSV (`;` o `,`) o XLSX con columnas codigo y costo, hasta 1 MiB")]
ListSupplier = Annotated[str | None, Form(max_length=200, description="Proveedor (id, CUIT o nombre): "
                                                                       "habilita sus códigos propios")]
ListUpdatePrices = Annotated[bool, Form(description="Recalcular también el precio desde el costo nuevo")]


@router.post("/price-list/preview", response_model=PriceListOut,
             summary="Vista previa de una lista de precios de proveedor (no cambia nada)")
def preview_price_list(file: ListFile, supplier: ListSupplier = None, update_prices: ListUpdatePrices = False,
                       _ctx: Context = Depends(require(READ)), db: Database = Depends(get_db)) -> PriceListOut:
    content, data = _upload(file, supplier, update_prices)
    with db.read() as session:
        return PriceListOut(**pricelist.preview_price_list(session, content=content, filename=data.filename,
                                                           supplier=data.supplier, update_prices=update_prices))


@router.post("/price-list", status_code=201, response_model=PriceListOut,
             summary="Aplicar una lista de precios de proveedor como un lote (todo o nada)",
             description="Los códigos desconocidos se informan y no se aplican; un archivo con errores no cambia nada.")
def apply_price_list(request: Request, file: ListFile, supplier: ListSupplier = None,
                     update_prices: ListUpdatePrices = False,
                     ctx: Context = Depends(require(CATALOG_WRITE))) -> JSONResponse:
    content, data = _upload(file, supplier, update_prices)

    def operation(session, _key):  # noqa: ANN001, ANN202
        _, body = pricelist.apply_price_list(session, ctx, content=content, filename=data.filename,
                                             supplier=data.supplier, update_prices=update_prices)
        return PriceListOut(**body)

    return write_once(request, ctx, payload=data, operation=operation)
