"""Precios: a bulk change by filters (preview → apply as one batch → undo), the recent batches, and the
lagging prices. Every rule is pricing's (bulk.preview_bulk, bulk.apply_bulk, batches.undo_batch,
lagging.lagging_prices); this module only reads the form and shows the answer."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from minimarket.accounts.permissions import CATALOG_WRITE, READ
from minimarket.accounts.sessions import SessionUser
from minimarket.catalog.models import Category, Product
from minimarket.errors import DomainError
from minimarket.pricing import batches, bulk
from minimarket.pricing.lagging import lagging_prices
from minimarket.pricing.schemas import BulkChangeIn
from minimarket.suppliers.models import Supplier
from minimarket.web.auth import form_user, page_context, page_user
from minimarket.web.forms import build, new_form_key, parse_decimal, write_once
from minimarket.web.kept_pages import keep
from minimarket.web.templating import render

router = APIRouter(include_in_schema=False)
SHOWN = 100
PER_PAGE = 50
BATCHES_SHOWN = 15
OPERATIONS = {"price_percent": "Precio ± %", "cost_percent": "Costo ± %", "recompute": "Recalcular desde el costo"}
LABELS = {"category": "Categoría", "supplier": "Proveedor", "brand": "Marca", "filter": "Filtro",
          "operation": "Operación", "percent": "Porcentaje", "note": "Nota", "all_products": "Todos los productos"}
Short = Annotated[str, Query(max_length=200)]


@router.get("/precios/atrasados", response_class=HTMLResponse)
def lagging_page(request: Request, user: SessionUser = Depends(page_user(READ)),
                 categoria: Annotated[str, Query(max_length=100)] = "",
                 pagina: Annotated[int, Query(ge=1, le=10000)] = 1) -> HTMLResponse:
    error, found = None, {"count": 0, "items": []}
    with request.app.state.db.lookup() as session:  # independent reads: no BEGIN/ROLLBACK round trips
        try:
            found = lagging_prices(session, limit=SHOWN, offset=(pagina - 1) * SHOWN, category=categoria or None)
        except DomainError as exc:
            error = exc.message.replace("category:", "Categoría:")
        choices = {"categories": _category_names(session),
                   # a lagging price is a product: ask only when there is none
                   "has_products": found["count"] > 0 or session.scalar(select(Product.id).limit(1)) is not None}
    query = {"categoria": categoria} if categoria else {}
    return render(request, "lagging.html", user, status_code=422 if error else 200, count=found["count"],
                  items=found["items"], shown=SHOWN, categoria=categoria, error=error,
                  export_query=urlencode(query), page=pagina, more=pagina * SHOWN < found["count"],
                  page_link=lambda n: "/precios/atrasados?" + urlencode({**query, "pagina": n}), **choices)


def _form_values(categoria: str, proveedor: str, marca: str, todos: str, operacion: str, porcentaje: str,
                 recalcular: str, nota: str) -> dict[str, str]:
    return {"categoria": categoria, "proveedor": proveedor, "marca": marca, "todos": todos, "operacion": operacion,
            "porcentaje": porcentaje, "recalcular": recalcular, "nota": nota}


def change_from_form(values: dict[str, str]) -> BulkChangeIn:
    """The API's own BulkChangeIn from the form: the same validation, messages naming the form's labels."""
    operation = values["operacion"] or "price_percent"
    percent = None if operation == "recompute" else parse_decimal(values["porcentaje"], "Porcentaje",
                                                                 example="10 o -5,5")
    flt: dict[str, Any] = {"category": values["categoria"] or None, "supplier": values["proveedor"] or None,
                           "brand": values["marca"] or None, "all_products": values["todos"] == "si"}
    return build(BulkChangeIn, LABELS, filter=flt, operation=operation, percent=percent,
                 update_prices=values["recalcular"] == "si", note=values["nota"] or None)


def _category_names(session) -> list[str]:  # noqa: ANN001
    return sorted(session.scalars(select(Category.__table__.c.nombre)).all(), key=str.casefold)


def _choices(session) -> dict[str, Any]:  # noqa: ANN001
    return {"categories": _category_names(session),
            "suppliers": session.scalars(select(Supplier.name).where(Supplier.active.is_(True))
                                         .order_by(Supplier.name)).all(),
            "has_products": session.scalar(select(Product.id).limit(1)) is not None}


def _page(request: Request, user: SessionUser, *, status: int = 200, error: str | None = None,
          values: dict[str, str] | None = None, notice: str | None = None, before: int | None = None,
          kept: bool = False) -> HTMLResponse:
    with request.app.state.db.read() as session:
        recent = [batches.batch_out(b) for b in batches.list_batches(session, limit=BATCHES_SHOWN + 1,
                                                                      before_id=before)]
        choices = _choices(session)
    older = recent[BATCHES_SHOWN - 1]["batch_id"] if len(recent) > BATCHES_SHOWN else None
    undo_key = new_form_key()
    response = render(request, "prices.html", user, status_code=status, error=error, notice=notice,
                      values=values or _form_values("", "", "", "", "price_percent", "", "", ""),
                      operations=OPERATIONS, batches=recent[:BATCHES_SHOWN], older=older,
                      can_change=user.role in CATALOG_WRITE, undo_key=undo_key, **choices)
    # As shown by GET, kept (web/kept_pages.py) with a new retry key for every view.
    return keep(request, response, form_key=undo_key) if kept else response


@router.get("/precios", response_class=HTMLResponse)
def prices_page(request: Request, user: SessionUser = Depends(page_user(READ)),
                aplicado: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
                deshecho: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
                antes: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
                categoria: Short = "") -> HTMLResponse:
    """The bulk-change form (prefilled with `categoria` from the lagging list) and the recent batches."""
    notice = None
    if aplicado:
        notice = f"Lote {aplicado} aplicado. Si fue un error, deshacelo desde la lista de lotes."
    elif deshecho:
        notice = f"Lote {deshecho} deshecho: cada costo y precio volvió a su valor anterior."
    return _page(request, user, notice=notice, before=antes,
                 values=_form_values(categoria, "", "", "", "price_percent", "", "", ""), kept=True)


@router.get("/precios/vista-previa", response_class=HTMLResponse)
def preview_page(request: Request, user: SessionUser = Depends(page_user(CATALOG_WRITE)),
                 categoria: Short = "", proveedor: Short = "", marca: Short = "", todos: Short = "",
                 operacion: Short = "price_percent", porcentaje: Short = "", recalcular: Short = "", nota: Short = "",
                 pagina: Annotated[int, Query(ge=1, le=10000)] = 1) -> HTMLResponse:
    """What the change would do (nothing is written): every product old → new, a page at a time."""
    values = _form_values(categoria, proveedor, marca, todos, operacion, porcentaje, recalcular, nota)
    try:
        change = change_from_form(values)
        with request.app.state.db.read() as session:
            preview = bulk.preview_bulk(session, change=change, offset=(pagina - 1) * PER_PAGE, limit=PER_PAGE)
    except DomainError as exc:
        return _page(request, user, status=exc.status_code, error=exc.message, values=values)
    items = preview["items"]
    query = {k: v for k, v in values.items() if v}
    link = lambda n: "/precios/vista-previa?" + urlencode({**query, "pagina": n})  # noqa: E731
    return render(request, "price_preview.html", user, preview=preview, items=items, values=values,
                  description=bulk.describe(change), page=pagina, per_page=PER_PAGE, page_link=link,
                  more=pagina * PER_PAGE < preview["count"], listed=preview["count"],
                  edit_link="/precios?" + urlencode(query), key=new_form_key(),
                  cost_shown=change.operation == "cost_percent")


@router.post("/precios/aplicar", response_class=HTMLResponse)
def apply_change(request: Request, user: SessionUser = Depends(form_user(CATALOG_WRITE)),
                 categoria: Annotated[str, Form(max_length=200)] = "", proveedor: Annotated[str, Form(max_length=200)] = "",
                 marca: Annotated[str, Form(max_length=200)] = "", todos: Annotated[str, Form(max_length=5)] = "",
                 operacion: Annotated[str, Form(max_length=20)] = "", porcentaje: Annotated[str, Form(max_length=20)] = "",
                 recalcular: Annotated[str, Form(max_length=5)] = "", nota: Annotated[str, Form(max_length=200)] = "",
                 idempotency_key: Annotated[str, Form(max_length=200)] = "") -> Response:
    """The previewed change as one batch, through the same service as POST /api/prices/bulk."""
    values = _form_values(categoria, proveedor, marca, todos, operacion, porcentaje, recalcular, nota)
    ctx = page_context(request, user)
    try:
        change = change_from_form(values)
        done = write_once(request, ctx, form_key=idempotency_key, route="/precios/aplicar",
                          payload=change.model_dump(mode="json"),
                          work=lambda session: {"batch_id": bulk.apply_bulk(session, ctx, change=change).id})
    except DomainError as exc:
        return _page(request, user, status=exc.status_code, error=exc.message, values=values)
    return RedirectResponse(f"/precios?aplicado={done['batch_id']}", status_code=303)


@router.post("/precios/lotes/{batch_id}/deshacer", response_class=HTMLResponse)
def undo_change(request: Request, batch_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
                user: SessionUser = Depends(form_user(CATALOG_WRITE)),
                idempotency_key: Annotated[str, Form(max_length=200)] = "") -> Response:
    """Every cost and price of the batch back to its value before, exactly (refused if one changed since)."""
    ctx = page_context(request, user)
    try:
        write_once(request, ctx, form_key=f"{idempotency_key}:{batch_id}" if idempotency_key else "",
                   route=f"/precios/lotes/{batch_id}/deshacer", payload=batch_id,
                   work=lambda session: {"undo": batches.undo_batch(session, ctx, batch_id=batch_id).id})
    except DomainError as exc:
        return _page(request, user, status=exc.status_code, error=exc.message)
    return RedirectResponse(f"/precios?deshecho={batch_id}", status_code=303)
