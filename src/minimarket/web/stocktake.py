"""Recuento: count a location by scanning (one scan per line), review the differences, confirm as one stocktake."""

from __future__ import annotations

import re
import uuid
from collections import OrderedDict
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from minimarket.accounts.permissions import STOCK_WRITE
from minimarket.accounts.sessions import SessionUser
from minimarket.catalog.service import find_product
from minimarket.errors import DomainError, InvalidInput, NotFound
from minimarket.platform.errors import spanish_message
from minimarket.platform.idempotency import check_client_key, fingerprint, run_once
from minimarket.stock import service
from minimarket.stock.ledger import current_balance
from minimarket.stock.locations import list_locations, resolve_location
from minimarket.stock.schemas import MAX_LINES, StocktakeIn
from minimarket.web.auth import form_user, page_context, page_user
from minimarket.web.movements import parse_quantity
from minimarket.web.kept_pages import keep
from minimarket.web.templating import no_products, render

router = APIRouter(include_in_schema=False)


def parse_scans(text: str) -> tuple[OrderedDict[str, Decimal], list[str]]:
    """Counted quantity per code and the unreadable lines.

    Each line is one scan ("7790001234567") or a code and its quantity ("7790001234567 3",
    "YERBA-1 x 2,5", "YERBA-1*3"); scans of the same code add up.
    """
    counts: OrderedDict[str, Decimal] = OrderedDict()
    problems = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        parts = re.split(r"\s*[*]\s*|\s+[xX]\s+|\s+", line, maxsplit=1)
        code, qty_text = parts[0], (parts[1] if len(parts) > 1 else "1")
        try:
            qty = parse_quantity(qty_text)
        except InvalidInput:
            problems.append(f"Línea {n}: «{line}» no es un código seguido de una cantidad")
            continue
        counts[code.upper()] = counts.get(code.upper(), Decimal(0)) + qty
    return counts, problems


def _active_locations(session) -> list[tuple[str, str]]:  # noqa: ANN001
    return [(loc.code, loc.name) for loc in list_locations(session) if loc.active]


def _locations(request: Request) -> list[tuple[str, str]]:
    with request.app.state.db.read() as session:
        return _active_locations(session)


@router.get("/recuento", response_class=HTMLResponse)
def count_form(request: Request, user: SessionUser = Depends(page_user(STOCK_WRITE))) -> HTMLResponse:
    with request.app.state.db.read() as session:
        locations, empty = _active_locations(session), no_products(session)
    response = render(request, "stocktake.html", user, locations=locations, step="scan", scans="",
                      location=request.app.state.settings.default_location, reason="", problems=[], error=None,
                      empty=empty)
    return keep(request, response)  # web/kept_pages.py: the scan step shows no stock


@router.post("/recuento/revisar", response_class=HTMLResponse)
def review(request: Request, user: SessionUser = Depends(form_user(STOCK_WRITE)),
           ubicacion: Annotated[str, Form(max_length=20)] = "", escaneos: Annotated[str, Form(max_length=200_000)] = "",
           motivo: Annotated[str, Form(max_length=500)] = "") -> HTMLResponse:
    """The differences the count would record, computed against the current balances; nothing is written."""
    counts, problems = parse_scans(escaneos)
    rows = []
    with request.app.state.db.read() as session:
        try:
            location = resolve_location(session, ubicacion)
        except DomainError as exc:
            problems.insert(0, exc.message)
            location = None
        for code, counted in counts.items():
            try:
                product = find_product(session, code)
            except NotFound as exc:
                problems.append(exc.message)
                continue
            previous = current_balance(session, product.id, location.id) if location else Decimal(0)
            rows.append({"sku": product.sku, "name": product.name, "previous": previous, "counted": counted,
                         "difference": counted - previous})
    merged: OrderedDict[str, dict] = OrderedDict()
    for row in rows:  # a barcode and the SKU of the same product add up
        if row["sku"] in merged:
            merged[row["sku"]]["counted"] += row["counted"]
            merged[row["sku"]]["difference"] += row["counted"]
        else:
            merged[row["sku"]] = row
    if not counts and not problems:
        problems.append("Escaneá al menos un producto (un código por línea)")
    if len(merged) > MAX_LINES:
        problems.append(f"Un recuento puede tener hasta {MAX_LINES} productos; dividilo en partes")
    step = "review" if merged and not problems else "scan"
    return render(request, "stocktake.html", user, status_code=200 if step == "review" else 422,
                  locations=_locations(request), step=step, rows=list(merged.values()), scans=escaneos,
                  location=ubicacion, reason=motivo, problems=problems, error=None, key=uuid.uuid4().hex)


@router.post("/recuento/confirmar", response_class=HTMLResponse)
def confirm(request: Request, user: SessionUser = Depends(form_user(STOCK_WRITE)),
            ubicacion: Annotated[str, Form(max_length=20)] = "", motivo: Annotated[str, Form(max_length=500)] = "",
            sku: Annotated[list[str] | None, Form()] = None, contado: Annotated[list[str] | None, Form()] = None,
            idempotency_key: Annotated[str, Form(max_length=200)] = "") -> HTMLResponse:
    """Record the reviewed count as one stocktake (the same service as POST /api/stocktake)."""
    ctx = page_context(request, user)
    settings = request.app.state.settings
    try:
        skus, counted = sku or [], contado or []
        if not skus or len(skus) != len(counted):
            raise InvalidInput("El recuento llegó incompleto; volvé a escanear y revisar")
        try:
            count = StocktakeIn(location=ubicacion or None, reason=motivo or None,
                                lines=[{"sku": s, "counted": parse_quantity(c)} for s, c in zip(skus, counted)])
        except ValidationError as exc:
            raise InvalidInput(spanish_message(exc.errors()[0])) from None
        client_key = check_client_key(idempotency_key or None)

        def operation(session):  # noqa: ANN001, ANN202
            result = service.take_stocktake(session, ctx, count=count, settings=settings,
                                            idempotency_key=client_key)
            return 201, result.model_dump(mode="json")

        outcome = run_once(request.app.state.db,
                           key="k:" + fingerprint(ctx.principal_id, client_key) if client_key else None,
                           request_hash=fingerprint("POST", "/recuento/confirmar", count.model_dump(mode="json")),
                           operation=operation, label="El recuento")
    except DomainError as exc:
        return render(request, "stocktake.html", user, status_code=exc.status_code, locations=_locations(request),
                      step="scan", scans="\n".join(f"{s} {c}" for s, c in zip(sku or [], contado or [])),
                      location=ubicacion, reason=motivo, problems=[], error=exc.message)
    return render(request, "stocktake.html", user, status_code=201, locations=_locations(request), step="done",
                  result=outcome.body, location=ubicacion, reason="", scans="", problems=[], error=None)
