"""Jinja2 for the dashboard: one environment, es-AR filters, and `render` that adds what every page needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from minimarket.accounts.sessions import SessionUser
from minimarket.ar.dates import format_date, format_datetime
from minimarket.ar.money import format_ars, format_number, format_percent, format_qty
from minimarket.catalog.models import Product
from minimarket.web.nav import visible_pages

TEMPLATES = Path(__file__).parent / "templates"

env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def format_actor(actor: str | None) -> str:
    """Who did it, as a person reads it: `usuario:maria` is "maria", `apikey:caja-1` is "clave caja-1"."""
    if not actor:
        return "—"
    kind, _, name = actor.partition(":")
    if not name:
        return actor
    return {"usuario": name, "apikey": f"clave {name}"}.get(kind, actor)


env.filters.update(money=format_ars, qty=format_qty, number=format_number, percent=format_percent,
                   date=format_date, datetime=format_datetime, who=format_actor)

MOVEMENT_LABELS = {"entrada": "Entrada", "venta": "Venta", "salida": "Salida", "ajuste": "Ajuste", "merma": "Merma",
                   "devolucion": "Devolución", "transferencia": "Transferencia"}
ROLE_LABELS = {"admin": "Administración", "encargado": "Encargado", "deposito": "Depósito", "lectura": "Sólo lectura"}
env.globals.update(movement_labels=MOVEMENT_LABELS, role_labels=ROLE_LABELS)


def no_products(session: Session) -> bool:
    """A new store: no product at all yet (the pages then say what to do first); read in the page's own session."""
    return session.scalar(select(Product.id).limit(1)) is None


def render(request: Request, template: str, user: SessionUser | None, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    """A full page: the template plus the signed-in user, the navigation they may use and their CSRF token."""
    charts = getattr(request.app.state, "charts", None)
    if charts is not None:
        charts.warm()  # Inicio's charts are drawn before anybody opens Inicio (cheap once they are)
    html = env.get_template(template).render(
        request=request, user=user, nav=visible_pages(user.role) if user else [],
        csrf=user.csrf if user else "", current=request.url.path, **context,
    )
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})
