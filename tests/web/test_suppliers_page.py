"""Proveedores over real databases: list and search, a supplier's file with its products, create and edit with
mistakes explained in Spanish, the empty store."""

from __future__ import annotations

from sqlalchemy import select

from minimarket.suppliers.models import Supplier
from tests.integration.helpers import create_product
from tests.web.helpers import alerts, sign_in


def supplier(app, name: str) -> Supplier | None:  # noqa: ANN001
    with app.state.db.read() as session:
        found = session.scalars(select(Supplier).where(Supplier.name == name)).first()
        if found is not None:
            session.expunge(found)
        return found


def test_create_find_and_edit_a_supplier(client, app, shop, admin):
    csrf = sign_in(app, client, "encargado")
    made = client.post("/proveedores/nuevo", data={
        "csrf": csrf, "nombre": "Distribuidora Norte", "cuit": "30712345671", "dias": ["jueves", "lunes"],
        "plazo": "2", "pedido_minimo": "50.000,50", "email": "Ventas@Norte.com.ar"}, follow_redirects=False)
    assert made.status_code == 303, made.text
    row = supplier(app, "Distribuidora Norte")
    assert row.order_days == ["lunes", "jueves"] and row.lead_time_days == 2 and str(row.min_order) == "50000.50"
    create_product(client, admin, "FIDEO-1", name="Fideos tirabuzón 500 g", cost="800", price="1300",
                   supplier="Distribuidora Norte")
    page = client.get(made.headers["location"]).text
    assert "Proveedor guardado" in page and "30-71234567-1" in page and "lunes, jueves" in page
    assert "$ 50.000,50" in page and "Fideos tirabuzón 500 g" in page and "$ 1.300,00" in page
    listing = client.get("/proveedores?q=30-71234567-1").text  # by CUIT
    assert "Distribuidora Norte" in listing and "2 día(s)" in listing
    for partial in ("30-7123", "7123456"):  # or part of it, with or without dashes
        assert "Distribuidora Norte" in client.get(f"/proveedores?q={partial}").text, partial
    assert "Distribuidora Norte" not in client.get("/proveedores?q=30-7999").text
    edited = client.post(f"/proveedores/{row.id}/editar", data={
        "csrf": csrf, "nombre": "Distribuidora Norte", "cuit": "", "plazo": "3", "activo": "si"},
        follow_redirects=False)
    assert edited.status_code == 303
    after = supplier(app, "Distribuidora Norte")
    assert after.cuit is None and after.lead_time_days == 3 and after.order_days == [] and after.active
    assert "Distribuidora Norte" in client.get("/proveedores?estado=completar").text
    form = client.get(f"/proveedores/{row.id}/editar").text
    assert 'value="Distribuidora Norte"' in form and 'value="3"' in form


def test_mistakes_name_the_field_and_change_nothing(client, app, shop):
    csrf = sign_in(app, client, "admin")
    client.post("/proveedores/nuevo", data={"csrf": csrf, "nombre": "Lácteos del Sur", "cuit": "30-71234567-1"})
    cases = [({"nombre": ""}, 422, "Nombre:"),
             ({"nombre": "Otro", "cuit": "30-71234567-2"}, 422, "CUIT:"),
             ({"nombre": "Otro", "plazo": "dos"}, 422, "Plazo de entrega:"),
             ({"nombre": "Otro", "plazo": "200"}, 422, "Plazo de entrega:"),
             ({"nombre": "Otro", "pedido_minimo": "1e5"}, 422, "Pedido mínimo:"),
             ({"nombre": "Otro", "dias": ["feriado"]}, 422, "Días de pedido:"),
             ({"nombre": "Otro", "email": "no-es-un-mail"}, 422, "E-mail:"),
             ({"nombre": "lácteos del sur"}, 409, "ya existe el proveedor")]
    for fields, status, message in cases:
        page = client.post("/proveedores/nuevo", data={"csrf": csrf, **fields})
        assert page.status_code == status, (fields, page.status_code, alerts(page.text))
        assert message in alerts(page.text)[0], (fields, alerts(page.text))
        assert 'name="nombre"' in page.text  # the form comes back with what was typed
    with app.state.db.read() as session:
        assert session.scalars(select(Supplier.name)).all() == ["Lácteos del Sur"]
    assert client.get("/proveedores/999999").status_code == 404


def test_an_empty_store_says_what_to_do_first(client, app):
    sign_in(app, client, "lectura")
    page = client.get("/proveedores").text
    assert "Todavía no hay proveedores" in page and "Pedí a un encargado" in page
    assert "/proveedores/nuevo" not in page
