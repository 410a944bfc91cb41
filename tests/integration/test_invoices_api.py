"""/api/invoices over HTTP on SQLite and PostgreSQL: drafts, matching, confirm once, annul, duplicates, QR."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

from sqlalchemy import func, select

from minimarket.accounts.models import AuditEntry
from minimarket.catalog.price_history import PriceChange
from minimarket.stock.models import Movement
from minimarket.stock.policy import set_negative_stock_allowed
from tests.integration.helpers import (
    assert_ledger_clean,
    create_product,
    error_of,
    metric_value,
    stock_by_location,
    total_stock,
)
from tests.integration.invoice_helpers import CUIT, invoice_body, supplier_store

D = Decimal


def post_invoice(client, headers, body):  # noqa: ANN001, ANN201
    response = client.post("/api/invoices", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def test_draft_match_confirm_brings_goods_in_and_updates_costs_once(client, admin, app):
    supplier_store(client, admin)
    draft = post_invoice(client, admin, invoice_body())
    assert draft["state"] == "borrador" and draft["number_display"] == "0003-00012345"
    assert draft["issuer_cuit"] == CUIT and draft["net"] == {"10.5": "2295.27", "21": "17599.96"}
    assert [line["product"] for line in draft["lines"]] == ["YERBA-1", "AZUCAR-1", None]
    assert draft["unmatched_lines"] == 1 and draft["lines"][1]["net"] == "2295.27"
    # A draft moves no stock, and an unmatched line blocks the confirmation.
    assert total_stock(client, admin, "YERBA-1") == 0
    error_of(client.post(f"/api/invoices/{draft['id']}/confirm", headers=admin), 422, code="lineas_sin_asociar",
             mentions="3")
    matched = client.patch(f"/api/invoices/{draft['id']}", json={"matches": [{"line": 3, "product": "FIDEOS-1"}]},
                           headers=admin)
    assert matched.status_code == 200, matched.text
    assert matched.json()["unmatched_lines"] == 0
    before = metric_value(client.get("/metrics").text, "minimarket_invoices_confirmed_total")
    confirmed = client.post(f"/api/invoices/{draft['id']}/confirm", json={"location": "dep"}, headers=admin)
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    assert body["invoice"]["state"] == "confirmada" and body["invoice"]["location"] == "DEP"
    costs = {c["sku"]: c for c in body["cost_changes"]}
    assert (costs["YERBA-1"]["cost_before"], costs["YERBA-1"]["cost_after"]) == ("1000.00", "1033.33")
    assert costs["AZUCAR-1"]["cost_after"] == "765.09"  # 850.10 less 10 %
    assert costs["YERBA-1"]["applied"] is False and D(costs["YERBA-1"]["suggested_price"]) > D("1033.33")
    assert stock_by_location(client, admin, "YERBA-1") == {"DEP": D("12.000")}
    assert stock_by_location(client, admin, "FIDEOS-1") == {"DEP": D("10.000")}
    assert metric_value(client.get("/metrics").text, "minimarket_invoices_confirmed_total") == before + 1
    # Confirming again brings nothing in.
    error_of(client.post(f"/api/invoices/{draft['id']}/confirm", headers=admin), 409, code="factura_ya_confirmada")
    assert total_stock(client, admin, "YERBA-1") == 12
    movements = client.get(f"/api/movements?reference=factura:{draft['id']}", headers=admin).json()["items"]
    assert sorted((m["sku"], m["type"], m["quantity"], m["unit_cost"]) for m in movements) == [
        ("AZUCAR-1", "entrada", "3.000", "765.09"), ("FIDEOS-1", "entrada", "10.000", "520.00"),
        ("YERBA-1", "entrada", "12.000", "1033.33")]
    history = client.get("/api/prices/YERBA-1/history", headers=admin).json()
    assert history["cost"] == "1033.33"
    assert [(c["reason"], c["reference"]) for c in history["changes"]][0] == (
        "factura", f"factura:{draft['id']} FC A 0003-00012345")
    with app.state.db.read() as session:
        assert session.scalar(select(func.count()).select_from(PriceChange).where(PriceChange.reason == "factura")) == 3
        actions = session.scalars(select(AuditEntry.action).where(AuditEntry.entity == "factura")
                                  .order_by(AuditEntry.id)).all()
    assert actions == ["invoice.create", "invoice.update", "invoice.confirm"]
    assert_ledger_clean(app)


def test_the_supplier_code_is_remembered_for_the_next_invoice(client, admin):
    supplier_store(client, admin)
    first = post_invoice(client, admin, invoice_body())
    client.patch(f"/api/invoices/{first['id']}", json={"matches": [{"line": 3, "product": "FIDEOS-1", "pack_size": 20}]},
                 headers=admin)
    second = post_invoice(client, admin, invoice_body(number=12346))
    assert [line["product"] for line in second["lines"]] == ["YERBA-1", "AZUCAR-1", "FIDEOS-1"]


def test_reposting_the_same_invoice_is_409_with_the_existing_id(client, admin):
    supplier_store(client, admin)
    first = post_invoice(client, admin, invoice_body())
    for body in (invoice_body(), invoice_body(supplier=None, issuer_cuit="30712345671")):
        error = error_of(client.post("/api/invoices", json=body, headers=admin), 409, code="factura_duplicada",
                         mentions="0003-00012345")
        assert error["details"] == {"existing_id": first["id"]}
    # Another number, another type or another point of sale is another invoice.
    assert client.post("/api/invoices", json=invoice_body(type="M"), headers=admin).status_code == 201
    assert client.post("/api/invoices", json=invoice_body(point_of_sale=4), headers=admin).status_code == 201


def test_totals_that_do_not_add_up_name_the_difference(client, admin, app):
    supplier_store(client, admin)
    off_by_a_cent = invoice_body(total="23932.23")
    error = error_of(client.post("/api/invoices", json=off_by_a_cent, headers=admin), 422, code="totales_no_cuadran",
                     mentions=("total", "diferencia 0.01"))
    assert error["details"] == [{"field": "total", "problem": error["message"].split("total: ", 1)[1]}]
    wrong_net = invoice_body(net={"21": "17500.00", "10.5": "2295.27"}, vat={"21": "3675.00", "10.5": "241.00"},
                             total="23811.27")
    error_of(client.post("/api/invoices", json=wrong_net, headers=admin), 422, code="totales_no_cuadran",
             mentions=("net.21", "diferencia -99.96"))
    with app.state.db.read() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry).where(AuditEntry.entity == "factura")) == 0


def test_bad_input_names_the_field(client, admin):
    supplier_store(client, admin)
    cases = [
        (invoice_body(issuer_cuit="30-71234567-2"), "issuer_cuit", "dígito verificador"),
        (invoice_body(supplier="Proveedor Fantasma"), "supplier", "no existe"),
        (invoice_body(type="X"), "type", "A"),
        (invoice_body(point_of_sale=0), "point_of_sale", "mayor o igual"),
        (invoice_body(number=100000000), "number", "menor o igual"),
        (invoice_body(cae="123"), "cae", "14 dígitos"),
        (invoice_body(net={"22": "1"}), "net", "22"),
        (invoice_body(date="2099-01-01"), "date", "futuro"),
        (invoice_body(issuer_cuit="30-54668997-9"), "issuer_cuit", "no es el CUIT"),
    ]
    for body, field, words in cases:
        error_of(client.post("/api/invoices", json=body, headers=admin), 422, mentions=(field, words))
    error_of(client.get("/api/invoices/999", headers=admin), 404, mentions="999")


def test_annul_reverses_the_receipt_and_is_refused_when_the_goods_are_gone(client, admin, app):
    supplier_store(client, admin)
    body = invoice_body(lines=invoice_body()["lines"][:2], net={"21": "12399.96", "10.5": "2295.27"},
                        vat={"21": "2603.99", "10.5": "241.00"}, total="17640.22")
    invoice = post_invoice(client, admin, body)
    assert client.post(f"/api/invoices/{invoice['id']}/confirm", headers=admin).status_code == 200
    annulled = client.post(f"/api/invoices/{invoice['id']}/annul", json={"reason": "mercadería devuelta"},
                           headers=admin)
    assert annulled.status_code == 200, annulled.text
    assert annulled.json()["state"] == "anulada" and annulled.json()["annul_reason"] == "mercadería devuelta"
    assert total_stock(client, admin, "YERBA-1") == 0 and total_stock(client, admin, "AZUCAR-1") == 0
    assert _cost_and_price(client, admin, "YERBA-1") == ("1000.00", "1700.00")  # the costs it set are undone
    assert _cost_and_price(client, admin, "AZUCAR-1") == ("800.00", "1300.00")
    assert client.get("/api/prices/AZUCAR-1/history", headers=admin).json()["changes"][0]["reason"] == "deshacer"
    error_of(client.post(f"/api/invoices/{invoice['id']}/annul", json={"reason": "otra vez"}, headers=admin), 409,
             code="factura_anulada")
    # A second invoice whose goods were partly sold cannot be annulled.
    second = post_invoice(client, admin, {**body, "number": 12399})
    client.post(f"/api/invoices/{second['id']}/confirm", headers=admin)
    client.post("/api/transfers", json={"from_location": "DEP", "to_location": "SAL",
                                        "lines": [{"sku": "YERBA-1", "quantity": 5}]}, headers=admin)
    rows = client.get("/api/movements?limit=500", headers=admin).json()["items"]
    with app.state.db.write() as session:  # even a store that sells below zero cannot take back goods it lacks
        set_negative_stock_allowed(session, allowed=True)
    error = error_of(client.post(f"/api/invoices/{second['id']}/annul", json={"reason": "error de carga"},
                                 headers=admin), 409, code="stock_insuficiente", mentions=("0003-00012399", "YERBA-1"))
    assert error["details"]["available"] == "7.000"
    assert client.get("/api/movements?limit=500", headers=admin).json()["items"] == rows
    assert client.get(f"/api/invoices/{second['id']}", headers=admin).json()["state"] == "confirmada"
    # A draft is annulled without touching stock.
    draft = post_invoice(client, admin, {**body, "number": 12400})
    assert client.post(f"/api/invoices/{draft['id']}/annul", json={"reason": "duplicada en papel"},
                       headers=admin).json()["state"] == "anulada"
    error_of(client.post(f"/api/invoices/{draft['id']}/confirm", headers=admin), 409, code="factura_anulada")
    assert_ledger_clean(app)


def _cost_and_price(client, headers, sku: str) -> tuple[str, str]:  # noqa: ANN001
    history = client.get(f"/api/prices/{sku}/history", headers=headers).json()
    return history["cost"], history["price"]


def test_annul_keeps_a_cost_that_a_later_change_superseded(client, admin):
    supplier_store(client, admin)
    body = invoice_body(lines=invoice_body()["lines"][:2], net={"21": "12399.96", "10.5": "2295.27"},
                        vat={"21": "2603.99", "10.5": "241.00"}, total="17640.22")
    first = post_invoice(client, admin, body)
    client.post(f"/api/invoices/{first['id']}/confirm", headers=admin)
    assert client.patch("/api/inventory/YERBA-1", json={"cost": "1100.00"}, headers=admin).status_code == 200
    annulled = client.post(f"/api/invoices/{first['id']}/annul", json={"reason": "devuelta"}, headers=admin)
    assert annulled.status_code == 200, annulled.text
    assert _cost_and_price(client, admin, "YERBA-1") == ("1100.00", "1700.00")  # the later manual cost stays
    assert _cost_and_price(client, admin, "AZUCAR-1") == ("800.00", "1300.00")  # nothing superseded it


def test_a_monotributo_store_counts_the_iva_of_an_a_invoice_as_cost(client, admin):
    supplier_store(client, admin)
    assert client.get("/api/invoices/settings", headers=admin).json()["tax_condition"] == "responsable_inscripto"
    changed = client.patch("/api/invoices/settings", json={"tax_condition": "monotributo"}, headers=admin)
    assert changed.json() == {"deposito_can_confirm": False, "tax_condition": "monotributo"}
    error_of(client.patch("/api/invoices/settings", json={"tax_condition": "otro"}, headers=admin), 422,
             mentions="tax_condition")
    body = invoice_body(lines=invoice_body()["lines"][:2], net={"21": "12399.96", "10.5": "2295.27"},
                        vat={"21": "2603.99", "10.5": "241.00"}, total="17640.22")
    confirmed = client.post(f"/api/invoices/{post_invoice(client, admin, body)['id']}/confirm", headers=admin).json()
    costs = {c["sku"]: c["cost_after"] for c in confirmed["cost_changes"]}
    assert costs == {"YERBA-1": "1250.33", "AZUCAR-1": "845.42"}  # 1033.33 × 1.21; 765.09 × 1.105
    # A C invoice has no IVA apart: its amount is the cost whatever the store's condition.
    c_invoice = {"supplier": CUIT, "type": "C", "point_of_sale": 4, "number": 1, "date": "2026-11-20",
                 "net": {"0": "9000.00"}, "total": "9000.00",
                 "lines": [{"sku": "FIDEOS-1", "quantity": "10", "unit_cost": "900.00", "vat_rate": "21"}]}
    confirmed = client.post(f"/api/invoices/{post_invoice(client, admin, c_invoice)['id']}/confirm", headers=admin)
    assert confirmed.json()["cost_changes"][0]["cost_after"] == "900.00", confirmed.text
    # With its IVA, a unit cost no column can hold is refused naming the line, before anything moves.
    create_product(client, admin, "QUESO-KG", unit="kg")
    huge = {"supplier": CUIT, "type": "A", "point_of_sale": 5, "number": 1, "date": "2026-11-20",
            "net": {"27": "900000000.00"}, "vat": {"27": "243000000.00"}, "total": "1143000000.00",
            "lines": [{"sku": "QUESO-KG", "quantity": "0.001", "unit_cost": "900000000000.00", "vat_rate": "27"}]}
    error_of(client.post(f"/api/invoices/{post_invoice(client, admin, huge)['id']}/confirm", headers=admin), 422,
             mentions="lines[0].unit_cost")
    assert total_stock(client, admin, "QUESO-KG") == 0


def test_idempotency_key_on_confirm_replays_the_first_answer(client, admin, app):
    supplier_store(client, admin)
    body = invoice_body(lines=invoice_body()["lines"][:2], net={"21": "12399.96", "10.5": "2295.27"},
                        vat={"21": "2603.99", "10.5": "241.00"}, total="17640.22")
    invoice = post_invoice(client, admin, body)
    headers = {**admin, "Idempotency-Key": "confirmar-12345"}
    first = client.post(f"/api/invoices/{invoice['id']}/confirm", headers=headers)
    again = client.post(f"/api/invoices/{invoice['id']}/confirm", headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == first.json()
    assert total_stock(client, admin, "YERBA-1") == 12
    with app.state.db.read() as session:
        keys = session.scalars(select(Movement.idempotency_key).where(Movement.reference == f"factura:{invoice['id']}"))
        assert set(keys) == {"confirmar-12345"}


def test_deposito_confirms_only_when_the_store_allows_it(client, admin, make_key):
    supplier_store(client, admin)
    deposito = {"X-API-Key": make_key("deposito", name="deposito-1")}
    body = invoice_body(lines=invoice_body()["lines"][:1], net={"21": "12399.96"}, vat={"21": "2603.99"},
                        total="15103.95")
    invoice = post_invoice(client, admin, body)
    error_of(client.post(f"/api/invoices/{invoice['id']}/confirm", headers=deposito), 403, code="sin_permiso",
             mentions=("deposito", "deposito_can_confirm"))
    assert total_stock(client, admin, "YERBA-1") == 0
    error_of(client.patch("/api/invoices/settings", json={"deposito_can_confirm": True}, headers=deposito), 403)
    assert client.patch("/api/invoices/settings", json={"deposito_can_confirm": True}, headers=admin).json() == \
        {"deposito_can_confirm": True, "tax_condition": "responsable_inscripto"}
    confirmed = client.post(f"/api/invoices/{invoice['id']}/confirm", headers=deposito)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["invoice"]["confirmed_by"] == "apikey:deposito-1"
    assert total_stock(client, admin, "YERBA-1") == 12


def test_list_filters_by_supplier_state_and_dates(client, admin):
    supplier_store(client, admin)
    a = post_invoice(client, admin, invoice_body(number=1, date="2026-10-01"))
    b = post_invoice(client, admin, invoice_body(number=2, date="2026-11-15"))
    client.post(f"/api/invoices/{a['id']}/annul", json={"reason": "prueba"}, headers=admin)

    def ids(query: str) -> list[int]:
        response = client.get(f"/api/invoices{query}", headers=admin)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert ids("") == [b["id"], a["id"]]
    assert ids("?state=anulada") == [a["id"]]
    assert ids("?from=2026-11-01&to=2026-11-15") == [b["id"]]
    assert ids(f"?supplier={CUIT}") == ids("?supplier=distribuidora del plata s.a.") == [b["id"], a["id"]]
    page = client.get("/api/invoices?limit=1", headers=admin).json()
    assert ids(f"?limit=1&cursor={page['next_cursor']}") == [a["id"]]
    error_of(client.get("/api/invoices?state=pagada", headers=admin), 422, mentions="state")
    error_of(client.get("/api/invoices?supplier=nadie", headers=admin), 422, mentions="supplier")


def test_afip_qr_prefills_the_header(client, admin):
    supplier_id = supplier_store(client, admin)
    data = {"ver": 1, "fecha": "2026-11-20", "cuit": 30712345671, "ptoVta": 3, "tipoCmp": 1, "nroCmp": 12345,
            "importe": 23932.22, "moneda": "PES", "ctz": 1, "tipoDocRec": 80, "nroDocRec": 20123456786,
            "tipoCodAut": "E", "codAut": 76123456789012}
    url = "https://www.afip.gob.ar/fe/qr/?p=" + base64.b64encode(json.dumps(data).encode()).decode()
    prefill = client.post("/api/invoices/from-qr", json={"url": url}, headers=admin)
    assert prefill.status_code == 200, prefill.text
    body = prefill.json()
    assert (body["type"], body["number_display"], body["date"], body["total"], body["cae"]) == \
        ("A", "0003-00012345", "2026-11-20", "23932.22", "76123456789012")
    assert body["supplier"] == {"id": supplier_id, "name": "Distribuidora Del Plata S.A."}
    assert body["existing_id"] is None
    invoice = post_invoice(client, admin, invoice_body())
    assert client.post("/api/invoices/from-qr", json={"url": url}, headers=admin).json()["existing_id"] == invoice["id"]
    bad = "https://www.afip.gob.ar/fe/qr/?p=" + base64.b64encode(json.dumps({**data, "tipoCmp": 3}).encode()).decode()
    error_of(client.post("/api/invoices/from-qr", json={"url": bad}, headers=admin), 422, code="qr_invalido",
             mentions="tipoCmp")


def test_a_cost_raised_by_an_invoice_shows_in_the_lagging_prices(client, admin):
    supplier_store(client, admin)
    lagging = client.get("/api/prices/lagging", headers=admin).json()
    assert "YERBA-1" not in [item["sku"] for item in lagging["items"]]
    body = invoice_body(lines=[{"barcode": "7790387000016", "quantity": "10", "unit_cost": "1400.00"}],
                        net={"21": "14000.00"}, vat={"21": "2940.00"}, perception_iibb="0", total="16940.00")
    invoice = post_invoice(client, admin, body)
    confirmed = client.post(f"/api/invoices/{invoice['id']}/confirm", headers=admin).json()
    [change] = confirmed["cost_changes"]
    assert (change["cost_after"], change["price"], change["applied"]) == ("1400.00", "1700.00", False)
    items = {item["sku"]: item for item in client.get("/api/prices/lagging", headers=admin).json()["items"]}
    assert items["YERBA-1"]["cost"] == "1400.00" and items["YERBA-1"]["suggested_price"] == change["suggested_price"]
    assert items["YERBA-1"]["last_purchase_at"] is not None
