"""Inicio: the store's numbers (each a link to the list behind it), four charts, live updates by SSE."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from datetime import date

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from minimarket.accounts.permissions import READ
from minimarket.accounts.sessions import SessionUser
from minimarket.ar.dates import MONTHS_SHORT, format_month, store_day_start, store_week_start
from minimarket.ar.money import format_ars, format_percent, format_qty
from minimarket.alerts.service import count_firing
from minimarket.db import Database
from minimarket.pricing.lagging import count_lagging
from minimarket.reports import series
from minimarket.reports.kpis import FOLD_ROWS, Kpis, change_marker, compute_kpis, current_kpis, fold_aggregates
from minimarket.web import charts
from minimarket.types import utcnow
from minimarket.web.auth import page_user, session_user
from minimarket.web.kept_pages import home_key, keep
from minimarket.web.templating import render

router = APIRouter(include_in_schema=False)
POLL_SECONDS = 2.0  # how often the event stream reads the KPIs (a few small queries of the aggregates)
STREAM_SECONDS = 55  # then the stream ends and the browser reconnects: no connection lives forever
CHARTS_TTL = 300  # seconds a drawing is served before it is redrawn (in the background)
FIRST_WAIT = 0.3  # seconds Inicio waits for the process's first drawing before it shows the page without it
log = structlog.get_logger("minimarket.web")


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


class KeptCharts:
    """Inicio's three scanning charts (top products, value by category, cost inflation: seconds on a big
    store), as last drawn by this app.

    Served for CHARTS_TTL seconds; after that the kept drawing is still served while one thread redraws
    it. The first drawing of the process starts with the first page rendered (even the login page,
    `warm`); the visitor of Inicio who starts it waits FIRST_WAIT seconds at most (a small store's
    drawing is ready by then), and every visitor gets the page with the charts on their way until it is. The flow of the last 30
    days is not kept: it comes from the per-day aggregates on every view.
    """

    def __init__(self, db: Database):
        self.db = db
        self.drawing = threading.Lock()
        self.drawn = threading.Event()  # set once the first drawing ended
        self.kept: tuple[float, object, dict] | None = None  # (drawn at, store day, the drawing)

    def get(self) -> dict | None:
        """The kept drawing (redrawn in the background when old); None while the first one is not ready
        after FIRST_WAIT seconds (the page then says the charts are on their way)."""
        kept = self.kept
        if kept is not None:
            if time.monotonic() - kept[0] > CHARTS_TTL or kept[1] != store_day_start().date():
                self.warm(force=True)
            return kept[2]
        if self.warm():  # this visitor started it: worth a short wait (the others get the page at once)
            self.drawn.wait(FIRST_WAIT)
        return self.kept[2] if self.kept is not None else None

    def fresh_stamp(self) -> float | None:
        """When the kept drawing was made, if it is still served as it is (not due to be redrawn); no I/O."""
        kept = self.kept
        if kept is None or time.monotonic() - kept[0] > CHARTS_TTL or kept[1] != store_day_start().date():
            return None
        return kept[0]

    def warm(self, force: bool = False) -> bool:
        """Redraw in the background unless one is kept (or `force`) or a drawing is under way; cheap.
        True: this call started the drawing."""
        if (self.kept is not None and not force) or not self.drawing.acquire(blocking=False):
            return False

        def redraw() -> None:
            try:
                self._draw()
            except Exception:  # noqa: BLE001 - the kept drawing stays; the next visit tries again
                log.exception("charts_redraw_failed")
            finally:
                self.drawn.set()
                self.drawing.release()

        threading.Thread(target=redraw, name="inicio-charts", daemon=True).start()
        return True

    def _draw(self) -> dict:
        day = store_day_start().date()
        with self.db.read() as session:
            top = series.top_products(session)
            categories = series.stock_value_by_category(session)
            inflation = series.cost_inflation(session)
        rendered = {
            "top": str(charts.hbars("Productos más vendidos, últimos 30 días ($)", [(n, a) for _, n, a in top],
                                    format_ars, links=[f"/inventario/{s}" for s, _, _ in top])),
            "categories": str(charts.hbars("Valor del stock al costo por categoría", categories, format_ars)),
            "inflation": str(charts.columns("Inflación de costos mes a mes (%)",
                                            month_names([m for m, _ in inflation]), [v for _, v in inflation],
                                            format_percent, lambda v: format_percent(v).removesuffix(" %"))),
            "has_inflation": any(v is not None for _, v in inflation),
        }
        stamp = time.monotonic()
        rendered["stamp"] = stamp
        self.kept = (stamp, day, rendered)
        return rendered


def month_names(months: list[date]) -> list[tuple[str, str]]:
    """Each column's (name, what is written under it): `nov 2026`, written `nov` with the year under the
    first month and under every January (twelve years side by side do not fit on a phone)."""
    return [(format_month(m), MONTHS_SHORT[m.month - 1] + (f"\n{m.year}" if i == 0 or m.month == 1 else ""))
            for i, m in enumerate(months)]


def flow_chart(session: Session) -> str:
    """Entradas vs ventas per store day, last 30 days, from the per-day aggregates (a few rows)."""
    days = series.daily_in_vs_sales(session)
    return str(charts.lines("Entradas y ventas por día, últimos 30 días (unidades)", [f"{d:%d/%m}" for d, _, _ in days],
                            [("Entradas", "c-in", [i for _, i, _ in days]), ("Ventas", "c-out", [o for _, _, o in days])]))


@router.get("/", response_class=HTMLResponse)
def home(request: Request, user: SessionUser = Depends(page_user(READ))) -> HTMLResponse:
    db = request.app.state.db
    now = utcnow()
    day = store_day_start(now).date()
    with db.read() as session:  # one unit of work for every number of the page
        marker = change_marker(session)
        kpis, rows = compute_kpis(session, marker, now)
        lagging = count_lagging(session)
        firing = count_firing(session)
        empty = kpis.active_products == 0
        flow = None if empty else flow_chart(session)
    if rows > FOLD_ROWS:
        fold_aggregates(db)
    kept = None if empty else request.app.state.charts.get()
    shown = None if empty else {**(kept or {}), "pending": kept is None, "flow": flow}
    response = render(request, "home.html", user, kpis=kpi_texts(kpis),
                      lagging=lagging, firing=firing, marker=kpis.marker,
                      empty=empty, charts=shown, day=day, week=store_week_start(now).date())
    # Kept (web/kept_pages.py) only as drawn for the day it counted and with the charts it shows.
    return keep(request, response, key=home_key(day, kept["stamp"]) if kept is not None else "")


@router.get("/eventos/inicio")
async def home_events(request: Request) -> StreamingResponse:
    """Server-sent events: `kpis` with Inicio's numbers whenever the store's change marker moves.

    Works across processes and replicas: every stream polls the marker in the database.
    """
    user = await run_in_threadpool(session_user, request)
    if user is None or user.role not in READ:
        return StreamingResponse(iter(["retry: 30000\nevent: fin\ndata: {}\n\n"]), status_code=401,
                                 media_type="text/event-stream")
    db = request.app.state.db
    since = request.query_params.get("desde", "")

    async def stream() -> AsyncIterator[str]:
        shown: dict[str, str] | None = None
        yield "retry: 3000\n\n"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STREAM_SECONDS
        while loop.time() < deadline:
            if await request.is_disconnected():
                return
            kpis = await run_in_threadpool(current_kpis, db)
            values = kpi_texts(kpis)
            # The first time: when the page's marker is not the current one; then whenever a number moved
            # (a price change moves the stock value without a movement).
            if (shown is None and str(kpis.marker) != since) or (shown is not None and values != shown):
                payload = json.dumps({"marker": kpis.marker, "values": values}, ensure_ascii=False)
                yield f"event: kpis\nid: {kpis.marker}\ndata: {payload}\n\n"
            shown = values
            await asyncio.sleep(POLL_SECONDS)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
