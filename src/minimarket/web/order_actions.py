"""Pedidos, the actions on one order: edit the draft's quantities, send, receive what arrived, cancel.
Each calls the same service as /api/purchase-orders and comes back to the order's page."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from minimarket.accounts.permissions import CATALOG_WRITE, STOCK_WRITE
from minimarket.accounts.sessions import SessionUser
from minimarket.errors import DomainError, InvalidInput
from minimarket.platform.errors import spanish_message
from minimarket.purchasing import orders, receiving
from minimarket.purchasing.order_schemas import OrderPatch, ReceiveIn
from minimarket.web.auth import form_user, page_context
from minimarket.web.forms import parse_decimal, write_once
from minimarket.web.orders import OrderId, line_labels, order_page

router = APIRouter(include_in_schema=False)
Skus = Annotated[list[str] | None, Form()]
Quantities = Annotated[list[str] | None, Form()]


def _pairs(skus: list[str] | None, quantities: list[str] | None) -> list[tuple[int, str, Decimal]]:
    """(line number, SKU, quantity) from the form's parallel lists; `Línea N` names a bad number."""
    skus, quantities = skus or [], quantities or []
    if len(skus) != len(quantities) or len(skus) > 500:
        raise InvalidInput("El formulario llegó incompleto; recargá la página y reintentá")
    pairs = []
    for i, (sku, raw) in enumerate(zip(skus, quantities, strict=True)):
        pairs.append((i + 1, sku, parse_decimal(raw or "0", f"Línea {i + 1} ({sku})", example="12 o 2,5")))
    return pairs


def _invalid(exc: ValidationError, numbers: list[int] | None = None) -> InvalidInput:
    first = exc.errors()[0]
    loc = [str(p) for p in first["loc"]]
    where = f"lines[{loc[1]}]" if len(loc) > 1 and loc[0] == "lines" else ".".join(loc)
    return InvalidInput(line_labels(f"{where}: {spanish_message(first)}", numbers))


def _back(order_id: int, done: str) -> RedirectResponse:
    return RedirectResponse(f"/pedidos/{order_id}?hecho={done}", status_code=303)


@router.post("/pedidos/{order_id}/editar")
def edit_order(request: Request, order_id: OrderId, user: SessionUser = Depends(form_user(CATALOG_WRITE)),
               sku: Skus = None, cantidad: Quantities = None, bulto: Quantities = None,
               notas: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """The draft's quantities (0 takes a line out) and notes."""
    ctx = page_context(request, user)
    numbers: list[int] = []
    try:
        packs = bulto or [""] * len(sku or [])
        kept = [(n, s, q, p) for (n, s, q), p in zip(_pairs(sku, cantidad), packs, strict=False) if q != 0]
        numbers = [n for n, _, _, _ in kept]
        if not kept:
            raise InvalidInput("Dejá al menos una línea con cantidad; para no pedir nada, cancelá el pedido")
        changes = OrderPatch.model_validate({"notes": notas or None, "lines": [
            {"sku": s, "quantity": q, "pack_size": int(p) if p.isdigit() and 0 < int(p) <= 100_000 else 1}
            for _, s, q, p in kept]})
        with request.app.state.db.write() as session:
            orders.update_order(session, ctx, order_id=order_id, changes=changes)
    except ValidationError as exc:
        return order_page(request, user, order_id, error=_invalid(exc, numbers).message, status=422)
    except DomainError as exc:
        return order_page(request, user, order_id, error=line_labels(exc.message, numbers), status=exc.status_code)
    return _back(order_id, "editado")


@router.post("/pedidos/{order_id}/enviar")
def send_order(request: Request, order_id: OrderId, user: SessionUser = Depends(form_user(CATALOG_WRITE))) -> Response:
    try:
        with request.app.state.db.write() as session:
            orders.send_order(session, page_context(request, user), order_id=order_id)
    except DomainError as exc:
        return order_page(request, user, order_id, error=exc.message, status=exc.status_code)
    return _back(order_id, "enviado")


@router.post("/pedidos/{order_id}/cancelar")
def cancel_order(request: Request, order_id: OrderId, user: SessionUser = Depends(form_user(CATALOG_WRITE)),
                 motivo: Annotated[str, Form(max_length=500)] = "") -> Response:
    try:
        if not motivo.strip():
            raise InvalidInput("Motivo: contá por qué se cancela (queda en el pedido)")
        with request.app.state.db.write() as session:
            orders.cancel_order(session, page_context(request, user), order_id=order_id, reason=motivo.strip())
    except DomainError as exc:
        return order_page(request, user, order_id, error=exc.message, status=exc.status_code)
    return _back(order_id, "cancelado")


@router.post("/pedidos/{order_id}/recibir")
def receive_order(request: Request, order_id: OrderId, user: SessionUser = Depends(form_user(STOCK_WRITE)),
                  sku: Skus = None, recibido: Quantities = None,
                  ubicacion: Annotated[str, Form(max_length=20)] = "",
                  cerrar: Annotated[str, Form(max_length=5)] = "",
                  idempotency_key: Annotated[str, Form(max_length=200)] = "") -> Response:
    """What arrived, through the same service as POST …/receive; the form's key makes a resent form count once."""
    ctx = replace(page_context(request, user), role=user.role)  # a depósito user cannot change costs
    settings = request.app.state.settings
    numbers: list[int] = []
    try:
        arrived = [(n, s, q) for n, s, q in _pairs(sku, recibido) if q != 0]
        numbers = [n for n, _, _ in arrived]
        if not arrived:
            raise InvalidInput("Recibido: indicá qué llegó; si no va a llegar nada, cancelá el pedido con su motivo")
        data = ReceiveIn.model_validate({"lines": [{"sku": s, "quantity": q} for _, s, q in arrived],
                                         "location": ubicacion or None, "close": bool(cerrar)})
        write_once(request, ctx, form_key=idempotency_key, route=f"/pedidos/{order_id}/recibir",
                   payload=data.model_dump(mode="json"), work=lambda session: receiving.receive_order(
                       session, ctx, order_id=order_id, data=data, settings=settings,
                       idempotency_key=idempotency_key or None).model_dump(mode="json"))
    except ValidationError as exc:
        return order_page(request, user, order_id, error=_invalid(exc, numbers).message, status=422)
    except DomainError as exc:
        return order_page(request, user, order_id, error=line_labels(exc.message, numbers), status=exc.status_code)
    return _back(order_id, "recibido")
