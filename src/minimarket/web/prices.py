"""Precios atrasados: the products sold below their target markup (pricing.lagging), behind Inicio's number.

The Precios page proper (bulk changes, undo) belongs to the pricing pages still to come; this is the
list Inicio links to.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from minimarket.accounts.permissions import READ
from minimarket.accounts.sessions import SessionUser
from minimarket.pricing.lagging import lagging_prices
from minimarket.reports.kpis import db_tag, change_marker
from minimarket.web.auth import page_user
from minimarket.web.templating import render

router = APIRouter(include_in_schema=False)
SHOWN = 100


def _key(request: Request, session) -> str:  # noqa: ANN001
    return f"lagging:{db_tag(request.app.state.db)}:{change_marker(session).catalog_changed}"


def lagging_count(request: Request) -> int | None:
    """How many products sell below their target markup, as last computed for the current catalogue.

    None until the list has been computed: on a big catalogue it takes seconds (pricing.lagging reads
    every active product), so Inicio never computes it inline; the list page does, and stores it.
    """
    with request.app.state.db.read() as session:
        cached = request.app.state.cache.get_json(_key(request, session))
    return None if cached is None else int(cached)


@router.get("/precios/atrasados", response_class=HTMLResponse)
def lagging_page(request: Request, user: SessionUser = Depends(page_user(READ))) -> HTMLResponse:
    with request.app.state.db.read() as session:
        found = lagging_prices(session, limit=SHOWN)
        request.app.state.cache.set_json(_key(request, session), found["count"], 3600)
    return render(request, "lagging.html", user, count=found["count"], items=found["items"], shown=SHOWN)
