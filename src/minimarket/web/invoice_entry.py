"""Facturas: enter a supplier invoice by hand, or import a CSV/XLSX file (the same importer as POST
/api/invoices/import). Both leave drafts (borrador) to review on the invoice's page."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from minimarket.accounts.permissions import CATALOG_WRITE
from minimarket.accounts.sessions import SessionUser
from minimarket.ar.cuit import format_cuit
from minimarket.ar.invoices import LineAmount, breakdown_from_lines, parse_invoice_number, rate_label
from minimarket.ar.money import format_number
from minimarket.errors import DomainError, InvalidInput
from minimarket.invoices import service
from minimarket.invoices.importer import parse_invoices
from minimarket.invoices.schemas import InvoiceIn, LineIn
from minimarket.suppliers.models import Supplier
from minimarket.web.auth import form_user, page_context, page_user
from minimarket.web.forms import build, parse_decimal
from minimarket.web.kept_pages import keep
from minimarket.web.templating import render

router = APIRouter(include_in_schema=False)
LINES = 8  # rows of the hand-entry form (empty rows are skipped)
HEADER = ("proveedor", "tipo", "numero", "fecha", "cae", "total", "perc_iibb", "perc_iva", "notas")
LINE = ("codigo", "descripcion", "cantidad", "costo", "iva", "descuento")
LABELS = {"supplier": "Proveedor", "type": "Tipo", "point_of_sale": "Número", "number": "Número", "date": "Fecha",
          "cae": "CAE", "total": "Total", "perception_iibb": "Percepción IIBB", "perception_vat": "Percepción IVA",
          "notes": "Notas", "net": "Total", "vat": "Total", "quantity": "Cantidad", "unit_cost": "Costo unitario",
          "vat_rate": "IVA", "discount_pct": "Descuento", "barcode": "Código", "sku": "Código",
          "supplier_code": "Código", "description": "Descripción"}
_BARCODE = re.compile(r"[0-9]{8,14}")
_SKU = re.compile(r"[A-Za-z0-9._-]{1,40}")
_DMY = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})")


def _form(request: Request, user: SessionUser, *, values: dict | None = None, status: int = 200,
          error: str | None = None, import_error: str | None = None, existing: int | None = None) -> HTMLResponse:
    with request.app.state.db.read() as session:
        suppliers = session.execute(select(Supplier.id, Supplier.name).where(Supplier.active.is_(True))
                                    .order_by(Supplier.name)).all()
    empty = {**{f: "" for f in HEADER}, "tipo": "A",
             "lineas": [{**{f: "" for f in LINE}, "iva": "21"} for _ in range(LINES)]}
    return render(request, "invoice_form.html", user, status_code=status, values=values or empty, error=error,
                  import_error=import_error, suppliers=suppliers, rates=("21", "10.5", "0", "27"), existing=existing)


def _date(raw: str) -> date:
    text = raw.strip()
    try:
        if match := _DMY.fullmatch(text):
            return date(int(match[3]), int(match[2]), int(match[1]))
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"Fecha: '{text[:20]}' no es una fecha; usá dd/mm/aaaa") from None


def _line(n: int, row: dict[str, str]) -> LineIn:
    code = row["codigo"].strip()
    fields: dict[str, Any] = {"description": row["descripcion"] or None}
    if _BARCODE.fullmatch(code):
        fields["barcode"] = code
    elif code:  # our SKU or the supplier's own code: the draft tries both
        fields["supplier_code"] = code[:60]
        fields["sku"] = code if _SKU.fullmatch(code) else None
    try:
        fields |= {"quantity": parse_decimal(row["cantidad"], "Cantidad", example="12 o 1,5"),
                   "unit_cost": parse_decimal(row["costo"], "Costo unitario", example="1033,33"),
                   "vat_rate": parse_decimal(row["iva"] or "21", "IVA", example="21"),
                   "discount_pct": parse_decimal(row["descuento"], "Descuento", example="10", required=False)
                   or Decimal("0")}
        return build(LineIn, LABELS, **fields)
    except InvalidInput as exc:
        raise InvalidInput(f"Línea {n}: {exc.message}") from None


def invoice_from_form(values: dict) -> InvoiceIn:
    """The API's InvoiceIn: net and IVA per rate computed from the lines, as the importer does for a file
    without those columns; the service then checks the total to the cent."""
    if not values["proveedor"]:
        raise InvalidInput("Proveedor: elegí de quién es la factura")
    try:
        point_of_sale, number = parse_invoice_number(values["numero"])
    except ValueError as exc:
        raise InvalidInput(f"Número: {exc}") from None
    lines = [_line(n, row) for n, row in enumerate(values["lineas"], 1) if any(v.strip() for k, v in row.items()
                                                                                 if k != "iva")]
    kind = values["tipo"].upper()
    nets, vats = breakdown_from_lines(kind, [LineAmount(line.quantity, line.unit_cost, line.vat_rate,
                                                        line.discount_pct) for line in lines])
    return build(InvoiceIn, LABELS, supplier=values["proveedor"], type=kind, point_of_sale=point_of_sale,
                 number=number, date=_date(values["fecha"]), cae=values["cae"] or None,
                 total=parse_decimal(values["total"], "Total", example="17.540,22"),
                 perception_iibb=parse_decimal(values["perc_iibb"], "Percepción IIBB", required=False) or Decimal(0),
                 perception_vat=parse_decimal(values["perc_iva"], "Percepción IVA", required=False) or Decimal(0),
                 notes=values["notas"] or None, lines=lines,
                 net={rate_label(r): v for r, v in nets.items()}, vat={rate_label(r): v for r, v in vats.items()})


def _from_qr(request: Request, qr: str) -> tuple[dict, str | None, int | None]:
    """The hand-entry form prefilled from an AFIP QR (what a phone reads off the invoice): values, a problem, and
    the id of the invoice if it is already loaded."""
    with request.app.state.db.read() as session:
        read = service.read_afip_qr(session, qr)
    values = {**{f: "" for f in HEADER}, "tipo": read.type, "numero": read.number_display,
              "fecha": read.date.strftime("%d/%m/%Y"), "cae": read.cae, "total": format_number(read.total, 2),
              "proveedor": str(read.supplier.id) if read.supplier else "",
              "lineas": [{**{f: "" for f in LINE}, "iva": "21"} for _ in range(LINES)]}
    problem = None if read.supplier else (f"Proveedor: el CUIT {format_cuit(read.issuer_cuit)} del QR no es de ningún "
                                          "proveedor; cargalo en Proveedores y volvé a leer el QR")
    return values, problem, read.existing_id


@router.get("/facturas/nueva", response_class=HTMLResponse)
def new_invoice_form(request: Request, user: SessionUser = Depends(page_user(CATALOG_WRITE)),
                     qr: Annotated[str, Query(max_length=2000)] = "") -> HTMLResponse:
    """The import and hand-entry forms; `qr` (an AFIP invoice QR) fills the header in."""
    if not qr.strip():
        return keep(request, _form(request, user))  # web/kept_pages.py
    try:
        values, problem, existing = _from_qr(request, qr.strip())
    except DomainError as exc:
        return _form(request, user, status=exc.status_code, error=f"QR: {exc.message}")
    return keep(request, _form(request, user, values=values, error=problem, existing=existing,
                               status=422 if problem else 200))


@router.post("/facturas/nueva", response_class=HTMLResponse)
async def create_invoice(request: Request, user: SessionUser = Depends(form_user(CATALOG_WRITE))) -> Response:
    """A draft through invoices.service.create_invoice (a duplicate number is refused there: 409)."""
    form = await request.form()
    values: dict[str, Any] = {f: str(form.get(f, ""))[:2000] for f in HEADER}
    values["lineas"] = [{f: str(form.get(f"l{i}_{f}", ""))[:200] for f in LINE} for i in range(1, LINES + 1)]
    try:
        data = invoice_from_form(values)
        with request.app.state.db.write() as session:
            invoice_id = service.create_invoice(session, page_context(request, user), data=data).id
    except DomainError as exc:
        return _form(request, user, values=values, status=exc.status_code, error=exc.message)
    return RedirectResponse(f"/facturas/{invoice_id}?hecho=creada", status_code=303)


@router.post("/facturas/importar", response_class=HTMLResponse)
async def import_file(request: Request, user: SessionUser = Depends(form_user(CATALOG_WRITE))) -> Response:
    """Every invoice of the file as a draft, or none (an error names its row and column)."""
    form = await request.form()
    upload = form.get("archivo")
    try:
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise InvalidInput("Archivo: elegí un CSV o XLSX (bajá la plantilla si no tenés uno)")
        body = await upload.read()
        parsed = await run_in_threadpool(parse_invoices, body)
        ctx = page_context(request, user)

        def create_all() -> int:
            with request.app.state.db.write() as session:
                return len(service.create_imported(session, ctx, parsed=parsed))

        created = await run_in_threadpool(create_all)
    except DomainError as exc:
        return _form(request, user, status=exc.status_code, import_error=exc.message)
    return RedirectResponse(f"/facturas?importadas={created}", status_code=303)
