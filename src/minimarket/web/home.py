"""Inicio: the store's numbers (each a link to the list behind it), four charts, live updates by SSE."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from minimarket.accounts.permissions import READ
from minimarket.accounts.sessions import SessionUser
from minimarket.ar.dates import store_day_start, store_week_start
from minimarket.ar.money import format_ars, format_percent, format_qty
from minimarket.reports import series
from minimarket.reports.kpis import Kpis, current_kpis, db_tag
from minimarket.web import charts
from minimarket.web.alerts import firing_count
from minimarket.web.auth import page_user, session_user
from minimarket.web.prices import lagging_count
from minimarket.web.templating import render

router = APIRouter(include_in_schema=False)
POLL_SECONDS = 2.0  # how often the event stream checks the change marker (one indexed MAX query)
STREAM_SECONDS = 55  # then the stream ends and the browser reconnects: no connection lives forever
CHARTS_TTL = 300
_DRAWING = threading.Lock()


def kpi_texts(k: Kpis) -> dict[str, str]:
    """Every number of Inicio as the page shows it; the same strings go over the event stream."""
    return {
        "stock_value_cost": format_ars(k.stock_value_cost), "stock_value_price": format_ars(k.stock_value_price),
        "active_products": format_qty(k.active_products), "below_minimum": format_qty(k.below_minimum),
        "out_of_stock": format_qty(k.out_of_stock), "sales_today_units": format_qty(k.sales_today_units),
        "sales_today_amount": format_ars(k.sales_today_amount), "sales_week_units": format_qty(k.sales_week_units),
        "sales_week_amount": format_ars(k.sales_week_amount), "margin_week": format_percent(k.margin_week),
        "movements_today": format_qty(k.movements_today),
    }


def _charts(request: Request) -> dict[str, str]:
    db, cache = request.app.state.db, request.app.state.cache
    # Trends of 30 days: redrawn every CHARTS_TTL seconds at most, not on every movement (the
    # inflation series alone reads every entrada of a year; about a second on a big store).
    key = f"charts:{db_tag(db)}:{series.store_day_start().date()}"
    cached = cache.get_json(key)
    if cached is not None:
        return cached
    with _DRAWING:  # one drawing at a time: the visitors who arrive meanwhile read its result
        cached = cache.get_json(key)
        return cached if cached is not None else _draw(db, cache, key)


def _draw(db, cache, key: str) -> dict:  # noqa: ANN001
    with db.read() as session:
        days = series.daily_in_vs_sales(session)
        top = series.top_products(session)
        categories = series.stock_value_by_category(session)
        inflation = series.cost_inflation(session)
    rendered = {
        "flow": str(charts.lines("Entradas y ventas por día, últimos 30 días (unidades)",
                                 [f"{d:%d/%m}" for d, _, _ in days],
                                 [("Entradas", "c-in", [i for _, i, _ in days]),
                                  ("Ventas", "c-out", [o for _, _, o in days])])),
        "top": str(charts.hbars("Productos más vendidos, últimos 30 días ($)", [(n, a) for _, n, a in top],
                                format_ars, links=[f"/inventario/{s}" for s, _, _ in top])),
        "categories": str(charts.hbars("Valor del stock al costo por categoría", categories, format_ars)),
        "inflation": str(charts.columns("Inflación de costos mes a mes (%)", inflation,
                                        lambda v: format_percent(v))),
        "has_inflation": any(v is not None for _, v in inflation),
    }
    cache.set_json(key, rendered, CHARTS_TTL)
    return rendered


@router.get("/", response_class=HTMLResponse)
def home(request: Request, user: SessionUser = Depends(page_user(READ))) -> HTMLResponse:
    kpis = current_kpis(request.app.state.db, request.app.state.cache)
    empty = kpis.active_products == 0
    return render(request, "home.html", user, kpis=kpi_texts(kpis), lagging=0 if empty else lagging_count(request),
                  firing=firing_count(request), marker=kpis.marker, empty=empty,
                  charts=None if empty else _charts(request), day=store_day_start().date(),
                  week=store_week_start().date())


@router.get("/eventos/inicio")
async def home_events(request: Request) -> StreamingResponse:
    """Server-sent events: `kpis` with Inicio's numbers whenever the store's change marker moves.

    Works across processes and replicas: every stream polls the marker in the database.
    """
    user = await run_in_threadpool(session_user, request)
    if user is None or user.role not in READ:
        return StreamingResponse(iter(["retry: 30000\nevent: fin\ndata: {}\n\n"]), status_code=401,
                                 media_type="text/event-stream")
    db, cache = request.app.state.db, request.app.state.cache
    since = request.query_params.get("desde", "")

    async def stream() -> AsyncIterator[str]:
        last = since
        yield "retry: 3000\n\n"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STREAM_SECONDS
        while loop.time() < deadline:
            if await request.is_disconnected():
                return
            kpis = await run_in_threadpool(current_kpis, db, cache)
            if str(kpis.marker) != last:
                last = str(kpis.marker)
                payload = json.dumps({"marker": kpis.marker, "values": kpi_texts(kpis)}, ensure_ascii=False)
                yield f"event: kpis\nid: {kpis.marker}\ndata: {payload}\n\n"
            await asyncio.sleep(POLL_SECONDS)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
