"""A purchase order and the supplier's invoice for the same goods, on SQLite and PostgreSQL: whichever brings
the goods in first does it once. An invoice linked to an order that was already received is confirmed for
its costs only (no second `entrada`); one linked to an order not yet received brings the goods in itself."""

from __future__ import annotations

from decimal import Decimal

from tests.integration.helpers import assert_ledger_clean, error_of, movement_rows, total_stock
from tests.integration.test_purchase_orders import BASE, plain  # noqa: F401  (the fixture)

NUMBERS = iter(range(500, 600))


def _invoice(client, admin, lines: list[dict]) -> dict:  # noqa: ANN001
    """A draft A invoice from Distribuidora Norte (the store is responsable inscripto: cost = net)."""
    net = sum(Decimal(line["unit_cost"]) * line["quantity"] for line in lines)
    vat = (net * Decimal("0.21")).quantize(Decimal("0.01"))
    made = client.post("/api/invoices", headers=admin, json={
        "supplier": "1", "issuer_cuit": "30-71234567-1", "type": "A", "point_of_sale": 3, "number": next(NUMBERS),
        "date": "2026-11-20", "net": {"21": str(net)}, "vat": {"21": str(vat)}, "total": str(net + vat),
        "lines": lines})
    assert made.status_code == 201, made.text
    return made.json()


def _sent_order(client, admin, lines: list[dict]) -> dict:  # noqa: ANN001
    order = client.post(BASE, headers=admin, json={"supplier": "1", "lines": lines}).json()
    assert client.post(f"{BASE}/{order['id']}/send", headers=admin).status_code == 200
    return order


def _cost(client, admin, sku: str) -> str:  # noqa: ANN001
    return client.get(f"/api/inventory/{sku}", headers=admin).json()["cost"]


def test_an_invoice_for_a_received_order_records_its_costs_only(app, client, admin, plain) -> None:  # noqa: ANN001, F811
    order = _sent_order(client, admin, [{"sku": "YERBA", "quantity": 30}, {"sku": "FIDEOS", "quantity": 12}])
    assert client.post(f"{BASE}/{order['id']}/receive", headers=admin).status_code == 200
    assert total_stock(client, admin, "YERBA") == 30 and total_stock(client, admin, "FIDEOS") == 12
    invoice = _invoice(client, admin, [{"sku": "YERBA", "quantity": 30, "unit_cost": "3200.00"},
                                       {"sku": "FIDEOS", "quantity": 12, "unit_cost": "950.00"}])
    linked = client.patch(f"{BASE}/{order['id']}", headers=admin, json={"invoice_id": invoice["id"]})
    assert linked.status_code == 200, linked.text
    shown = client.get(f"/api/invoices/{invoice['id']}", headers=admin).json()
    assert shown["goods_received_by"] == f"pedido:{order['id']}"
    rows = movement_rows(app)

    confirmed = client.post(f"/api/invoices/{invoice['id']}/confirm", headers=admin)
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    assert body["operation_id"] is None and body["invoice"]["state"] == "confirmada"
    assert movement_rows(app) == rows  # the goods came in once, with the order
    assert total_stock(client, admin, "YERBA") == 30 and total_stock(client, admin, "FIDEOS") == 12
    costs = {c["sku"]: (c["cost_before"], c["cost_after"]) for c in body["cost_changes"]}
    assert costs == {"YERBA": ("3000.00", "3200.00"), "FIDEOS": ("900.00", "950.00")}
    assert _cost(client, admin, "YERBA") == "3200.00" and _cost(client, admin, "FIDEOS") == "950.00"

    annulled = client.post(f"/api/invoices/{invoice['id']}/annul", headers=admin, json={"reason": "mal cargada"})
    assert annulled.status_code == 200, annulled.text
    assert movement_rows(app) == rows and total_stock(client, admin, "YERBA") == 30  # the order's goods stay
    assert _cost(client, admin, "YERBA") == "3000.00"  # the invoice's cost is taken back
    assert_ledger_clean(app)


def test_an_invoice_linked_at_a_partial_receipt_lets_the_rest_arrive(app, client, admin, plain) -> None:  # noqa: ANN001, F811
    order = _sent_order(client, admin, [{"sku": "YERBA", "quantity": 30}])
    invoice = _invoice(client, admin, [{"sku": "YERBA", "quantity": 30, "unit_cost": "3100.00"}])
    first = client.post(f"{BASE}/{order['id']}/receive", headers=admin,
                        json={"lines": [{"sku": "YERBA", "quantity": 10}], "invoice_id": invoice["id"]})
    assert first.status_code == 200 and first.json()["order"]["state"] == "recibido_parcial", first.text
    confirmed = client.post(f"/api/invoices/{invoice['id']}/confirm", headers=admin)
    assert confirmed.status_code == 200 and confirmed.json()["operation_id"] is None, confirmed.text
    assert total_stock(client, admin, "YERBA") == 10
    rest = client.post(f"{BASE}/{order['id']}/receive", headers=admin)  # the invoice brought nothing in
    assert rest.status_code == 200 and rest.json()["order"]["state"] == "recibido", rest.text
    assert total_stock(client, admin, "YERBA") == 30
    assert_ledger_clean(app)


def test_an_invoice_linked_before_the_delivery_brings_the_goods_in_itself(app, client, admin, plain) -> None:  # noqa: ANN001, F811
    """The healthy other order of events: the order has not arrived, so the invoice's confirmation is the receipt."""
    order = _sent_order(client, admin, [{"sku": "FIDEOS", "quantity": 12}])
    invoice = _invoice(client, admin, [{"sku": "FIDEOS", "quantity": 12, "unit_cost": "950.00"}])
    assert client.patch(f"{BASE}/{order['id']}", headers=admin, json={"invoice_id": invoice["id"]}).status_code == 200
    assert client.get(f"/api/invoices/{invoice['id']}", headers=admin).json()["goods_received_by"] is None
    confirmed = client.post(f"/api/invoices/{invoice['id']}/confirm", headers=admin)
    assert confirmed.status_code == 200 and confirmed.json()["operation_id"], confirmed.text
    assert total_stock(client, admin, "FIDEOS") == 12
    error_of(client.post(f"{BASE}/{order['id']}/receive", headers=admin), 409, code="mercaderia_ya_ingresada")
    assert total_stock(client, admin, "FIDEOS") == 12


def test_relinking_an_order_unmarks_the_previous_invoice(app, client, admin, plain) -> None:  # noqa: ANN001, F811
    order = _sent_order(client, admin, [{"sku": "FIDEOS", "quantity": 12}])
    assert client.post(f"{BASE}/{order['id']}/receive", headers=admin).status_code == 200
    wrong = _invoice(client, admin, [{"sku": "FIDEOS", "quantity": 5, "unit_cost": "950.00"}])
    right = _invoice(client, admin, [{"sku": "FIDEOS", "quantity": 12, "unit_cost": "950.00"}])
    client.patch(f"{BASE}/{order['id']}", headers=admin, json={"invoice_id": wrong["id"]})
    assert client.patch(f"{BASE}/{order['id']}", headers=admin, json={"invoice_id": right["id"]}).status_code == 200
    marks = {i: client.get(f"/api/invoices/{i}", headers=admin).json()["goods_received_by"]
             for i in (wrong["id"], right["id"])}
    assert marks == {wrong["id"]: None, right["id"]: f"pedido:{order['id']}"}


def test_linking_a_received_order_to_an_invoice_that_brought_its_goods_is_409(app, client, admin, plain) -> None:  # noqa: ANN001, F811
    order = _sent_order(client, admin, [{"sku": "FIDEOS", "quantity": 12}])
    assert client.post(f"{BASE}/{order['id']}/receive", headers=admin).status_code == 200
    invoice = _invoice(client, admin, [{"sku": "FIDEOS", "quantity": 12, "unit_cost": "950.00"}])
    assert client.post(f"/api/invoices/{invoice['id']}/confirm", headers=admin).status_code == 200
    error_of(client.patch(f"{BASE}/{order['id']}", headers=admin, json={"invoice_id": invoice["id"]}), 409,
             code="mercaderia_ya_ingresada", mentions=("anulá la factura",))
