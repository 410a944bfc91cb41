"""Routes for /api/purchase-orders: list, create (by hand or from suggestions), read, edit, send,
receive (Idempotency-Key), cancel, and the documents for the supplier (PDF, WhatsApp text)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from minimarket.accounts.audit import Context
from minimarket.accounts.permissions import CATALOG_WRITE, READ, STOCK_WRITE
from minimarket.api.deps import get_db, get_env_settings, require
from minimarket.api.writes import write_once
from minimarket.config import Settings
from minimarket.db import Database
from minimarket.platform.json_numbers import PlainNumbersRoute
from minimarket.purchasing import order_documents as documents
from minimarket.purchasing import orders, receiving
from minimarket.purchasing.order_schemas import (
    CancelIn,
    OrderIn,
    OrderOut,
    OrderPage,
    OrderPatch,
    OrderState,
    ReceiveIn,
    ReceiveOut,
    SendIn,
)
from minimarket.suppliers.models import Supplier
from minimarket.types import utcnow

# JSON numbers keep their text: quantities and costs written as 1e3 are refused, not rounded.
router = APIRouter(prefix="/api/purchase-orders", route_class=PlainNumbersRoute, tags=["compras"])
OrderId = Annotated[int, Path(ge=1, le=2_147_483_647, description="Número del pedido")]
RETRY_NOTE = "Enviá `Idempotency-Key` para reintentar sin duplicar."


@router.get("", response_model=OrderPage, summary="Pedidos a proveedores, del más nuevo al más viejo")
def list_orders(
    supplier: Annotated[str | None, Query(max_length=200, description="Id, CUIT o nombre del proveedor")] = None,
    state: Annotated[OrderState | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[int | None, Query(ge=0, le=2_147_483_647)] = None,
    _ctx: Context = Depends(require(READ)),
    db: Database = Depends(get_db),
) -> OrderPage:
    with db.read() as session:
        return orders.list_orders(session, supplier=supplier, state=state, limit=limit, cursor=cursor)


@router.post("", status_code=201, response_model=OrderOut, description=RETRY_NOTE,
             summary="Armar un pedido en borrador: a mano (lines) o desde las sugerencias (from_suggestions)")
def create_order(data: OrderIn, request: Request, ctx: Context = Depends(require(CATALOG_WRITE))) -> JSONResponse:
    return write_once(request, ctx, payload=data, operation=lambda session, _key: orders.order_out(
        session, orders.create_order(session, ctx, data=data)))


@router.get("/{order_id}.pdf", response_class=Response, summary="El pedido en PDF, para mandar al proveedor")
def order_pdf(order_id: OrderId, _ctx: Context = Depends(require(READ)), db: Database = Depends(get_db)) -> Response:
    with db.read() as session:
        out = orders.order_out(session, orders.find_order(session, order_id))
        body = documents.order_pdf(out, documents.supplier_codes(session, out), session.get(Supplier, out.supplier_id),
                                   generated=utcnow())
    return Response(body, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="pedido-{order_id}.pdf"'})


@router.get("/{order_id}/whatsapp.txt", response_class=Response,
            summary="El pedido como texto para pegar en WhatsApp")
def order_whatsapp(order_id: OrderId, _ctx: Context = Depends(require(READ)),
                   db: Database = Depends(get_db)) -> Response:
    with db.read() as session:
        out = orders.order_out(session, orders.find_order(session, order_id))
        text = documents.whatsapp_text(out, documents.supplier_codes(session, out))
    return Response(text.encode("utf-8"), media_type="text/plain; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="pedido-{order_id}-whatsapp.txt"'})


@router.get("/{order_id}", response_model=OrderOut, summary="Un pedido: líneas, lo recibido y lo que falta")
def get_order(order_id: OrderId, _ctx: Context = Depends(require(READ)), db: Database = Depends(get_db)) -> OrderOut:
    with db.read() as session:
        return orders.order_out(session, orders.find_order(session, order_id))


@router.patch("/{order_id}", response_model=OrderOut,
              summary="Editar un borrador (líneas, notas) o vincular la factura del proveedor")
def update_order(order_id: OrderId, changes: OrderPatch, ctx: Context = Depends(require(CATALOG_WRITE)),
                 db: Database = Depends(get_db)) -> OrderOut:
    with db.write() as session:
        return orders.order_out(session, orders.update_order(session, ctx, order_id=order_id, changes=changes))


@router.post("/{order_id}/send", response_model=OrderOut,
             summary="Marcar el borrador como enviado (el PDF y el texto de WhatsApp quedan para descargar)")
def send_order(order_id: OrderId, data: Annotated[SendIn | None, Body()] = None,
               ctx: Context = Depends(require(CATALOG_WRITE)), db: Database = Depends(get_db)) -> OrderOut:
    with db.write() as session:
        return orders.order_out(session, orders.send_order(session, ctx, order_id=order_id,
                                                           notes=data.notes if data else None))


@router.post("/{order_id}/receive", response_model=ReceiveOut, description=RETRY_NOTE,
             summary="Recibir mercadería (toda o parte): ingresa al stock y actualiza costos, una sola vez")
def receive_order(order_id: OrderId, request: Request, data: Annotated[ReceiveIn | None, Body()] = None,
                  ctx: Context = Depends(require(STOCK_WRITE)),
                  settings: Settings = Depends(get_env_settings)) -> JSONResponse:
    body = data or ReceiveIn()
    return write_once(request, ctx, payload=data, status_code=200, operation=lambda session, key: (
        receiving.receive_order(session, ctx, order_id=order_id, data=body, settings=settings,
                                idempotency_key=key)))


@router.post("/{order_id}/cancel", response_model=OrderOut,
             summary="Cancelar: lo que no llegó deja de estar pedido (lo recibido queda)")
def cancel_order(order_id: OrderId, data: CancelIn, ctx: Context = Depends(require(CATALOG_WRITE)),
                 db: Database = Depends(get_db)) -> OrderOut:
    with db.write() as session:
        return orders.order_out(session, orders.cancel_order(session, ctx, order_id=order_id, reason=data.reason))
