"""Pedidos and Pronóstico over real databases: an order from a supplier's suggestions, edited, sent, received in
part by the depósito (a resent form counts once), what is missing shown; mistakes named by line; the forecast of
one product and how it was chosen."""

from __future__ import annotations

import io
import re
from decimal import Decimal

from openpyxl import load_workbook

from sqlalchemy import select

from minimarket.purchasing.models import PurchaseOrder
from tests.integration.helpers import movement_rows, total_stock
from tests.web.helpers import alerts, form_key, order_supplier, sign_in


def _order(app, order_id: int) -> PurchaseOrder:  # noqa: ANN001
    with app.state.db.read() as session:
        order = session.get(PurchaseOrder, order_id)
        return order.state, [(line.quantity, line.received) for line in order.lines]


def test_suggestions_to_order_to_partial_receipt_in_the_dashboard(client, app, shop, admin):
    supplier = order_supplier(app)
    csrf = sign_in(app, client, "encargado")
    new = client.get(f"/pedidos/nuevo?proveedor={supplier}")
    assert new.status_code == 200 and "Galletitas de agua" in new.text and "sin historia de ventas" in new.text
    made = client.post("/pedidos/nuevo", data={"csrf": csrf, "proveedor": str(supplier), "sku": "PEDIR-1",
                                               "idempotency_key": form_key(new.text)}, follow_redirects=False)
    assert made.status_code == 303, alerts(made.text)
    order_id = int(re.search(r"/pedidos/(\d+)", made.headers["location"]).group(1))
    page = client.get(made.headers["location"]).text
    assert "Pedido armado en borrador" in page and "$ 10.000,00" in page  # 20 × $ 500
    assert "Hola Distribuidora Pedidos, les paso el pedido N°" in page and "https://wa.me/541140001234" in page

    bad = client.post(f"/pedidos/{order_id}/editar", data={"csrf": csrf, "sku": "PEDIR-1", "cantidad": "1e3",
                                                           "bulto": "1"})
    assert bad.status_code == 422 and any(a.startswith("Línea 1 (PEDIR-1):") for a in alerts(bad.text))
    edited = client.post(f"/pedidos/{order_id}/editar", data={"csrf": csrf, "sku": "PEDIR-1", "cantidad": "24",
                                                              "bulto": "1", "notas": "Por la mañana"},
                         follow_redirects=False)
    assert edited.status_code == 303 and _order(app, order_id) == ("borrador", [(Decimal(24), Decimal(0))])
    assert client.post(f"/pedidos/{order_id}/enviar", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert client.get(f"/pedidos/{order_id}/pedido.pdf").content.startswith(b"%PDF")
    assert "Notas: Por la mañana" in client.get(f"/pedidos/{order_id}/whatsapp.txt").text

    client.cookies.clear()
    csrf = sign_in(app, client, "deposito")
    detail = client.get(f"/pedidos/{order_id}").text
    assert "Registrar lo que llegó" in detail and "Marcar como enviado" not in detail and "Cancelar pedido" not in detail
    key, rows = form_key(detail), movement_rows(app)
    body = {"csrf": csrf, "sku": "PEDIR-1", "recibido": "30", "ubicacion": "DEP", "idempotency_key": key}
    over = client.post(f"/pedidos/{order_id}/recibir", data=body)
    assert over.status_code == 422 and any("Línea 1: se pidieron 24" in a for a in alerts(over.text))
    body["recibido"] = "10"
    for _ in range(2):  # a double tap: one delivery
        assert client.post(f"/pedidos/{order_id}/recibir", data=body, follow_redirects=False).status_code == 303
    assert movement_rows(app) == rows + 1 and total_stock(client, admin, "PEDIR-1") == 10
    assert _order(app, order_id) == ("recibido_parcial", [(Decimal(24), Decimal(10))])
    detail = client.get(f"/pedidos/{order_id}?hecho=recibido").text
    assert "Mercadería recibida" in detail and "Recibido en parte" in detail and "<strong>14</strong>" in detail

    listing = client.get("/pedidos?estado=recibido_parcial").text
    assert f"Pedido {order_id}" in listing and "Distribuidora Pedidos" in listing
    assert client.get("/pedidos?estado=otro").status_code == 422
    exported = client.get("/reportes/pedidos.csv?estado=recibido_parcial")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = exported.content.decode("utf-8-sig").splitlines()
    assert rows[0].startswith("Pedido;Armado;Proveedor;Estado") and len(rows) == 2
    assert f"{order_id};" in rows[1] and ";Recibido en parte;" in rows[1] and ";24;10;14;500;12.000" in rows[1]
    assert load_workbook(io.BytesIO(client.get("/reportes/pedidos.xlsx").content)).active.max_row == 2
    assert client.get("/reportes/pedidos.pdf?proveedor=" + str(supplier)).content.startswith(b"%PDF")
    assert client.get("/reportes/pedidos.csv?estado=otro").status_code == 422


def test_forecast_page_shows_a_product_and_how_it_was_chosen(client, app, shop, admin):
    from tests.integration.test_purchasing_suggestions import _sells

    _sells(app, "YERBA-1", 5, left=40)
    assert client.post("/api/forecast/run", headers=admin, json={"days": 60}).status_code == 200
    sign_in(app, client, "lectura")
    page = client.get("/pronostico?producto=yerba-1").text
    assert "Yerba mate suave 1 kg" in page and "5 u por día" in page and "backtest" in page and "<svg" in page
    assert "Última corrida" in page and "Lo que más se vende" in page
    missing = client.get("/pronostico?producto=NADA")
    assert missing.status_code == 404 and "NADA" in alerts(missing.text)[0]
    evaluated = client.get("/pronostico?evaluar=1").text
    assert "Elección por producto" in evaluated and "ingenuo estacional" in evaluated and "Almacén" in evaluated
