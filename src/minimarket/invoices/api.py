"""Routes for /api/invoices: drafts, matching, confirmation, annulment, AFIP QR, CSV/XLSX import."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from minimarket.accounts.audit import Context
from minimarket.api.deps import get_db, get_env_settings, require
from minimarket.api.writes import write_once
from minimarket.accounts.permissions import ADMIN, CATALOG_WRITE, READ, STOCK_WRITE
from minimarket.config import Settings
from minimarket.db import Database
from minimarket.errors import Forbidden
from minimarket.invoices import receipt, service
from minimarket.invoices.importer import XLSX_MEDIA_TYPE, parse_invoices
from minimarket.invoices.schemas import (
    AnnulIn,
    ConfirmIn,
    ConfirmOut,
    ImportOut,
    InvoiceIn,
    InvoiceOut,
    InvoicePage,
    InvoicePatch,
    InvoiceSettings,
    InvoiceSettingsPatch,
    QrIn,
    QrOut,
    State,
)
from minimarket.invoices.settings import deposito_can_confirm, set_deposito_can_confirm, set_tax_condition, tax_condition
from minimarket.invoices.templates import template_csv, template_xlsx
from minimarket.platform.json_numbers import PlainNumbersRoute

router = APIRouter(prefix="/api/invoices", tags=["facturas"], route_class=PlainNumbersRoute)
InvoiceId = Annotated[int, Path(ge=1, le=2_147_483_647, description="Id de la factura")]
IMPORT_BODY = {"requestBody": {"required": True, "content": {
    "text/csv": {"schema": {"type": "string"}},
    XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}}}


@router.get("/template.csv", summary="Plantilla CSV para importar facturas", response_class=Response)
def csv_template(_ctx: Context = Depends(require(READ))) -> Response:
    return Response(template_csv(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="facturas.csv"'})


@router.get("/template.xlsx", summary="Plantilla XLSX para importar facturas", response_class=Response)
def xlsx_template(_ctx: Context = Depends(require(READ))) -> Response:
    return Response(template_xlsx(), media_type=XLSX_MEDIA_TYPE,
                    headers={"Content-Disposition": 'attachment; filename="facturas.xlsx"'})


@router.get("/settings", response_model=InvoiceSettings, summary="Ajustes de facturas de la tienda")
def read_settings(_ctx: Context = Depends(require(READ)), db: Database = Depends(get_db)) -> InvoiceSettings:
    with db.read() as session:
        return _settings_out(session)


def _settings_out(session: Session) -> InvoiceSettings:
    return InvoiceSettings(deposito_can_confirm=deposito_can_confirm(session), tax_condition=tax_condition(session))


@router.patch("/settings", response_model=InvoiceSettings, summary="Cambiar ajustes de facturas (admin)")
def change_settings(data: InvoiceSettingsPatch, ctx: Context = Depends(require(ADMIN)),
                    db: Database = Depends(get_db)) -> InvoiceSettings:
    with db.write() as session:
        if data.deposito_can_confirm is not None:
            set_deposito_can_confirm(session, ctx, allowed=data.deposito_can_confirm)
        if data.tax_condition is not None:
            set_tax_condition(session, ctx, condition=data.tax_condition)
        return _settings_out(session)


@router.post("/import", status_code=201, response_model=ImportOut, openapi_extra=IMPORT_BODY,
             summary="Importar facturas de un CSV o XLSX (todo o nada): quedan en borrador")
async def import_invoices(request: Request, ctx: Context = Depends(require(CATALOG_WRITE)),
                          db: Database = Depends(get_db)) -> ImportOut:
    body = await request.body()  # the middleware already refused anything over MAX_BODY_BYTES (413)
    parsed = await run_in_threadpool(parse_invoices, body)

    def create_all() -> ImportOut:
        with db.write() as session:
            created = service.create_imported(session, ctx, parsed=parsed)
            return ImportOut(created=[service.invoice_out(session, invoice) for invoice in created])

    return await run_in_threadpool(create_all)


@router.post("/from-qr", response_model=QrOut, summary="Leer el QR de AFIP de una factura (prellena el encabezado)")
def from_qr(data: QrIn, _ctx: Context = Depends(require(READ)), db: Database = Depends(get_db)) -> QrOut:
    with db.read() as session:
        return service.read_afip_qr(session, data.url)


@router.post("", status_code=201, response_model=InvoiceOut,
             summary="Cargar una factura en borrador (409 factura_duplicada si ya está)")
def create_invoice(data: InvoiceIn, ctx: Context = Depends(require(CATALOG_WRITE)),
                   db: Database = Depends(get_db)) -> InvoiceOut:
    with db.write() as session:
        return service.invoice_out(session, service.create_invoice(session, ctx, data=data))


@router.get("", response_model=InvoicePage, summary="Listar facturas, de la más nueva a la más vieja")
def list_invoices(
    supplier: Annotated[str | None, Query(max_length=200, description="Id, CUIT o nombre")] = None,
    state: Annotated[State | None, Query()] = None,
    date_from: Annotated[date | None, Query(alias="from", description="Fecha de factura desde (AAAA-MM-DD)")] = None,
    date_to: Annotated[date | None, Query(alias="to", description="Fecha de factura hasta, inclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[int | None, Query(ge=0, le=2_147_483_647)] = None,
    _ctx: Context = Depends(require(READ)),
    db: Database = Depends(get_db),
) -> InvoicePage:
    with db.read() as session:
        return service.list_invoices(session, supplier=supplier, state=state, date_from=date_from, date_to=date_to,
                                     limit=limit, cursor=cursor)


@router.get("/{invoice_id}", response_model=InvoiceOut, summary="Una factura con sus líneas")
def get_invoice(invoice_id: InvoiceId, _ctx: Context = Depends(require(READ)),
                db: Database = Depends(get_db)) -> InvoiceOut:
    with db.read() as session:
        return service.invoice_out(session, service.find_invoice(session, invoice_id))


@router.patch("/{invoice_id}", response_model=InvoiceOut,
              summary="Corregir un borrador (fecha, CAE, notas) y asociar líneas a productos")
def update_invoice(invoice_id: InvoiceId, changes: InvoicePatch, ctx: Context = Depends(require(CATALOG_WRITE)),
                   db: Database = Depends(get_db)) -> InvoiceOut:
    with db.write() as session:
        return service.invoice_out(session, service.update_invoice(session, ctx, invoice_id=invoice_id,
                                                                   changes=changes))


def _check_may_confirm(session: Session, ctx: Context) -> None:
    if not receipt.may_confirm(session, role=ctx.role):
        raise Forbidden("El rol 'deposito' no puede confirmar facturas en esta tienda; un admin puede habilitarlo "
                        "con PATCH /api/invoices/settings {\"deposito_can_confirm\": true}")


@router.post("/{invoice_id}/confirm", response_model=ConfirmOut,
             summary="Confirmar: ingresa la mercadería y actualiza costos (una sola vez; Idempotency-Key)")
def confirm_invoice(invoice_id: InvoiceId, request: Request, data: Annotated[ConfirmIn | None, Body()] = None,
                    ctx: Context = Depends(require(STOCK_WRITE)),
                    settings: Settings = Depends(get_env_settings)) -> JSONResponse:
    def operation(session, key):  # noqa: ANN001, ANN202
        _check_may_confirm(session, ctx)
        return receipt.confirm_invoice(session, ctx, invoice_id=invoice_id, location=data.location if data else None,
                                       settings=settings, idempotency_key=key)

    return write_once(request, ctx, payload=data, operation=operation, status_code=200)


@router.post("/{invoice_id}/annul", response_model=InvoiceOut,
             summary="Anular: si estaba confirmada, la mercadería sale (rechazado si ya no está)")
def annul_invoice(invoice_id: InvoiceId, data: AnnulIn, ctx: Context = Depends(require(CATALOG_WRITE)),
                  db: Database = Depends(get_db), settings: Settings = Depends(get_env_settings)) -> InvoiceOut:
    with db.write() as session:
        return service.invoice_out(session, receipt.annul_invoice(session, ctx, invoice_id=invoice_id,
                                                                  reason=data.reason, settings=settings))
