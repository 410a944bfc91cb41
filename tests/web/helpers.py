"""Helpers for the dashboard's tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import html
import re

from minimarket.accounts.audit import Context
from minimarket.accounts.sessions import SESSION_COOKIE, load_session, start_session
from minimarket.accounts.users import create_user

PASSWORD = "contrasena-de-prueba"


def add_user(app, role: str, username: str | None = None, password: str = PASSWORD) -> str:  # noqa: ANN001
    with app.state.db.write() as session:
        return create_user(session, Context(actor="test"), username=username or f"u-{role}", role=role,
                           password=password).username


def sign_in(app, client, role: str, username: str | None = None) -> str:  # noqa: ANN001
    """A user of `role` with an open session whose cookie the client now carries; returns its CSRF token."""
    from minimarket.accounts.users import get_user

    name = username or f"u-{role}"
    with app.state.db.write() as session:
        try:
            user = get_user(session, name)
        except Exception:  # noqa: BLE001 - first sign-in of this user
            user = create_user(session, Context(actor="test"), username=name, role=role, password=PASSWORD)
        token = start_session(session, user=user, ip="127.0.0.1")
    client.cookies.set(SESSION_COOKIE, token)
    with app.state.db.read() as session:
        return load_session(session, token).csrf


def login_form_token(client) -> str:  # noqa: ANN001
    page = client.get("/ingresar")
    assert page.status_code == 200, page.text
    return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def form_key(html: str) -> str:
    return re.search(r'name="idempotency_key" value="([^"]+)"', html).group(1)


def alerts(page: str) -> list[str]:
    """The error messages a page shows, unescaped."""
    return [html.unescape(m) for m in re.findall(r'role="alert">([^<]+)<', page)]


ORDER_SUPPLIER = "Distribuidora Pedidos"


def order_supplier(app) -> int:  # noqa: ANN001
    """A supplier with one product to order (PEDIR-1: nothing in stock, minimum 5, maximum 20): made on first use."""
    from sqlalchemy import select

    from minimarket.catalog.schemas import ProductCreate
    from minimarket.catalog.service import create_product
    from minimarket.suppliers.models import Supplier
    from minimarket.suppliers.schemas import SupplierCreate
    from minimarket.suppliers.service import create_supplier

    with app.state.db.write() as session:
        found = session.scalar(select(Supplier.id).where(Supplier.name == ORDER_SUPPLIER))
        if found:
            return found
        supplier = create_supplier(session, Context(actor="test"), data=SupplierCreate(
            name=ORDER_SUPPLIER, phone="11 4000-1234", lead_time_days=2))
        create_product(session, Context(actor="test"), data=ProductCreate(
            sku="PEDIR-1", name="Galletitas de agua", supplier=ORDER_SUPPLIER, cost="500", price="900", min_stock=5,
            max_stock=20))
        return supplier.id


def a_purchase_order(app, *, sent: bool = False, quantity: int = 10) -> int:  # noqa: ANN001
    """A new order of PEDIR-1 to the order supplier, a draft or sent."""
    from minimarket.purchasing.order_schemas import OrderIn
    from minimarket.purchasing.orders import create_order, send_order

    supplier = order_supplier(app)
    with app.state.db.write() as session:
        order = create_order(session, Context(actor="test"), data=OrderIn(
            supplier=str(supplier), lines=[{"sku": "PEDIR-1", "quantity": quantity}]))
        if sent:
            send_order(session, Context(actor="test"), order_id=order.id)
        return order.id
