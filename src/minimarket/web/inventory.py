"""Inventario: search (name, SKU, barcode; a scanned code opens the product), filters, sorting, pages;
and the product page with stock per location and its movements."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import select

from minimarket.accounts.permissions import READ, STOCK_WRITE
from minimarket.accounts.sessions import SessionUser
from minimarket.ar.money import format_qty
from minimarket.catalog.models import Category
from minimarket.catalog.service import find_product
from minimarket.errors import DomainError, NotFound
from minimarket.catalog.price_history import history_of
from minimarket.stock import inventory, service
from minimarket.suppliers.models import Supplier
from minimarket.web.auth import page_user
from minimarket.web.kept_pages import keep, product_sku
from minimarket.web.templating import render

router = APIRouter(include_in_schema=False)
PER_PAGE = 50
STATES = {"": (None, None), "bajo": (True, None), "sin": (None, True)}
COLUMNS = (("sku", "SKU"), ("nombre", "Producto"), ("costo", "Costo"), ("precio", "Precio"))

Text = Annotated[str, Query(max_length=100)]


def _filters(q: str, categoria: str, proveedor: str, estado: str) -> dict[str, str]:
    return {k: v for k, v in {"q": q, "categoria": categoria, "proveedor": proveedor, "estado": estado}.items() if v}


def sort_link(filters: dict[str, str], column: str, orden: str, desc: bool) -> str:
    """The header link: sort by `column`, flipping the direction when it is already the sort column."""
    flip = column == orden and not desc
    return "/inventario?" + urlencode({**filters, "orden": column, **({"dir": "desc"} if flip else {})})


@router.get("/inventario", response_class=HTMLResponse)
def inventory_list(
    request: Request,
    user: SessionUser = Depends(page_user(READ)),
    q: Text = "", categoria: Text = "", proveedor: Text = "",
    estado: Annotated[str, Query(max_length=10)] = "",
    orden: Annotated[str, Query(max_length=10)] = "sku",
    dir: Annotated[str, Query(max_length=4)] = "",  # noqa: A002
    pagina: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    db = request.app.state.db
    q = q.strip()
    error = None
    with db.read() as session:
        if q and estado == "" and pagina == 1:
            try:  # a scanned barcode or an exact SKU opens the product at once
                product = find_product(session, q)
                return RedirectResponse(f"/inventario/{quote(product.sku, safe='')}", status_code=303)
            except NotFound:
                pass
        low, out = STATES.get(estado, (None, None))
        try:
            items, more = inventory.inventory_page(session, q=q or None, category=categoria or None,
                                                   supplier=proveedor or None, low_stock=low, out_of_stock=out,
                                                   sort=orden, descending=dir == "desc", page=pagina,
                                                   per_page=PER_PAGE)
        except DomainError as exc:
            items, more, error = [], False, exc.message
        # Names only: list_categories also counts each category's products (a scan of the catalogue).
        categories = sorted(session.scalars(select(Category.name)).all(), key=str.casefold)
        suppliers = session.scalars(select(Supplier.name).order_by(Supplier.name)).all()
    filters = _filters(q, categoria, proveedor, estado)
    page_link = lambda n: "/inventario?" + urlencode({**filters, "orden": orden, **({"dir": "desc"} if dir == "desc" else {}),  # noqa: E731
                                                      "pagina": n})
    response = render(request, "inventory.html", user, items=items, more=more, page=pagina, q=q,
                      categoria=categoria, proveedor=proveedor, estado=estado, orden=orden, desc=dir == "desc",
                      categories=categories, suppliers=suppliers, error=error, columns=COLUMNS,
                      sort_link=lambda col: sort_link(filters, col, orden, dir == "desc"), page_link=page_link,
                      filtered=bool(filters), export_query=urlencode({k: v for k, v in filters.items()}))
    # Kept (web/kept_pages.py) under the versions of the products it lists; a refused filter is not.
    return response if error else keep(request, response, skus=[item.sku for item in items])


@router.get("/inventario/sugerencias")
def suggestions(request: Request, q: Annotated[str, Query(max_length=100)] = "",
                user: SessionUser = Depends(page_user(READ))) -> JSONResponse:
    """Up to 8 products matching what is being typed (for the search box's script)."""
    if len(q.strip()) < 2:
        return JSONResponse([])
    with request.app.state.db.read() as session:
        items, _ = inventory.list_inventory(session, q=q, limit=8)
    return JSONResponse([{"sku": p.sku, "name": p.name, "stock": format_qty(p.stock)} for p in items],
                        headers={"Cache-Control": "no-store"})


@router.get("/inventario/{sku}", response_class=HTMLResponse)
def product_page(request: Request, sku: str, user: SessionUser = Depends(page_user(READ))) -> Response:
    if len(sku) > 60:
        return render(request, "error.html", user, status_code=404, heading="Producto no encontrado",
                      message="El código es demasiado largo para un SKU o un código de barras.")
    with request.app.state.db.read() as session:
        try:  # the product, its category, supplier and stock per location in one statement
            product_id, detail = inventory.product_by_ref(session, sku)
        except NotFound as exc:
            return render(request, "error.html", user, status_code=404, heading="Producto no encontrado",
                          message=exc.message)
        history = service.list_movements(session, product_id=product_id, limit=30)
        prices = history_of(session, product_id, limit=60)[::-1]  # oldest first
        # Rendered inside the read: the price changes are ORM rows, expired when the read ends.
        response = render(request, "product.html", user, product=detail, history=history.items,
                          can_move=user.role in STOCK_WRITE, more_history=history.next_cursor is not None,
                          price_changes=prices[::-1][:10], price_chart=price_chart(prices) if prices else None)
    by_sku = detail.sku == product_sku(sku)
    # Kept (web/kept_pages.py) under this product's version: only when the path named it by its SKU.
    return keep(request, response) if by_sku else response


def price_chart(changes) -> str:  # noqa: ANN001
    """Price and cost after each recorded change (starting from the value before the first one)."""
    from minimarket.ar.dates import format_date
    from minimarket.web.charts import lines

    labels = ["antes"] + [format_date(c.created_at)[:5] for c in changes]
    price = [changes[0].price_before] + [c.price_after for c in changes]
    cost = [changes[0].cost_before] + [c.cost_after for c in changes]
    return str(lines("Historia de precio y costo", labels, [("Precio", "c-out", price), ("Costo", "c-in", cost)]))
