"""Who may use which page or action, as a declarative table (role × route), checked over HTTP on both backends.

Every route outside /api that is not one of the open operational routes must appear in PAGE_ROLES:
a new page or action that is not declared here fails `test_every_page_route_declares_its_roles`.
A role outside the allowed set gets 403 (and no change), a request without session is sent to
/ingresar, and a form without the session's CSRF token is refused with 403.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

from minimarket.accounts.models import ApiKey, User
from minimarket.catalog.models import Product
from minimarket.invoices.models import Invoice, InvoiceLine
from minimarket.pricing.models import PriceBatch
from minimarket.purchasing.models import PurchaseOrder, PurchaseOrderLine
from minimarket.store_settings import StoreSetting
from minimarket.suppliers.models import Supplier
from minimarket.web.nav import PAGES
from tests.integration.helpers import movement_rows
from tests.integration.test_auth_roles import OPEN_ROUTES, served_routes
from tests.web.helpers import a_purchase_order, add_user, alerts, order_supplier, sign_in

ROLES = ("admin", "encargado", "deposito", "lectura")
EVERYONE = frozenset(ROLES)
STOCK = frozenset({"admin", "encargado", "deposito"})
CATALOG = frozenset({"admin", "encargado"})
ADMIN = frozenset({"admin"})

# (method, route template) → roles that may use it.
PAGE_ROLES: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/"): EVERYONE,
    ("GET", "/inventario"): EVERYONE,
    ("GET", "/inventario/sugerencias"): EVERYONE,
    ("GET", "/inventario/{sku}"): EVERYONE,
    ("GET", "/movimientos"): EVERYONE,
    ("GET", "/movimientos/nuevo"): STOCK,
    ("POST", "/movimientos/nuevo"): STOCK,
    ("GET", "/recuento"): STOCK,
    ("POST", "/recuento/revisar"): STOCK,
    ("POST", "/recuento/confirmar"): STOCK,
    ("GET", "/precios/atrasados"): EVERYONE,
    ("GET", "/precios"): EVERYONE,
    ("GET", "/precios/vista-previa"): CATALOG,
    ("POST", "/precios/aplicar"): CATALOG,
    ("POST", "/precios/lotes/{batch_id}/deshacer"): CATALOG,
    ("GET", "/proveedores"): EVERYONE,
    ("GET", "/proveedores/nuevo"): CATALOG,
    ("POST", "/proveedores/nuevo"): CATALOG,
    ("GET", "/proveedores/{supplier_id}"): EVERYONE,
    ("GET", "/proveedores/{supplier_id}/editar"): CATALOG,
    ("POST", "/proveedores/{supplier_id}/editar"): CATALOG,
    ("GET", "/facturas"): EVERYONE,
    ("GET", "/facturas/nueva"): CATALOG,
    ("POST", "/facturas/nueva"): CATALOG,
    ("POST", "/facturas/importar"): CATALOG,
    ("GET", "/facturas/{invoice_id}"): EVERYONE,
    ("POST", "/facturas/{invoice_id}/asociar"): CATALOG,
    ("POST", "/facturas/{invoice_id}/confirmar"): CATALOG,  # and deposito where the store allows it (own test)
    ("POST", "/facturas/{invoice_id}/anular"): CATALOG,
    ("GET", "/pedidos"): EVERYONE,
    ("GET", "/pedidos/nuevo"): CATALOG,
    ("POST", "/pedidos/nuevo"): CATALOG,
    ("GET", "/pedidos/{order_id}"): EVERYONE,
    ("GET", "/pedidos/{order_id}/pedido.pdf"): EVERYONE,
    ("GET", "/pedidos/{order_id}/whatsapp.txt"): EVERYONE,
    ("POST", "/pedidos/{order_id}/editar"): CATALOG,
    ("POST", "/pedidos/{order_id}/enviar"): CATALOG,
    ("POST", "/pedidos/{order_id}/cancelar"): CATALOG,
    ("POST", "/pedidos/{order_id}/recibir"): STOCK,
    ("GET", "/pronostico"): EVERYONE,
    ("GET", "/reportes"): EVERYONE,
    ("GET", "/alertas"): EVERYONE,
    ("GET", "/reportes/inventario.{formato}"): EVERYONE,
    ("GET", "/reportes/movimientos.{formato}"): EVERYONE,
    ("GET", "/reportes/pedidos.{formato}"): EVERYONE,
    ("GET", "/reportes/precios-atrasados.{formato}"): EVERYONE,
    ("GET", "/configuracion"): EVERYONE,
    ("POST", "/configuracion/claves"): EVERYONE,
    ("POST", "/configuracion/claves/revocar"): EVERYONE,
    ("POST", "/configuracion/usuarios"): ADMIN,
    ("POST", "/configuracion/usuarios/estado"): ADMIN,
    ("POST", "/configuracion/usuarios/contrasena"): ADMIN,
    ("POST", "/configuracion/stock-negativo"): ADMIN,
    ("POST", "/configuracion/precios"): ADMIN,
    ("POST", "/configuracion/tienda"): ADMIN,
    ("POST", "/configuracion/alertas"): ADMIN,
    ("POST", "/configuracion/facturas"): ADMIN,
    ("POST", "/configuracion/iva"): ADMIN,
    ("POST", "/salir"): EVERYONE,
    ("GET", "/eventos/inicio"): EVERYONE,  # a stream: checked in test_home.py (401 without a session)
}
# The login page is the one page open to everyone.
PUBLIC_PAGES = {("GET", "/ingresar"), ("POST", "/ingresar")}

# A valid request for each route; `n` makes each call unique; `csrf` is the session's token.
Req = tuple[str, dict | None]
REQUESTS: dict[tuple[str, str], Callable[[int, str], Req]] = {
    ("GET", "/"): lambda n, c: ("/", None),
    ("GET", "/inventario"): lambda n, c: ("/inventario?q=yerba", None),
    ("GET", "/inventario/sugerencias"): lambda n, c: ("/inventario/sugerencias?q=yer", None),
    ("GET", "/inventario/{sku}"): lambda n, c: ("/inventario/YERBA-1", None),
    ("GET", "/movimientos"): lambda n, c: ("/movimientos?producto=YERBA-1", None),
    ("GET", "/movimientos/nuevo"): lambda n, c: ("/movimientos/nuevo", None),
    ("POST", "/movimientos/nuevo"): lambda n, c: ("/movimientos/nuevo", {
        "csrf": c, "producto": "YERBA-1", "cantidad": "1", "tipo": "entrada", "idempotency_key": f"k-{n}"}),
    ("GET", "/recuento"): lambda n, c: ("/recuento", None),
    ("POST", "/recuento/revisar"): lambda n, c: ("/recuento/revisar", {"csrf": c, "ubicacion": "DEP",
                                                                       "escaneos": "YERBA-1 3"}),
    ("POST", "/recuento/confirmar"): lambda n, c: ("/recuento/confirmar", {
        "csrf": c, "ubicacion": "SAL", "sku": "YERBA-1", "contado": str(n + 1), "idempotency_key": f"r-{n}"}),
    ("GET", "/precios/atrasados"): lambda n, c: ("/precios/atrasados", None),
    ("GET", "/precios"): lambda n, c: ("/precios", None),
    ("GET", "/precios/vista-previa"): lambda n, c: ("/precios/vista-previa?categoria=Almac%C3%A9n&porcentaje=10", None),
    ("POST", "/precios/aplicar"): lambda n, c: ("/precios/aplicar", {
        "csrf": c, "categoria": "Almacén", "operacion": "price_percent", "porcentaje": str(n + 1),
        "idempotency_key": f"p-{n}"}),
    ("POST", "/precios/lotes/{batch_id}/deshacer"): lambda n, c: ("/precios/lotes/{batch}/deshacer", {
        "csrf": c, "idempotency_key": f"d-{n}"}),
    ("GET", "/proveedores"): lambda n, c: ("/proveedores?q=norte", None),
    ("GET", "/proveedores/nuevo"): lambda n, c: ("/proveedores/nuevo", None),
    ("POST", "/proveedores/nuevo"): lambda n, c: ("/proveedores/nuevo", {"csrf": c, "nombre": f"Proveedor {n}",
                                                                        "dias": ["lunes", "jueves"], "plazo": "2"}),
    ("GET", "/proveedores/{supplier_id}"): lambda n, c: ("/proveedores/{supplier}", None),
    ("GET", "/proveedores/{supplier_id}/editar"): lambda n, c: ("/proveedores/{supplier}/editar", None),
    ("POST", "/proveedores/{supplier_id}/editar"): lambda n, c: ("/proveedores/{supplier}/editar", {
        "csrf": c, "nombre": "Distribuidora Norte", "telefono": f"11-4000-{n:04d}", "activo": "si"}),
    ("GET", "/facturas"): lambda n, c: ("/facturas?estado=borrador", None),
    ("GET", "/facturas/nueva"): lambda n, c: ("/facturas/nueva", None),
    ("POST", "/facturas/nueva"): lambda n, c: ("/facturas/nueva", {
        "csrf": c, "proveedor": "{supplier}", "tipo": "A", "numero": f"0001-{n + 1:08d}", "fecha": "20/11/2026",
        "total": "242", "l1_codigo": "7790001000019", "l1_cantidad": "2", "l1_costo": "100", "l1_iva": "21"}),
    ("POST", "/facturas/importar"): lambda n, c: ("/facturas/importar", {
        "csrf": c, "_files": {"archivo": ("f.csv", "proveedor;tipo;numero;fecha;total;codigo_barras;cantidad;"
                                                  f"costo_unitario\n30-71234567-1;A;0002-{n + 1:08d};2026-11-20;121;"
                                                  "7790001000019;1;100\n", "text/csv")}}),
    ("GET", "/facturas/{invoice_id}"): lambda n, c: ("/facturas/{invoice}", None),
    ("POST", "/facturas/{invoice_id}/asociar"): lambda n, c: ("/facturas/{unmatched}/asociar", {
        "csrf": c, "producto_2": "BAJA-1"}),
    ("POST", "/facturas/{invoice_id}/confirmar"): lambda n, c: ("/facturas/{invoice}/confirmar", {
        "csrf": c, "idempotency_key": f"f-{n}"}),
    ("POST", "/facturas/{invoice_id}/anular"): lambda n, c: ("/facturas/{invoice}/anular", {
        "csrf": c, "motivo": "Cargada dos veces"}),
    # {draft} and {sent}: a new purchase order made for the request; {orders_supplier} has PEDIR-1 to order.
    ("GET", "/pedidos"): lambda n, c: ("/pedidos?estado=borrador", None),
    ("GET", "/pedidos/nuevo"): lambda n, c: ("/pedidos/nuevo?proveedor={orders_supplier}", None),
    ("POST", "/pedidos/nuevo"): lambda n, c: ("/pedidos/nuevo", {"csrf": c, "proveedor": "{orders_supplier}",
                                                                "sku": "PEDIR-1", "idempotency_key": f"p-{n}"}),
    ("GET", "/pedidos/{order_id}"): lambda n, c: ("/pedidos/{sent}", None),
    ("GET", "/pedidos/{order_id}/pedido.pdf"): lambda n, c: ("/pedidos/{draft}/pedido.pdf", None),
    ("GET", "/pedidos/{order_id}/whatsapp.txt"): lambda n, c: ("/pedidos/{draft}/whatsapp.txt", None),
    ("POST", "/pedidos/{order_id}/editar"): lambda n, c: ("/pedidos/{draft}/editar", {
        "csrf": c, "sku": "PEDIR-1", "cantidad": "7", "bulto": "1", "notas": f"nota {n}"}),
    ("POST", "/pedidos/{order_id}/enviar"): lambda n, c: ("/pedidos/{draft}/enviar", {"csrf": c}),
    ("POST", "/pedidos/{order_id}/cancelar"): lambda n, c: ("/pedidos/{draft}/cancelar", {"csrf": c,
                                                                                        "motivo": "prueba"}),
    ("POST", "/pedidos/{order_id}/recibir"): lambda n, c: ("/pedidos/{sent}/recibir", {
        "csrf": c, "sku": "PEDIR-1", "recibido": "1", "ubicacion": "DEP", "idempotency_key": f"q-{n}"}),
    ("GET", "/pronostico"): lambda n, c: ("/pronostico?evaluar=1", None),
    ("GET", "/reportes"): lambda n, c: ("/reportes", None),
    ("GET", "/alertas"): lambda n, c: ("/alertas?estado=activa", None),
    ("GET", "/reportes/inventario.{formato}"): lambda n, c: ("/reportes/inventario.csv", None),
    ("GET", "/reportes/movimientos.{formato}"): lambda n, c: ("/reportes/movimientos.csv?producto=YERBA-1", None),
    ("GET", "/reportes/pedidos.{formato}"): lambda n, c: ("/reportes/pedidos.csv?estado=enviado", None),
    ("GET", "/reportes/precios-atrasados.{formato}"): lambda n, c: ("/reportes/precios-atrasados.xlsx", None),
    ("GET", "/configuracion"): lambda n, c: ("/configuracion", None),
    ("POST", "/configuracion/claves"): lambda n, c: ("/configuracion/claves", {"csrf": c, "nombre": f"clave-{n}"}),
    ("POST", "/configuracion/claves/revocar"): lambda n, c: ("/configuracion/claves/revocar",
                                                             {"csrf": c, "prefijo": "{own}"}),
    ("POST", "/configuracion/usuarios"): lambda n, c: ("/configuracion/usuarios", {
        "csrf": c, "usuario": f"nuevo-{n}", "rol": "lectura", "contrasena": "una-clave-larga"}),
    ("POST", "/configuracion/usuarios/estado"): lambda n, c: ("/configuracion/usuarios/estado", {
        "csrf": c, "usuario": "victima", "accion": "deshabilitar" if n % 2 == 0 else "habilitar"}),
    ("POST", "/configuracion/usuarios/contrasena"): lambda n, c: ("/configuracion/usuarios/contrasena", {
        "csrf": c, "usuario": "victima", "contrasena": f"otra-clave-{n:04d}"}),
    ("POST", "/configuracion/stock-negativo"): lambda n, c: ("/configuracion/stock-negativo",
                                                            {"csrf": c, "permitir": "no"}),
    ("POST", "/configuracion/precios"): lambda n, c: ("/configuracion/precios", {
        "csrf": c, "margen": "40", "redondeo": "10", "inflacion": "3,5"}),
    ("POST", "/configuracion/tienda"): lambda n, c: ("/configuracion/tienda", {
        "csrf": c, "nombre": f"Minimercado {n}", "cuit": "20-12345678-6", "direccion": "Av. Corrientes 1234"}),
    ("POST", "/configuracion/alertas"): lambda n, c: ("/configuracion/alertas", {
        "csrf": c, "emails": f"encargado{n}@minimercado.com.ar, duena@minimercado.com.ar"}),
    ("POST", "/configuracion/facturas"): lambda n, c: ("/configuracion/facturas", {
        "csrf": c, "deposito": "si" if n % 2 else "no"}),
    ("POST", "/configuracion/iva"): lambda n, c: ("/configuracion/iva", {
        "csrf": c, "condicion": ("monotributo", "exento", "responsable_inscripto")[n % 3]}),
    ("POST", "/salir"): lambda n, c: ("/salir", {"csrf": c}),
}
SKIPPED_IN_TABLE = {("GET", "/eventos/inicio"), ("POST", "/salir")}  # a stream; ends the session (own test)


def page_routes(app) -> set[tuple[str, str]]:  # noqa: ANN001
    # "/" is open on deposito and negocio (a redirect to /docs) but Inicio on the dashboard.
    return {(m, p) for m, p in served_routes(app) if not p.startswith("/api") and p not in OPEN_ROUTES - {"/"}}


def state(app) -> tuple:  # noqa: ANN001
    """What a refused action must not change: ledger rows, users (and their state), API keys, prices, the rest of
    the catalogue and the store's settings."""
    with app.state.db.read() as session:
        users = session.execute(select(User.username, User.active, User.password_hash).order_by(User.id)).all()
        keys = session.execute(select(ApiKey.prefix, ApiKey.revoked_at).order_by(ApiKey.id)).all()
        prices = session.execute(select(Product.sku, Product.cost, Product.price).order_by(Product.id)).all()
        batches = session.execute(select(PriceBatch.id, PriceBatch.undone_at).order_by(PriceBatch.id)).all()
        settings = session.execute(select(StoreSetting.key, StoreSetting.value).order_by(StoreSetting.key)).all()
        suppliers = session.execute(select(Supplier.id, Supplier.name, Supplier.phone, Supplier.active)
                                    .order_by(Supplier.id)).all()
        invoices = session.execute(select(Invoice.id, Invoice.state).order_by(Invoice.id)).all()
        lines = session.execute(select(InvoiceLine.id, InvoiceLine.product_id).order_by(InvoiceLine.id)).all()
        orders = session.execute(select(PurchaseOrder.id, PurchaseOrder.state, PurchaseOrder.notes)
                                 .order_by(PurchaseOrder.id)).all()
        order_lines = session.execute(select(PurchaseOrderLine.id, PurchaseOrderLine.quantity,
                                             PurchaseOrderLine.received).order_by(PurchaseOrderLine.id)).all()
    return movement_rows(app), users, keys, prices, batches, settings, suppliers, invoices, lines, orders, order_lines


def test_every_page_route_declares_its_roles(app):
    served = page_routes(app) - PUBLIC_PAGES
    assert served - set(PAGE_ROLES) == set(), f"page routes without a role declaration: {served - set(PAGE_ROLES)}"
    assert set(PAGE_ROLES) - served == set(), f"PAGE_ROLES names routes no longer served: {set(PAGE_ROLES) - served}"
    assert set(REQUESTS) | SKIPPED_IN_TABLE == set(PAGE_ROLES)
    for page in PAGES:  # the navigation only names declared pages, with the same roles
        assert PAGE_ROLES[("GET", page.path)] == page.roles, page.path


def _fresh_batch(app) -> int:  # noqa: ANN001
    """A price batch nothing changed since (so undoing it is allowed)."""
    from decimal import Decimal

    from minimarket.accounts.audit import Context
    from minimarket.pricing.bulk import apply_bulk
    from minimarket.pricing.schemas import BulkChangeIn

    change = BulkChangeIn(filter={"category": "Almacén"}, operation="price_percent", percent=Decimal("1"))
    with app.state.db.write() as session:
        return apply_bulk(session, Context(actor="test"), change=change).id


def resolve(app, path: str, body: dict | None, username: str) -> tuple[str, dict | None]:  # noqa: ANN001
    """Fill a request's placeholders with rows made just for it: the user's own key, a batch to undo."""
    if body and body.get("prefijo") == "{own}":
        body["prefijo"] = _own_key(app, username)
    if "{batch}" in path:
        path = path.replace("{batch}", str(_fresh_batch(app)))
    if "{supplier}" in path or (body and body.get("proveedor") == "{supplier}"):
        path = path.replace("{supplier}", str(a_supplier(app)))
        if body and body.get("proveedor") == "{supplier}":
            body["proveedor"] = str(a_supplier(app))
    for name, unmatched in (("{invoice}", False), ("{unmatched}", True)):
        if name in path:
            path = path.replace(name, str(a_draft_invoice(app, unmatched=unmatched)))
    if "{draft}" in path:
        path = path.replace("{draft}", str(a_purchase_order(app)))
    if "{sent}" in path:  # 2 on order: PEDIR-1 (minimum 5) is still suggested
        path = path.replace("{sent}", str(a_purchase_order(app, sent=True, quantity=2)))
    if "{orders_supplier}" in path or (body and body.get("proveedor") == "{orders_supplier}"):
        path = path.replace("{orders_supplier}", str(order_supplier(app)))
        if body and body.get("proveedor") == "{orders_supplier}":
            body["proveedor"] = str(order_supplier(app))
    return path, body


def send(client, method: str, path: str, body: dict | None):  # noqa: ANN001, ANN201
    """The request, with a form's `_files` sent as multipart."""
    files = body.pop("_files", None) if body else None
    return client.request(method, path, data=body, files=files, follow_redirects=False)


_invoices = iter(range(1, 10**6))


def a_draft_invoice(app, *, unmatched: bool) -> int:  # noqa: ANN001
    """A fresh draft from Distribuidora Norte: 2 × YERBA-1 (matched), plus a line by the supplier's code."""
    from decimal import Decimal

    from minimarket.accounts.audit import Context
    from minimarket.invoices.schemas import InvoiceIn
    from minimarket.invoices.service import create_invoice

    lines = [{"barcode": "7790001000019", "quantity": "2", "unit_cost": "100"}]
    if unmatched:
        lines.append({"supplier_code": "NORTE-9", "description": "Producto nuevo", "quantity": "1", "unit_cost": "100"})
    net = Decimal(100 * len(lines) + 100)
    data = InvoiceIn(supplier=str(a_supplier(app)), type="A", point_of_sale=9, number=next(_invoices),
                     date="2026-11-20", net={"21": net}, vat={"21": net * Decimal("0.21")}, total=net * Decimal("1.21"),
                     lines=lines)
    with app.state.db.write() as session:
        return create_invoice(session, Context(actor="test"), data=data).id


def a_supplier(app) -> int:  # noqa: ANN001
    """The id of 'Distribuidora Norte', made on first use."""
    from minimarket.accounts.audit import Context
    from minimarket.suppliers.schemas import SupplierCreate
    from minimarket.suppliers.service import create_supplier

    with app.state.db.write() as session:
        found = session.scalar(select(Supplier.id).where(Supplier.name == "Distribuidora Norte"))
        return found or create_supplier(session, Context(actor="test"), data=SupplierCreate(
            name="Distribuidora Norte", cuit="30-71234567-1")).id


def _own_key(app, username: str) -> str:  # noqa: ANN001
    from minimarket.accounts.audit import Context
    from minimarket.accounts.keys import create_api_key
    from minimarket.accounts.users import get_user

    with app.state.db.write() as session:
        user = get_user(session, username)
        row, _ = create_api_key(session, Context(actor="test"), name="propia", role=user.role, user_id=user.id)
        return row.prefix


@pytest.mark.parametrize("role", ROLES)
def test_page_role_table(client, app, shop, role):
    add_user(app, "lectura", "victima")  # the target of the user actions
    csrf = sign_in(app, client, role)
    mismatches = []
    for n, route in enumerate(sorted(REQUESTS)):
        allowed = PAGE_ROLES[route]
        if route in SKIPPED_IN_TABLE:
            continue
        method, template = route
        path, body = resolve(app, *REQUESTS[route](n, csrf), f"u-{role}")
        before = None if role in allowed else state(app)  # only a refusal is checked for changes
        response = send(client, method, path, body)
        if role in allowed:
            if response.status_code not in (200, 201, 303):
                mismatches.append(f"{method} {template}: {role} should be allowed, got {response.status_code} "
                                  f"{alerts(response.text) or response.text[:300]}")
        elif response.status_code != 403 or "No permitido" not in response.text:
            mismatches.append(f"{method} {template}: {role} should get 403, got {response.status_code}")
        elif state(app) != before:
            mismatches.append(f"{method} {template}: a refused {role} request changed data")
    assert not mismatches, "\n".join(mismatches)


def test_navigation_shows_only_what_the_role_may_use(client, app, shop):
    for role in ROLES:
        client.cookies.clear()
        sign_in(app, client, role)
        html = client.get("/").text
        for page in PAGES:
            link = f'<a href="{page.path}"'
            assert (link in html) == (role in page.roles), (role, page.path)
        if role == "lectura":  # and no action it cannot take is offered
            assert "/movimientos/nuevo" not in client.get("/movimientos").text
            assert "/configuracion/usuarios" not in client.get("/configuracion").text


def test_without_a_session_every_page_goes_to_the_login(client, app, shop):
    for (method, template), _roles in sorted(REQUESTS.items()):
        path, body = REQUESTS[(method, template)](0, "x")
        if body and body.get("prefijo") == "{own}":
            body["prefijo"] = "abcd1234"
        path = path.replace("{batch}", "1").replace("{supplier}", "1").replace("{invoice}", "1")
        path = path.replace("{unmatched}", "1")
        for placeholder in ("{draft}", "{sent}", "{orders_supplier}"):
            path = path.replace(placeholder, "1")
        before = state(app)
        response = send(client, method, path, body)
        assert response.status_code == 303, (method, template, response.status_code)
        assert response.headers["location"].startswith("/ingresar?siguiente="), response.headers["location"]
        assert state(app) == before


def test_a_form_without_the_sessions_csrf_token_is_refused(client, app, shop):
    sign_in(app, client, "admin")
    for (method, template) in sorted(REQUESTS):
        if method != "POST":
            continue
        for token in ("", "otro-token"):
            path, body = resolve(app, *REQUESTS[(method, template)](7, token), "u-admin")
            before = state(app)
            response = send(client, "POST", path, body)
            assert response.status_code == 403, (template, token, response.status_code)
            assert "CSRF" in response.text
            assert state(app) == before, template


def test_the_role_table_refusal_counts_in_the_auth_metric(client, app, shop):
    from tests.integration.helpers import metric_value

    sign_in(app, client, "lectura")
    before = metric_value(client.get("/metrics").text, "minimarket_auth_failures_total", reason="forbidden")
    assert client.get("/recuento").status_code == 403
    assert metric_value(client.get("/metrics").text, "minimarket_auth_failures_total", reason="forbidden") == before + 1
