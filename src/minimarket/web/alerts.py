"""Alertas: what Alertmanager sent the store (alerts.service), firing and resolved, behind Inicio's number."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from minimarket.accounts.permissions import READ
from minimarket.accounts.sessions import SessionUser
from minimarket.alerts.service import count_firing, list_alerts
from minimarket.errors import InvalidInput
from minimarket.web.auth import page_user
from minimarket.web.kept_pages import keep
from minimarket.web.templating import render

router = APIRouter(include_in_schema=False)
SHOWN = 100
# The page's filter in Spanish → the status Alertmanager uses.
STATES = {"activa": "firing", "resuelta": "resolved"}


def firing_count(request: Request) -> int:
    with request.app.state.db.read() as session:
        return count_firing(session)


@router.get("/alertas", response_class=HTMLResponse)
def alerts_page(
    request: Request,
    estado: Annotated[str, Query(max_length=10)] = "",
    desde: Annotated[str, Query(max_length=30)] = "",
    user: SessionUser = Depends(page_user(READ)),
) -> HTMLResponse:
    context = {"estado": estado, "items": [], "next_link": None, "error": None}
    if estado and estado not in STATES:
        context["error"] = "estado: elegí 'activa' o 'resuelta' (o ninguno para ver todas)"
        return render(request, "alerts.html", user, status_code=422, **context)
    try:
        with request.app.state.db.read() as session:
            found = list_alerts(session, status=STATES.get(estado), limit=SHOWN, cursor=desde or None)
    except InvalidInput:
        context["error"] = "desde: valor inválido; seguí el enlace «Más viejas» de la página anterior"
        return render(request, "alerts.html", user, status_code=422, **context)
    context["items"] = found.items
    if found.next_cursor:
        context["next_link"] = "/alertas?" + urlencode({k: v for k, v in
                                                         {"estado": estado, "desde": found.next_cursor}.items() if v})
    return keep(request, render(request, "alerts.html", user, **context))  # web/kept_pages.py
