"""Reportes: inventory, movements, purchase orders and lagging prices as CSV, XLSX or PDF, with the same filters as their pages.
Downloads use the session: no API key ever appears in a page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from minimarket.accounts.permissions import READ
from minimarket.accounts.sessions import SessionUser
from minimarket.ar.dates import STORE_TZ
from minimarket.catalog.models import Category
from minimarket.errors import DomainError
from minimarket.purchasing.order_rules import STATE_LABELS
from minimarket.reports import exports
from minimarket.reports.purchase_orders import purchase_orders_table
from minimarket.suppliers.models import Supplier
from minimarket.stock.locations import list_locations
from minimarket.stock.schemas import LedgerType
from minimarket.types import utcnow
from minimarket.web.auth import page_user
from minimarket.web.inventory import STATES
from minimarket.web.movements import ledger_type
from minimarket.web.kept_pages import keep
from minimarket.web.templating import no_products, render

router = APIRouter(include_in_schema=False)
Format = Annotated[str, Path(pattern="^(csv|xlsx|pdf)$")]
Text = Annotated[str, Query(max_length=100)]


@router.get("/reportes", response_class=HTMLResponse)
def reports_page(request: Request, user: SessionUser = Depends(page_user(READ))) -> HTMLResponse:
    with request.app.state.db.read() as session:
        categories = sorted(session.scalars(select(Category.name)).all(), key=str.casefold)
        locations = [(loc.code, loc.name) for loc in list_locations(session)]
        suppliers = session.execute(select(Supplier.id, Supplier.name).where(Supplier.merged_into_id.is_(None))
                                    .order_by(Supplier.name)).all()
        empty = no_products(session)
    response = render(request, "reports.html", user, categories=categories, locations=locations,
                      suppliers=suppliers, order_states=STATE_LABELS, types=LedgerType.__args__, empty=empty)
    return keep(request, response)  # web/kept_pages.py


def _download(request: Request, user: SessionUser, build, fmt: str) -> Response:  # noqa: ANN001
    generated = utcnow().astimezone(STORE_TZ)
    try:
        with request.app.state.db.read() as session:
            table = build(session)
    except DomainError as exc:
        return render(request, "error.html", user, status_code=exc.status_code, heading="No se pudo generar el reporte",
                      message=exc.message)
    body = exports.render(table, fmt, generated=generated)
    name = exports.file_name(table, fmt, generated)
    return Response(body, media_type=exports.FORMATS[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


@router.get("/reportes/inventario.{formato}")
async def inventory_export(request: Request, formato: Format, user: SessionUser = Depends(page_user(READ)),
                           q: Text = "", categoria: Text = "", proveedor: Text = "",
                           estado: Annotated[str, Query(max_length=10)] = "") -> Response:
    low, out = STATES.get(estado, (None, None))

    def build(session):  # noqa: ANN001, ANN202
        return exports.inventory_table(session, q=q or None, category=categoria or None, supplier=proveedor or None,
                                       low_stock=low, out_of_stock=out)

    return await run_in_threadpool(_download, request, user, build, formato)


@router.get("/reportes/movimientos.{formato}")
async def movements_export(request: Request, formato: Format, user: SessionUser = Depends(page_user(READ)),
                           producto: Annotated[str, Query(max_length=40)] = "",
                           tipo: Annotated[str, Query(max_length=20)] = "",
                           desde: Annotated[str, Query(max_length=10)] = "",
                           hasta: Annotated[str, Query(max_length=10)] = "",
                           ubicacion: Annotated[str, Query(max_length=20)] = "") -> Response:
    def build(session):  # noqa: ANN001, ANN202
        return exports.movements_table(session, sku=producto or None, movement_type=ledger_type(tipo), date_from=desde or None,
                                       date_to=hasta or None, location=ubicacion or None)

    return await run_in_threadpool(_download, request, user, build, formato)


@router.get("/reportes/pedidos.{formato}")
async def orders_export(request: Request, formato: Format, user: SessionUser = Depends(page_user(READ)),
                        proveedor: Annotated[str, Query(max_length=12)] = "",
                        estado: Annotated[str, Query(max_length=20)] = "",
                        desde: Annotated[str, Query(max_length=10)] = "",
                        hasta: Annotated[str, Query(max_length=10)] = "") -> Response:
    def build(session):  # noqa: ANN001, ANN202
        return purchase_orders_table(session, supplier=proveedor or None, state=estado or None,
                                     date_from=desde or None, date_to=hasta or None)

    return await run_in_threadpool(_download, request, user, build, formato)


@router.get("/reportes/precios-atrasados.{formato}")
async def lagging_export(request: Request, formato: Format, user: SessionUser = Depends(page_user(READ)),
                         categoria: Text = "") -> Response:
    def build(session):  # noqa: ANN001, ANN202
        return exports.lagging_table(session, category=categoria or None)

    return await run_in_threadpool(_download, request, user, build, formato)
