"""Pages kept in this process: a page nothing has changed since it was drawn is answered before FastAPI's
router, on the event loop: no worker thread, no database, no template.

Like the API's kept answers (platform/read_cache.py, stock/list_reads.py), a page is kept under the cache
versions of what it shows, read in the request's Redis round trip *before* the route reads the database,
and bumped by every writer *after* its commit; so a page requested after a write's answer went out never
shows the store as it was before that write, in any process sharing Redis. What each page depends on:

* Inicio: `catalog` (any write but a stock movement: products, prices, alerts, settings — the lagging-prices
  count too, pricing.lagging), `ledger` (every stock movement, stock.ledger), and, in its key, the
  store's day (sales of the day and the week) and the drawing of the charts it shows (web/home.py);
* a list of Inventario: `catalog`, the `product:<SKU>` of each product it lists and, filtered by low or no
  stock, `lists:low` and `lists:out` (stock.totals). Which products a page lists is known only after reading
  it: as for GET /api/inventory, its first view only remembers them and the next one keeps the page;
* a product: `catalog` and its `product:<SKU>`;
* Movimientos: `catalog` (locations) and `ledger`;
* pages drawn from what only non-stock writes change (the movement and count forms, Alertas, Proveedores, a
  supplier's header, Facturas and an invoice, Precios, Pedidos, Reportes): `catalog`; those that also show
  stock or sales (a supplier with its products, an order, what to order, Pronóstico): `catalog` and `ledger`, and, when
  "today" decides what they show (suggestions, forecasts, top sellers), the store's day in their key;
* Configuración: `catalog` (settings, users, keys: none of those writes is narrow) and `last_seen`.

A page carries its user's name, role and CSRF token, so it is kept per session, and served only to that
session while `kept_session` (accounts/sessions.py: verified moments ago under `auth`, nothing due) says it
is valid, and to a role its route admits (read from the route's `page_user`). A form's retry key
(`idempotency_key`) is the one thing a page must not repeat: a page kept with its form key gets a new one each
time it is served (`keep(…, form_key=…)`), so two views of a form never share a key. Anything else (no Redis,
a session to verify or slide, a role the page refuses, a page not kept yet) goes on to the route, which draws
the page and keeps it. Configuración also shows each API key's last use and each user's last login, written as
bookkeeping that changes nothing else: those writes bump `last_seen` only, and the page is kept under it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from starlette.routing import Match

from minimarket.accounts.keys import AUTH_VERSION, LAST_SEEN_VERSION
from minimarket.accounts.sessions import kept_session, session_id_of
from minimarket.ar.dates import store_day_start
from minimarket.api.gate import session_token
from minimarket.platform.read_cache import CATALOG, ReadCache, product_version, request_versions, token_of
from minimarket.stock.ledger import LEDGER_VERSION
from minimarket.stock.list_reads import PageCache  # kept bytes + the SKUs each list showed last time
from minimarket.stock.totals import LOW_LISTS, OUT_LISTS

_PENDING = "kept_page"  # scope["state"]: (stored key, the names' token) the route may keep its page under
_HEADERS = [(b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"no-store")]



@dataclass(frozen=True)
class Wanted:
    """What a request's page is kept under: its key, the versions it depends on, and for a list the SKUs
    those versions were read for (the route keeps the page only if it lists exactly these)."""

    key: str
    names: tuple[str, ...]
    skus: tuple[str, ...] | None = None
    drawn: str | None = None  # what the route's keep() names the page by, when not `key` (a key with the day)

    @property
    def route_key(self) -> str:
        return self.key if self.drawn is None else self.drawn


def page_key(scope: dict[str, Any]) -> str:
    """The page a request asks for: its path and query string as sent."""
    query = scope.get("query_string") or b""
    return scope["path"] + ("?" + query.decode("latin-1") if query else "")


def home_key(day: object, charts_stamp: float) -> str:
    """Inicio's key: the store's day and the drawing of its charts (both decide what it shows)."""
    return f"/?{day}:{charts_stamp!r}"


def product_sku(ref: str) -> str:
    """The SKU whose version a product page is kept under; the route keeps the page only if the product it
    found has exactly this SKU (a barcode, or any other spelling, is drawn each time)."""
    ref = ref.strip()
    return ref.upper() if ref.isascii() else ref


def _home(scope: dict[str, Any], store: PageCache) -> Wanted | None:
    stamp = scope["app"].state.charts.fresh_stamp()
    if stamp is None:  # no drawing yet, or one due to be redrawn: the route starts it
        return None
    return Wanted(home_key(store_day_start().date(), stamp), (CATALOG, LEDGER_VERSION))


def _inventory(scope: dict[str, Any], store: PageCache) -> Wanted | None:
    key = page_key(scope)
    skus = store.hint(key)
    if skus is None:
        return None
    names = [CATALOG]
    query = (scope.get("query_string") or b"").decode("latin-1")
    if any(name == "estado" and value for name, value in parse_qsl(query, keep_blank_values=True)):
        names += [LOW_LISTS, OUT_LISTS]  # filtered by stock: which products it lists moves with them
    return Wanted(key, (*names, *(product_version(sku) for sku in skus)), skus)


def _product(scope: dict[str, Any], store: PageCache) -> Wanted | None:
    ref = scope["path"][len("/inventario/"):]
    return Wanted(page_key(scope), (CATALOG, product_version(product_sku(ref))))


def _ledger(scope: dict[str, Any], store: PageCache) -> Wanted | None:
    return Wanted(page_key(scope), (CATALOG, LEDGER_VERSION))


def _catalog(scope: dict[str, Any], store: PageCache) -> Wanted | None:
    return Wanted(page_key(scope), (CATALOG,))


def _accounts(scope: dict[str, Any], store: PageCache) -> Wanted | None:
    """Configuración: settings, users and keys (catalog: every such write bumps it) and their last use (last_seen)."""
    return Wanted(page_key(scope), (CATALOG, LAST_SEEN_VERSION))


def _daily_ledger(scope: dict[str, Any], store: PageCache) -> Wanted | None:
    """Stock or sales as of the store's day (forecasts, suggestions, top sellers): kept for that day only."""
    key = page_key(scope)
    return Wanted(f"{key}#{store_day_start().date()}", (CATALOG, LEDGER_VERSION), drawn=key)


@dataclass(frozen=True)
class KeptPage:
    template: str  # the route's path template, as FastAPI matches it
    wanted: Callable[[dict[str, Any], PageCache], Wanted | None]


KEPT = (KeptPage("/", _home), KeptPage("/inventario", _inventory), KeptPage("/inventario/{sku}", _product),
        KeptPage("/movimientos", _ledger),
        KeptPage("/movimientos/nuevo", _catalog), KeptPage("/recuento", _catalog), KeptPage("/alertas", _catalog),
        KeptPage("/proveedores", _catalog), KeptPage("/proveedores/{supplier_id}", _ledger),
        KeptPage("/facturas", _catalog), KeptPage("/facturas/nueva", _catalog),
        KeptPage("/facturas/{invoice_id}", _catalog), KeptPage("/precios", _catalog),
        KeptPage("/pedidos", _catalog), KeptPage("/pedidos/nuevo", _daily_ledger),
        KeptPage("/pedidos/{order_id}", _ledger),
        KeptPage("/pronostico", _daily_ledger), KeptPage("/reportes", _catalog),
        KeptPage("/configuracion", _accounts))


def page_roles(route: APIRoute) -> frozenset[str]:
    """The roles a page's route admits: those of its `page_user(...)` dependency (web/auth.py)."""
    found = [getattr(dep.call, "page_roles", None) for dep in route.dependant.dependencies]
    roles = [r for r in found if r is not None]
    if len(roles) != 1:
        raise ValueError(f"{route.path}: a kept page's route takes exactly one page_user(...)")
    return roles[0]


def keep(request: Request, response: HTMLResponse, *, key: str | None = None,
         skus: Sequence[str] | None = None, form_key: str | None = None) -> HTMLResponse:
    """After a route drew a kept page: keep it under the versions read before its database read, if it is
    the page the request was keyed as (`key`: the route's own key when the page says more than its path,
    as Inicio) and, for a list, still lists the products its versions were read for (`skus`). `form_key`:
    the page's form retry key, replaced by a new one each time the kept page is served."""
    store: PageCache | None = getattr(request.app.state, "kept_pages", None)
    if store is None or not store.cache.enabled or response.status_code != 200:
        return response
    scope = request.scope
    pending: tuple[str, Wanted, tuple[str, ...] | None] | None = scope.get("state", {}).get(_PENDING)
    read = None if skus is None else tuple(skus)
    if read is not None and (pending is None or pending[1].skus != read):
        store.remember(page_key(scope), read)  # its next view reads the versions of these products
        return response
    if pending is not None and pending[1].route_key == (key or page_key(scope)):
        body = response.body if form_key is None else (response.body, form_key.encode())
        store.cache.put(pending[0], body, pending[2])
    return response


def _served(kept: bytes | tuple[bytes, bytes]) -> bytes:
    if isinstance(kept, bytes):
        return kept
    body, form_key = kept  # a new retry key for every view of the form (web/forms.py: new_form_key)
    return body.replace(form_key, uuid.uuid4().hex.encode())


class KeptPages:
    """Pure ASGI, inside every middleware (security headers, request id, metrics and log): answers GET of
    a kept page from `PageCache` and goes on to FastAPI otherwise."""

    def __init__(self, app, *, pages: Sequence[tuple[KeptPage, APIRoute, frozenset[str], Sequence[Any]]]):  # noqa: ANN001
        self.app = app
        self.exact = {page.template: (page, route, roles) for page, route, roles, _ in pages
                      if "{" not in page.template}
        # Pages with a path parameter: their prefix (/facturas/), and the routes before them that could take it.
        self.templated = [(page.template.split("{", 1)[0], (page, route, roles), earlier)
                          for page, route, roles, earlier in pages if "{" in page.template]

    def _match(self, scope: dict[str, Any]) -> tuple[KeptPage, APIRoute, frozenset[str]] | None:
        path = scope["path"]
        found = self.exact.get(path)
        if found is not None:
            return found
        for prefix, page, earlier in self.templated:
            if not path.startswith(prefix) or page[1].matches(scope)[0] != Match.FULL:
                continue
            if any(r.matches(scope)[0] != Match.NONE for r in earlier):
                return None  # an earlier route takes it (/inventario/sugerencias, /facturas/nueva)
            return page
        return None

    async def __call__(self, scope, receive, send):  # noqa: ANN001
        if scope["type"] != "http" or scope["method"] != "GET" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        found = self._match(scope)
        app = scope["app"]
        store: PageCache | None = getattr(app.state, "kept_pages", None)
        session_id = session_id_of(session_token(scope)) if found is not None else None
        if session_id is None or store is None or not store.cache.enabled:
            await self.app(scope, receive, send)
            return
        page, route, roles = found
        wanted = page.wanted(scope, store)
        if wanted is not None:
            versions = await request_versions(scope, app.state.cache, (AUTH_VERSION, *wanted.names))
            user = kept_session(app.state.session_cache, session_id, token_of(versions, (AUTH_VERSION,)))
            if user is not None and user.role in roles:
                stored = f"{session_id}:{wanted.key}"
                token = token_of(versions, wanted.names)
                scope.setdefault("state", {})[_PENDING] = (stored, wanted, token)  # for the route on a miss
                kept = store.cache.kept(stored, token)
                if kept is not None:
                    body = _served(kept)
                    scope["route"] = route
                    scope["state"]["actor"] = user.actor
                    await send({"type": "http.response.start", "status": 200,
                                "headers": [(b"content-length", str(len(body)).encode()), *_HEADERS]})
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)


def install_kept_pages(app: FastAPI, routers: Sequence[APIRouter]) -> None:
    """The kept pages' store and front (only with Redis: another process could not tell this one what it
    changed). `routers`: the page routers, in the order they are included (no page path is under /api)."""
    app.state.kept_pages = PageCache(ReadCache(app.state.cache, ttl=60, max_items=1_000,
                                               enabled=app.state.cache.kind == "redis"))
    routes = [r for router in routers for r in router.routes if isinstance(r, APIRoute) and "GET" in r.methods]
    pages = []
    for page in KEPT:
        at = next(i for i, r in enumerate(routes) if r.path == page.template)
        # Routes listed before it that could take some of its paths (FastAPI matches in order).
        if "{" in page.template:
            earlier = [r for r in routes[:at] if r.path.startswith(page.template.split("{", 1)[0])]
        elif any(r.path_regex.match(page.template) for r in routes[:at]):
            raise ValueError(f"{page.template}: an earlier route answers it, it cannot be kept")
        else:
            earlier = []
        pages.append((page, routes[at], page_roles(routes[at]), earlier))
    app.add_middleware(KeptPages, pages=pages)
