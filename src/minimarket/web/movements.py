"""Movimientos: the depósito's form (one movement, retry-safe) and the ledger with filters."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from minimarket.accounts.permissions import READ, STOCK_WRITE
from minimarket.accounts.sessions import SessionUser
from minimarket.errors import DomainError, InvalidInput
from minimarket.platform.errors import spanish_message
from minimarket.platform.idempotency import check_client_key, fingerprint, run_once
from minimarket.stock import service
from minimarket.stock.locations import list_locations
from minimarket.stock.schemas import BatchLine, LedgerType, MovementOut
from minimarket.web.auth import form_user, page_context, page_user
from minimarket.web.forms import parse_decimal
from minimarket.web.kept_pages import keep
from minimarket.web.templating import no_products, render

router = APIRouter(include_in_schema=False)
FORM_TYPES = ("entrada", "salida", "merma", "devolucion", "ajuste", "venta")
FIELD_NAMES = {"sku": "Producto", "quantity": "Cantidad", "type": "Tipo", "reason": "Motivo", "location": "Ubicación"}


def parse_quantity(raw: str) -> Decimal:
    """The form's Cantidad: an es-AR number by the rule every form shares (`1.000` a thousand, `1,5` one and a
    half), or InvalidInput naming the field."""
    return parse_decimal(raw, "Cantidad", example="12 o 1,5")


def field_labels(message: str) -> str:
    """A service message names the API field (`quantity: …`); the form names its label (`Cantidad: …`)."""
    field, sep, rest = message.partition(": ")
    return f"{FIELD_NAMES[field]}: {rest}" if sep and field in FIELD_NAMES else message


def ledger_type(raw: str) -> str | None:
    """The `tipo` filter: empty for all, else one of the ledger's types."""
    if raw and raw not in LedgerType.__args__:
        raise InvalidInput(f"Tipo: '{raw}' no es un tipo de movimiento; usá uno de: {', '.join(LedgerType.__args__)}")
    return raw or None


def _line(producto: str, cantidad: str, tipo: str, ubicacion: str, motivo: str) -> BatchLine:
    if not producto.strip():
        raise InvalidInput("Producto: escaneá el código o escribí el SKU")
    try:
        return BatchLine(sku=producto, quantity=parse_quantity(cantidad), type=tipo, location=ubicacion or None,
                         reason=motivo or None)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = FIELD_NAMES.get(str(first["loc"][0]), str(first["loc"][0]))
        raise InvalidInput(f"{field}: {spanish_message(first)}") from None


def _form(request: Request, user: SessionUser, *, status: int = 200, error: str | None = None,
          done: MovementOut | None = None, values: dict[str, str] | None = None, kept: bool = False) -> HTMLResponse:
    with request.app.state.db.read() as session:
        locations = [(loc.code, loc.name) for loc in list_locations(session) if loc.active]
        empty = no_products(session)
    settings = request.app.state.settings
    key = uuid.uuid4().hex
    response = render(request, "movement_form.html", user, status_code=status, error=error, done=done,
                      values=values or {}, types=FORM_TYPES, locations=locations,
                      default_location=settings.default_location, key=key, empty=empty)
    # The empty form (GET) is kept (web/kept_pages.py) with a new retry key for every view.
    return keep(request, response, form_key=key) if kept else response


@router.get("/movimientos/nuevo", response_class=HTMLResponse)
def movement_form(request: Request, producto: Annotated[str, Query(max_length=60)] = "",
                  user: SessionUser = Depends(page_user(STOCK_WRITE))) -> HTMLResponse:
    return _form(request, user, values={"producto": producto, "tipo": "entrada"}, kept=True)


@router.post("/movimientos/nuevo", response_class=HTMLResponse)
def record_movement(
    request: Request,
    user: SessionUser = Depends(form_user(STOCK_WRITE)),
    producto: Annotated[str, Form(max_length=60)] = "",
    cantidad: Annotated[str, Form(max_length=30)] = "",
    tipo: Annotated[str, Form(max_length=20)] = "entrada",
    ubicacion: Annotated[str, Form(max_length=20)] = "",
    motivo: Annotated[str, Form(max_length=500)] = "",
    idempotency_key: Annotated[str, Form(max_length=200)] = "",
) -> HTMLResponse:
    """One movement through the same service as POST /api/inventory/{sku}/movements; the form's key makes a
    double tap or a resent form record once."""
    values = {"producto": producto, "cantidad": cantidad, "tipo": tipo, "ubicacion": ubicacion, "motivo": motivo}
    ctx = page_context(request, user)
    settings = request.app.state.settings
    try:
        line = _line(producto, cantidad, tipo, ubicacion, motivo)
        client_key = check_client_key(idempotency_key or None)

        def operation(session):  # noqa: ANN001, ANN202
            result = service.register_movement(session, ctx, line=line, settings=settings,
                                               idempotency_key=client_key)
            return 201, result.model_dump(mode="json")

        outcome = run_once(request.app.state.db,
                           key="k:" + fingerprint(ctx.principal_id, client_key) if client_key else None,
                           request_hash=fingerprint("POST", "/movimientos/nuevo", line.model_dump(mode="json")),
                           operation=operation, label="El formulario")
    except DomainError as exc:
        return _form(request, user, status=exc.status_code, error=field_labels(exc.message), values=values)
    done = MovementOut.model_validate(outcome.body)
    return _form(request, user, status=201, done=done, values={"tipo": tipo, "ubicacion": ubicacion})


@router.get("/movimientos", response_class=HTMLResponse)
def ledger(
    request: Request,
    user: SessionUser = Depends(page_user(READ)),
    producto: Annotated[str, Query(max_length=40)] = "",
    tipo: Annotated[str, Query(max_length=20)] = "",
    desde: Annotated[str, Query(max_length=10)] = "",
    hasta: Annotated[str, Query(max_length=10)] = "",
    ubicacion: Annotated[str, Query(max_length=20)] = "",
    antes: Annotated[str, Query(max_length=20)] = "",
) -> HTMLResponse:
    filters = {k: v for k, v in {"producto": producto, "tipo": tipo, "desde": desde, "hasta": hasta,
                                 "ubicacion": ubicacion}.items() if v}
    error = None
    with request.app.state.db.read() as session:
        locations = [(loc.code, loc.name) for loc in list_locations(session)]
        try:
            page = service.list_movements(session, sku=producto or None, movement_type=ledger_type(tipo), date_from=desde or None,
                                          date_to=hasta or None, location=ubicacion or None, cursor=antes or None,
                                          limit=50)
            items, next_cursor = page.items, page.next_cursor
        except DomainError as exc:
            items, next_cursor, error = [], None, exc.message
    response = render(request, "movements.html", user, items=items, error=error, filters=filters,
                      next_link="/movimientos?" + urlencode({**filters, "antes": next_cursor}) if next_cursor else None,
                      export_query=urlencode(filters), locations=locations, types=LedgerType.__args__,
                      can_write=user.role in STOCK_WRITE)
    return response if error else keep(request, response)  # web/kept_pages.py: until the next movement
