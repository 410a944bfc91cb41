"""Facturas, for an invoice whose order was already received: the page says the goods came in with the order and
offers to confirm the costs only; confirming moves no stock and says so (both backends)."""

from __future__ import annotations

from tests.integration.helpers import movement_rows, total_stock
from tests.web.helpers import sign_in
from tests.web.test_page_roles import a_draft_invoice, a_supplier


def test_an_invoice_for_a_received_order_confirms_its_costs_only(client, app, shop, admin):
    supplier = a_supplier(app)
    order = client.post("/api/purchase-orders", headers=admin, json={
        "supplier": str(supplier), "lines": [{"sku": "YERBA-1", "quantity": 2}]}).json()
    client.post(f"/api/purchase-orders/{order['id']}/send", headers=admin)
    invoice_id = a_draft_invoice(app, unmatched=False)
    received = client.post(f"/api/purchase-orders/{order['id']}/receive", headers=admin,
                           json={"invoice_id": invoice_id})
    assert received.status_code == 200, received.text
    stock, rows = total_stock(client, admin, "YERBA-1"), movement_rows(app)
    csrf = sign_in(app, client, "encargado")
    page = client.get(f"/facturas/{invoice_id}").text
    assert f"ya ingresó con el pedido {order['id']}" in page and "Confirmar costos" in page
    assert "Ingresar la mercadería en" not in page
    done = client.post(f"/facturas/{invoice_id}/confirmar", data={"csrf": csrf, "idempotency_key": "c-1"},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].endswith("hecho=costos")
    assert "su mercadería ya había entrado con el pedido" in client.get(done.headers["location"]).text
    assert total_stock(client, admin, "YERBA-1") == stock and movement_rows(app) == rows
