"""Mounts the dashboard on an app: static files, the page routers, and HTML answers for page errors."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from minimarket.accounts.users import dummy_hash
from minimarket.platform.read_cache import ReadCache
from minimarket.web import (alerts, auth, forecast, home, inventory, invoice_entry, invoices, movements,
                            order_actions, orders, prices, reports, settings, stocktake, suppliers)
from minimarket.web.auth import LoginRequired, PageForbidden, login_redirect
from minimarket.web.kept_pages import install_kept_pages
from minimarket.web.templating import render

STATIC = Path(__file__).parent / "static"
# Every page router, in navigation order; a new page adds its router here (and its Page in nav.py).
PAGE_ROUTERS = [auth.router, home.router, inventory.router, movements.router, stocktake.router, prices.router,
                suppliers.router, invoice_entry.router, invoices.router, orders.router, order_actions.router,
                forecast.router, reports.router, alerts.router, settings.router]


def install_web(app: FastAPI) -> None:
    dummy_hash()  # made before the first login, so the first unknown name is no slower than the rest
    # Verified sessions kept in this process, only with Redis (see accounts/sessions.py, like app.state.key_cache).
    app.state.session_cache = ReadCache(app.state.cache, ttl=60, max_items=2_000,
                                        enabled=app.state.cache.kind == "redis")
    app.state.charts = home.KeptCharts(app.state.db)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    for router in PAGE_ROUTERS:
        app.include_router(router)
    install_kept_pages(app, PAGE_ROUTERS)  # the innermost middleware: a kept page is answered before FastAPI's router

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _exc: LoginRequired) -> Response:
        return login_redirect(request)

    @app.exception_handler(PageForbidden)
    async def _forbidden(request: Request, exc: PageForbidden) -> HTMLResponse:
        return render(request, "error.html", exc.user, status_code=403, heading="No permitido", message=exc.message)
