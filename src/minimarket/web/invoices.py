"""Facturas: the list, an invoice with its lines, associating unmatched lines to products, confirming the receipt
(goods in, costs updated) and annulling; over invoices.service and invoices.receipt, like /api/invoices.
Entering one by hand and importing a file are in web/invoice_entry.py."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from minimarket.accounts.permissions import CATALOG_WRITE, READ, STOCK_WRITE
from minimarket.accounts.sessions import SessionUser
from minimarket.errors import DomainError, InvalidInput
from minimarket.invoices import receipt, service
from minimarket.invoices.schemas import AnnulIn, InvoicePatch
from minimarket.stock.locations import list_locations
from minimarket.suppliers.models import Supplier
from minimarket.web.auth import PageForbidden, form_user, page_context, page_user
from minimarket.web.forms import build, new_form_key, write_once
from minimarket.web.kept_pages import keep
from minimarket.web.templating import render

router = APIRouter(include_in_schema=False)
PER_PAGE = 30
STATES = {"borrador": "Borrador", "confirmada": "Confirmada", "anulada": "Anulada"}
InvoiceId = Annotated[int, Path(ge=1, le=2**31 - 1)]
NOTICES = {"creada": "Factura cargada en borrador.", "asociada": "Líneas asociadas.",
           "confirmada": "Factura confirmada: la mercadería entró al stock y los costos se actualizaron.",
           "anulada": "Factura anulada.",
           "costos": "Factura confirmada: su mercadería ya había entrado con el pedido; se actualizaron los costos."}


@router.get("/facturas", response_class=HTMLResponse)
def invoices_list(request: Request, user: SessionUser = Depends(page_user(READ)),
                  proveedor: Annotated[str, Query(max_length=200)] = "",
                  estado: Annotated[str, Query(max_length=12)] = "",
                  antes: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
                  importadas: Annotated[int | None, Query(ge=0, le=100_000)] = None) -> HTMLResponse:
    filters = {k: v for k, v in {"proveedor": proveedor.strip(), "estado": estado}.items() if v}
    error = None
    with request.app.state.db.read() as session:
        try:
            if estado and estado not in STATES:
                raise InvalidInput(f"Estado: '{estado[:20]}' no es un estado; usá borrador, confirmada o anulada")
            items, next_cursor = service.list_invoice_rows(session, supplier=proveedor.strip() or None,
                                                           state=estado or None, limit=PER_PAGE, cursor=antes)
        except DomainError as exc:
            items, next_cursor, error = [], None, exc.message.replace("supplier:", "Proveedor:")
        suppliers = session.execute(select(Supplier.id, Supplier.name).order_by(Supplier.name)).all()
    notice = f"{importadas} factura(s) importadas en borrador: revisá sus líneas y confirmalas." \
        if importadas is not None else None
    response = render(request, "invoices.html", user, status_code=422 if error else 200, items=items, filters=filters,
                      error=error, notice=notice, states=STATES, can_enter=user.role in CATALOG_WRITE,
                      filtered=bool(filters) or antes is not None, suppliers=suppliers,
                      next_link="/facturas?" + urlencode({**filters, "antes": next_cursor}) if next_cursor else None)
    return keep(request, response)  # web/kept_pages.py


def _detail(request: Request, user: SessionUser, invoice_id: int, *, status: int = 200, error: str | None = None,
            notice: str | None = None, kept: bool = False) -> HTMLResponse:
    with request.app.state.db.read() as session:
        try:
            invoice = service.invoice_out(session, service.find_invoice(session, invoice_id))
        except DomainError as exc:
            return render(request, "error.html", user, status_code=exc.status_code, heading="Factura no encontrada",
                          message=exc.message)
        may_confirm = user.role in STOCK_WRITE and receipt.may_confirm(session, role=user.role)
        locations = [(loc.code, loc.name) for loc in list_locations(session) if loc.active]
    default_location = request.app.state.settings.default_location
    key = new_form_key()
    response = render(request, "invoice.html", user, status_code=status, invoice=invoice, error=error, notice=notice,
                      states=STATES, can_edit=user.role in CATALOG_WRITE, may_confirm=may_confirm,
                      locations=locations, default_location=default_location, key=key)
    # As shown by GET, kept (web/kept_pages.py) with a new retry key for every view.
    return keep(request, response, form_key=key) if kept else response


@router.get("/facturas/{invoice_id}", response_class=HTMLResponse)
def invoice_page(request: Request, invoice_id: InvoiceId, user: SessionUser = Depends(page_user(READ)),
                 hecho: Annotated[str, Query(max_length=12)] = "") -> HTMLResponse:
    return _detail(request, user, invoice_id, notice=NOTICES.get(hecho), kept=True)


@router.post("/facturas/{invoice_id}/asociar", response_class=HTMLResponse)
async def match_lines(request: Request, invoice_id: InvoiceId,
                      user: SessionUser = Depends(form_user(CATALOG_WRITE))) -> Response:
    """Each unmatched line's `producto_N` (SKU or barcode) becomes a match; the supplier's code is remembered."""
    form = await request.form()
    matches = []
    for name, value in form.multi_items():
        if name.startswith("producto_") and str(value).strip():
            line = name.removeprefix("producto_")
            if not line.isdigit() or len(line) > 4:
                continue
            matches.append({"line": int(line), "product": str(value).strip()[:60]})
    try:
        if not matches:
            raise InvalidInput("Producto: escribí el SKU o el código de barras de al menos una línea")
        changes = build(InvoicePatch, {"matches": "Producto", "product": "Producto", "line": "Línea"}, matches=matches)
        with request.app.state.db.write() as session:
            service.update_invoice(session, page_context(request, user), invoice_id=invoice_id, changes=changes)
    except DomainError as exc:
        return _detail(request, user, invoice_id, status=exc.status_code, error=_line_labels(exc.message))
    return RedirectResponse(f"/facturas/{invoice_id}?hecho=asociada", status_code=303)


def _line_labels(message: str) -> str:
    """`matches[0].product: …` (the API's field) reads as the form's `Producto: …`."""
    field, sep, rest = message.partition(": ")
    return f"Producto: {rest}" if sep and field.startswith("matches[") else message


@router.post("/facturas/{invoice_id}/confirmar", response_class=HTMLResponse)
def confirm(request: Request, invoice_id: InvoiceId, user: SessionUser = Depends(form_user(STOCK_WRITE)),
            ubicacion: Annotated[str, Form(max_length=20)] = "",
            idempotency_key: Annotated[str, Form(max_length=200)] = "") -> Response:
    """Goods in and costs updated, once per form (a double tap confirms once), like POST /api/invoices/{id}/confirm."""
    ctx, settings = page_context(request, user), request.app.state.settings
    with request.app.state.db.read() as session:  # the store decides whether the depósito confirms (like the API)
        if not receipt.may_confirm(session, role=user.role):
            raise PageForbidden(user, "En esta tienda el depósito no confirma facturas; un administrador puede "
                                      "habilitarlo en Configuración.")

    def work(session) -> dict:  # noqa: ANN001
        done = receipt.confirm_invoice(session, ctx, invoice_id=invoice_id, location=ubicacion or None,
                                       settings=settings)
        return {"operation_id": done.operation_id}

    try:
        done = write_once(request, ctx, form_key=idempotency_key, route=f"/facturas/{invoice_id}/confirmar",
                          payload=ubicacion, work=work)
    except DomainError as exc:
        return _detail(request, user, invoice_id, status=exc.status_code, error=_line_labels(exc.message))
    notice = "confirmada" if done.get("operation_id") else "costos"  # costs only: an order brought the goods in
    return RedirectResponse(f"/facturas/{invoice_id}?hecho={notice}", status_code=303)


@router.post("/facturas/{invoice_id}/anular", response_class=HTMLResponse)
def annul(request: Request, invoice_id: InvoiceId, user: SessionUser = Depends(form_user(CATALOG_WRITE)),
          motivo: Annotated[str, Form(max_length=500)] = "") -> Response:
    """→ anulada; a confirmed invoice's goods go back out (refused if they are gone), like POST …/annul."""
    try:
        data = build(AnnulIn, {"reason": "Motivo"}, reason=motivo)
        with request.app.state.db.write() as session:
            receipt.annul_invoice(session, page_context(request, user), invoice_id=invoice_id, reason=data.reason,
                                  settings=request.app.state.settings)
    except DomainError as exc:
        return _detail(request, user, invoice_id, status=exc.status_code, error=exc.message)
    return RedirectResponse(f"/facturas/{invoice_id}?hecho=anulada", status_code=303)
