"""The dashboard's pages, declared once: path, title and who may use them.

Adding a page: write a router in `web/<page>.py` (its routes take `page_user(PERMISSION)` or
`form_user(PERMISSION)`), add a `Page` here (it appears in the navigation for the roles that may
use it), include the router in `web/install.py`, and add its routes to `tests/web/test_page_roles.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

from minimarket.accounts.permissions import READ, STOCK_WRITE


@dataclass(frozen=True)
class Page:
    path: str
    title: str
    roles: frozenset[str]


PAGES: tuple[Page, ...] = (
    Page("/", "Inicio", READ),
    Page("/inventario", "Inventario", READ),
    Page("/movimientos", "Movimientos", READ),
    Page("/recuento", "Recuento", STOCK_WRITE),
    Page("/precios", "Precios", READ),
    Page("/proveedores", "Proveedores", READ),
    Page("/facturas", "Facturas", READ),
    Page("/pedidos", "Pedidos", READ),
    Page("/pronostico", "Pronóstico", READ),
    Page("/reportes", "Reportes", READ),
    Page("/alertas", "Alertas", READ),
    Page("/configuracion", "Configuración", READ),
)


def visible_pages(role: str) -> list[Page]:
    return [page for page in PAGES if role in page.roles]
