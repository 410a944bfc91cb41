"""Pedidos: the list, a new order from a supplier's suggestions, one order with its documents.
The actions on an order (edit, send, receive, cancel) are in `order_actions.py`."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from minimarket.accounts.permissions import CATALOG_WRITE, READ, STOCK_WRITE
from minimarket.accounts.sessions import SessionUser
from minimarket.errors import DomainError, InvalidInput, NotFound
from minimarket.purchasing import order_documents as documents
from minimarket.purchasing import orders
from minimarket.purchasing.order_rules import STATE_LABELS
from minimarket.purchasing.order_schemas import OrderIn, OrderOut
from minimarket.purchasing.suggestions import suggestions
from minimarket.stock.locations import list_locations
from minimarket.suppliers.models import Supplier
from minimarket.types import utcnow
from minimarket.web.auth import form_user, page_context, page_user
from minimarket.web.forms import build, new_form_key, write_once
from minimarket.web.kept_pages import keep
from minimarket.web.templating import render

router = APIRouter(include_in_schema=False)
OrderId = Annotated[int, Path(ge=1, le=2_147_483_647)]
DONE = {"creado": "Pedido armado en borrador: revisá las cantidades y envialo.", "editado": "Cambios guardados.",
        "enviado": "Pedido marcado como enviado: mandá el PDF o el texto de WhatsApp al proveedor.",
        "recibido": "Mercadería recibida: ya está en el stock.", "cancelado": "Pedido cancelado."}


def line_labels(message: str, numbers: list[int] | None = None) -> str:
    """`lines[2].quantity: …` (the API's field) → `Línea 3: …` (what the form shows); `numbers` maps the
    position among the lines sent to the line number on the page when some were left out."""
    head, sep, rest = message.partition(": ")
    if sep and head.startswith("lines[") and "]" in head:
        index = head[len("lines["):].split("]", 1)[0]
        if index.isdigit():
            position = int(index)
            shown = numbers[position] if numbers and position < len(numbers) else position + 1
            return f"Línea {shown}: {rest}"
    return message


def _suppliers(session) -> list[tuple[int, str]]:  # noqa: ANN001
    return [(s.id, s.name) for s in session.scalars(select(Supplier).where(Supplier.active.is_(True))
                                                     .order_by(Supplier.name))]


def _supplier_id(raw: str) -> int | None:
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 9:
        raise InvalidInput(f"Proveedor: '{raw}' no es un proveedor; elegilo de la lista")
    return int(raw)


@router.get("/pedidos", response_class=HTMLResponse)
def orders_page(
    request: Request,
    user: SessionUser = Depends(page_user(READ)),
    estado: Annotated[str, Query(max_length=20)] = "",
    proveedor: Annotated[str, Query(max_length=12)] = "",
    antes: Annotated[str, Query(max_length=12)] = "",
) -> HTMLResponse:
    filters = {k: v for k, v in {"estado": estado, "proveedor": proveedor}.items() if v}
    context = {"items": [], "next_link": None, "error": None}
    status = 200
    with request.app.state.db.read() as session:
        suppliers = _suppliers(session)
        try:
            if estado and estado not in STATE_LABELS:
                raise InvalidInput(f"Estado: '{estado}' no es un estado de pedido")
            supplier_id = _supplier_id(proveedor)
            page = orders.list_orders(session, supplier=str(supplier_id) if supplier_id else None,
                                      state=estado or None, limit=50,
                                      cursor=int(antes) if antes.isdigit() else None)
            context["items"] = page.items
            if page.next_cursor:
                context["next_link"] = "/pedidos?" + urlencode({**filters, "antes": page.next_cursor})
        except DomainError as exc:
            context["error"], status = exc.message, exc.status_code
    response = render(request, "orders.html", user, status_code=status, filters=filters, suppliers=suppliers,
                      export_query=urlencode(filters),
                      states=STATE_LABELS, can_order=user.role in CATALOG_WRITE, **context)
    return keep(request, response)  # web/kept_pages.py


@router.get("/pedidos/nuevo", response_class=HTMLResponse)
def new_order(request: Request, user: SessionUser = Depends(page_user(CATALOG_WRITE)),
              proveedor: Annotated[str, Query(max_length=12)] = "",
              dias: Annotated[int, Query(ge=1, le=120)] = 14) -> HTMLResponse:
    return _new_form(request, user, proveedor, dias, kept=True)


def _new_form(request: Request, user: SessionUser, proveedor: str, days: int, *, error: str | None = None,
              status: int = 200, kept: bool = False) -> HTMLResponse:
    group = None
    with request.app.state.db.read() as session:
        suppliers = _suppliers(session)
        try:
            supplier_id = _supplier_id(proveedor)
            if supplier_id is not None:
                groups = suggestions(session, supplier=str(supplier_id), cover_days=days)["suppliers"]
                group = groups[0] if groups else {"supplier_id": supplier_id, "lines": [],
                                                  "supplier": dict(suppliers).get(supplier_id, "")}
                if "next_order_day" in group:
                    group["next_order_day"] = date.fromisoformat(group["next_order_day"])
        except DomainError as exc:
            error, status = exc.message, exc.status_code
    key = new_form_key()
    response = render(request, "order_new.html", user, status_code=status, suppliers=suppliers,
                      proveedor=proveedor, days=days, group=group, error=error, key=key)
    # As shown by GET, kept for the store's day (web/kept_pages.py) with a new retry key for every view.
    return keep(request, response, form_key=key) if kept else response


@router.post("/pedidos/nuevo", response_class=HTMLResponse)
def create_order(
    request: Request,
    user: SessionUser = Depends(form_user(CATALOG_WRITE)),
    proveedor: Annotated[str, Form(max_length=12)] = "",
    dias: Annotated[str, Form(max_length=5)] = "14",
    sku: Annotated[list[str] | None, Form()] = None,
    idempotency_key: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """A draft from the chosen suggestions, through the same service as POST /api/purchase-orders."""
    ctx = page_context(request, user)
    try:
        if not sku:
            raise InvalidInput("Elegí al menos un producto para el pedido")
        data = build(OrderIn, {"supplier": "Proveedor", "skus": "Productos", "cover_days": "Días de cobertura"},
                     supplier=proveedor or "?", from_suggestions=True, skus=sku[:500],
                     cover_days=dias if dias.isdigit() else -1)
        created = write_once(request, ctx, form_key=idempotency_key, route="/pedidos/nuevo",
                             payload=data.model_dump(mode="json"),
                             work=lambda session: {"id": orders.create_order(session, ctx, data=data).id})
    except DomainError as exc:
        return _new_form(request, user, proveedor, int(dias) if dias.isdigit() and 0 < int(dias) <= 120 else 14,
                         error=exc.message, status=exc.status_code)
    return RedirectResponse(f"/pedidos/{created['id']}?hecho=creado", status_code=303)


def not_found(request: Request, user: SessionUser, exc: NotFound) -> HTMLResponse:
    return render(request, "error.html", user, status_code=404, heading="Pedido no encontrado", message=exc.message)


def order_page(request: Request, user: SessionUser, order_id: int, *, error: str | None = None,
               status: int = 200, done: str = "", kept: bool = False) -> HTMLResponse:
    try:
        with request.app.state.db.read() as session:
            order = orders.order_out(session, orders.find_order(session, order_id))
            codes = documents.supplier_codes(session, order)
            locations = [(loc.code, loc.name) for loc in list_locations(session) if loc.active]
    except NotFound as exc:
        return not_found(request, user, exc)
    settings = request.app.state.settings
    key = new_form_key()
    response = render(request, "order.html", user, status_code=status, order=order, error=error,
                      done=DONE.get(done), whatsapp=documents.whatsapp_text(order, codes), wa_link=_wa_link(order),
                      codes=codes, locations=locations, default_location=settings.default_location,
                      can_order=user.role in CATALOG_WRITE, can_receive=user.role in STOCK_WRITE, key=key)
    # As shown by GET, kept (web/kept_pages.py) with a new retry key for every view.
    return keep(request, response, form_key=key) if kept else response


def _wa_link(order: OrderOut) -> str | None:
    """wa.me wants the number with country code and no signs; a local number without 54 gets it."""
    digits = "".join(ch for ch in (order.supplier_phone or "") if ch.isdigit())
    if len(digits) < 8:
        return None
    return f"https://wa.me/{digits if digits.startswith('54') else '54' + digits.lstrip('0')}"


@router.get("/pedidos/{order_id}", response_class=HTMLResponse)
def order_detail(request: Request, order_id: OrderId, user: SessionUser = Depends(page_user(READ)),
                 hecho: Annotated[str, Query(max_length=20)] = "") -> HTMLResponse:
    return order_page(request, user, order_id, done=hecho, kept=True)


@router.get("/pedidos/{order_id}/pedido.pdf")
def order_pdf(request: Request, order_id: OrderId, user: SessionUser = Depends(page_user(READ))) -> Response:
    try:
        with request.app.state.db.read() as session:
            order = orders.order_out(session, orders.find_order(session, order_id))
            body = documents.order_pdf(order, documents.supplier_codes(session, order),
                                       session.get(Supplier, order.supplier_id), generated=utcnow())
    except NotFound as exc:
        return not_found(request, user, exc)
    return Response(body, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="pedido-{order_id}.pdf"'})


@router.get("/pedidos/{order_id}/whatsapp.txt")
def order_text(request: Request, order_id: OrderId, user: SessionUser = Depends(page_user(READ))) -> Response:
    try:
        with request.app.state.db.read() as session:
            order = orders.order_out(session, orders.find_order(session, order_id))
            text = documents.whatsapp_text(order, documents.supplier_codes(session, order))
    except NotFound as exc:
        return not_found(request, user, exc)
    return Response(text.encode("utf-8"), media_type="text/plain; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="pedido-{order_id}-whatsapp.txt"'})
