"""Routes for /api/prices: settings, a product's history and markup. Parse, authorize, call, shape."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from minimarket.accounts.audit import Context
from minimarket.accounts.deps import get_db, require
from minimarket.accounts.permissions import ADMIN, CATALOG_WRITE, READ
from minimarket.catalog.service import find_product
from minimarket.db import Database
from minimarket.pricing import service
from minimarket.pricing.schemas import MarkupIn, PriceHistoryOut, PricingSettingsOut, PricingSettingsPatch
from minimarket.pricing.settings import category_markups, load_pricing_settings, update_pricing_settings

router = APIRouter(prefix="/api/prices", tags=["precios"])
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
