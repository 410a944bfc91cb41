"""Proveedores: the list (search by name, code or CUIT; those 'a completar'), a supplier's file with its products,
and the form that creates or edits one, over suppliers.service (the same rules as /api/suppliers)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from minimarket.accounts.permissions import CATALOG_WRITE, READ
from minimarket.accounts.sessions import SessionUser
from minimarket.errors import DomainError, InvalidInput
from minimarket.stock.inventory import inventory_page
from minimarket.suppliers import service
from minimarket.suppliers.rules import WEEKDAYS
from minimarket.suppliers.schemas import SupplierCreate, SupplierUpdate
from minimarket.web.auth import form_user, page_context, page_user
from minimarket.web.forms import build, parse_decimal
from minimarket.web.kept_pages import keep
from minimarket.web.templating import render

router = APIRouter(include_in_schema=False)
PER_PAGE = 50
PRODUCTS_SHOWN = 50
SupplierId = Annotated[int, Path(ge=1, le=2**31 - 1)]
LABELS = {"name": "Nombre", "code": "Código", "cuit": "CUIT", "phone": "Teléfono", "email": "E-mail",
          "address": "Dirección", "order_days": "Días de pedido", "lead_time_days": "Plazo de entrega",
          "min_order": "Pedido mínimo", "notes": "Notas", "active": "Activo"}
FIELDS = ("nombre", "codigo", "cuit", "telefono", "email", "direccion", "plazo", "pedido_minimo", "notas")


@router.get("/proveedores", response_class=HTMLResponse)
def suppliers_list(request: Request, user: SessionUser = Depends(page_user(READ)),
                   q: Annotated[str, Query(max_length=200)] = "", estado: Annotated[str, Query(max_length=12)] = "",
                   desde: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None) -> HTMLResponse:
    """Active suppliers by id; `estado=completar` lists those without a CUIT, `estado=inactivos` the others."""
    active, incomplete = {"completar": (True, True), "inactivos": (False, None)}.get(estado, (True, None))
    with request.app.state.db.read() as session:
        found = service.list_suppliers(session, q=q.strip() or None, active=active, incomplete=incomplete,
                                       limit=PER_PAGE, cursor=desde)
    filters = {k: v for k, v in {"q": q.strip(), "estado": estado}.items() if v}
    response = render(request, "suppliers.html", user, items=found.items, q=q.strip(), estado=estado,
                      next_link=f"/proveedores?{urlencode({**filters, 'desde': found.next_cursor})}"
                      if found.next_cursor else None, filtered=bool(filters) or desde is not None,
                      can_edit=user.role in CATALOG_WRITE)
    return keep(request, response)  # web/kept_pages.py


def _values_of(supplier) -> dict:  # noqa: ANN001
    return {"nombre": supplier.name, "codigo": supplier.code or "", "cuit": supplier.cuit or "",
            "telefono": supplier.phone or "", "email": supplier.email or "", "direccion": supplier.address or "",
            "plazo": "" if supplier.lead_time_days is None else str(supplier.lead_time_days),
            "pedido_minimo": "" if supplier.min_order is None else str(supplier.min_order).replace(".", ","),
            "notas": supplier.notes or "", "dias": list(supplier.order_days), "activo": supplier.active}


def _form(request: Request, user: SessionUser, *, supplier_id: int | None, values: dict, status: int = 200,
          error: str | None = None) -> HTMLResponse:
    return render(request, "supplier_form.html", user, status_code=status, supplier_id=supplier_id, values=values,
                  error=error, weekdays=WEEKDAYS)


def _fields(values: dict) -> dict:
    """The schema's fields from the form's text (empty means not set; numbers in es-AR)."""
    plazo = values["plazo"].strip()
    if plazo and not (plazo.isascii() and plazo.isdigit()):
        raise InvalidInput(f"Plazo de entrega: '{plazo[:20]}' no es un número entero de días (ej. 2)")
    return {"name": values["nombre"], "code": values["codigo"] or None, "cuit": values["cuit"] or None,
            "phone": values["telefono"] or None, "email": values["email"] or None,
            "address": values["direccion"] or None, "order_days": values["dias"],
            "lead_time_days": int(plazo) if plazo else None,
            "min_order": parse_decimal(values["pedido_minimo"], "Pedido mínimo", example="50000 o 50.000,00",
                                       required=False),
            "notes": values["notas"] or None}


async def _read_form(request: Request) -> dict:
    form = await request.form()
    values = {name: str(form.get(name, ""))[:2000] for name in FIELDS}
    values["dias"] = [str(d)[:20] for d in form.getlist("dias")][:7]
    values["activo"] = form.get("activo") == "si"
    return values


@router.get("/proveedores/nuevo", response_class=HTMLResponse)
def new_supplier_form(request: Request, user: SessionUser = Depends(page_user(CATALOG_WRITE))) -> HTMLResponse:
    return _form(request, user, supplier_id=None, values={**{f: "" for f in FIELDS}, "dias": [], "activo": True})


@router.post("/proveedores/nuevo", response_class=HTMLResponse)
async def create_supplier(request: Request, user: SessionUser = Depends(form_user(CATALOG_WRITE))) -> Response:
    values = await _read_form(request)
    try:
        data = build(SupplierCreate, LABELS, **_fields(values))
        with request.app.state.db.write() as session:
            supplier_id = service.create_supplier(session, page_context(request, user), data=data).id
    except DomainError as exc:
        return _form(request, user, supplier_id=None, values=values, status=exc.status_code, error=exc.message)
    return RedirectResponse(f"/proveedores/{supplier_id}?guardado=1", status_code=303)


@router.get("/proveedores/{supplier_id}", response_class=HTMLResponse)
def supplier_page(request: Request, supplier_id: SupplierId, user: SessionUser = Depends(page_user(READ)),
                  guardado: Annotated[str, Query(max_length=1)] = "") -> HTMLResponse:
    with request.app.state.db.read() as session:
        try:
            supplier = service.supplier_out(session, service.find_supplier(session, supplier_id))
        except DomainError as exc:
            return render(request, "error.html", user, status_code=exc.status_code, heading="Proveedor no encontrado",
                          message=exc.message)
        products, more = inventory_page(session, supplier=supplier.name, per_page=PRODUCTS_SHOWN)
    response = render(request, "supplier.html", user, supplier=supplier, products=products, more=more,
                      notice="Proveedor guardado." if guardado else None, can_edit=user.role in CATALOG_WRITE,
                      products_link="/inventario?" + urlencode({"proveedor": supplier.name}))
    return keep(request, response)  # web/kept_pages.py: its products' stock, so until the next movement too


@router.get("/proveedores/{supplier_id}/editar", response_class=HTMLResponse)
def edit_supplier_form(request: Request, supplier_id: SupplierId,
                       user: SessionUser = Depends(page_user(CATALOG_WRITE))) -> HTMLResponse:
    with request.app.state.db.read() as session:
        try:
            supplier = service.supplier_out(session, service.find_supplier(session, supplier_id))
        except DomainError as exc:
            return render(request, "error.html", user, status_code=exc.status_code, heading="Proveedor no encontrado",
                          message=exc.message)
    return _form(request, user, supplier_id=supplier_id, values=_values_of(supplier))


@router.post("/proveedores/{supplier_id}/editar", response_class=HTMLResponse)
async def update_supplier(request: Request, supplier_id: SupplierId,
                          user: SessionUser = Depends(form_user(CATALOG_WRITE))) -> Response:
    """Every field of the form is sent: an emptied one is cleared (as null in PATCH /api/suppliers/{id})."""
    values = await _read_form(request)
    try:
        changes = build(SupplierUpdate, LABELS, **_fields(values), active=values["activo"])
        with request.app.state.db.write() as session:
            service.update_supplier(session, page_context(request, user), supplier_id=supplier_id, changes=changes)
    except DomainError as exc:
        return _form(request, user, supplier_id=supplier_id, values=values, status=exc.status_code,
                     error=exc.message)
    return RedirectResponse(f"/proveedores/{supplier_id}?guardado=1", status_code=303)
