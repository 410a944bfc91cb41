"""Facturas over real databases: enter an invoice by hand, associate its unmatched line, confirm it once (goods in,
cost updated), annul it (goods out); import a file; mistakes named by the form's labels; the depósito rule."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from minimarket.catalog.models import Product
from minimarket.invoices.models import Invoice
from tests.integration.helpers import stock_by_location
from tests.web.helpers import alerts, sign_in
from tests.web.test_page_roles import a_draft_invoice, a_supplier


def invoice_form(csrf: str, supplier: int, **changes: str) -> dict:
    """Factura A 0003-00012345: 12 × YERBA-1 at $ 1.000 less 10 % and 3 of the supplier's AZ-500 at $ 850,10."""
    form = {"csrf": csrf, "proveedor": str(supplier), "tipo": "A", "numero": "0003-00012345", "fecha": "20/11/2026",
            "total": "15.886,08", "l1_codigo": "7790001000019", "l1_cantidad": "12", "l1_costo": "1.000",
            "l1_iva": "21", "l1_descuento": "10", "l2_codigo": "AZ-500", "l2_descripcion": "Azúcar 1 kg",
            "l2_cantidad": "3", "l2_costo": "850,10", "l2_iva": "10.5"}
    return {**form, **changes}


def state_of(app, invoice_id: int) -> str:  # noqa: ANN001
    with app.state.db.read() as session:
        return session.get(Invoice, invoice_id).state


def test_enter_associate_confirm_once_and_annul(client, app, shop, admin):
    supplier = a_supplier(app)
    csrf = sign_in(app, client, "encargado")
    made = client.post("/facturas/nueva", data=invoice_form(csrf, supplier), follow_redirects=False)
    assert made.status_code == 303, alerts(made.text)
    invoice_id = int(made.headers["location"].split("/")[2].split("?")[0])
    page = client.get(made.headers["location"]).text
    assert "Factura cargada en borrador" in page and "1 sin asociar" in page
    assert "$ 10.800,00" in page and "$ 15.886,08" in page and "20/11/2026" in page  # neto 21 %: 12 × 900
    assert "Confirmar recepción" not in page  # not while a line has no product
    matched = client.post(f"/facturas/{invoice_id}/asociar", data={"csrf": csrf, "producto_2": "BAJA-1"},
                          follow_redirects=False)
    assert matched.status_code == 303
    page = client.get(matched.headers["location"]).text
    assert "sin asociar" not in page and "Confirmar recepción" in page
    before = stock_by_location(client, admin, "YERBA-1").get("DEP", Decimal(0))
    form = {"csrf": csrf, "ubicacion": "DEP", "idempotency_key": "confirmar-1"}
    first = client.post(f"/facturas/{invoice_id}/confirmar", data=form, follow_redirects=False)
    again = client.post(f"/facturas/{invoice_id}/confirmar", data=form, follow_redirects=False)  # a double tap
    assert first.status_code == again.status_code == 303
    assert stock_by_location(client, admin, "YERBA-1")["DEP"] == before + 12
    with app.state.db.read() as session:
        assert session.scalar(select(Product.cost).where(Product.sku == "YERBA-1")) == Decimal("900.00")
    assert "la mercadería entró al stock" in client.get(first.headers["location"]).text
    annulled = client.post(f"/facturas/{invoice_id}/anular", data={"csrf": csrf, "motivo": "Devuelta al proveedor"},
                           follow_redirects=False)
    assert annulled.status_code == 303 and state_of(app, invoice_id) == "anulada"
    assert stock_by_location(client, admin, "YERBA-1")["DEP"] == before
    listing = client.get("/facturas").text
    assert "A 0003-00012345" in listing and "anulada" in listing and "$ 15.886,08" in listing
    assert "A 0003-00012345" in client.get(f"/facturas?proveedor={supplier}&estado=anulada").text
    assert "A 0003-00012345" not in client.get("/facturas?estado=borrador").text
    assert client.get("/facturas?estado=inventado").status_code == 422
    unknown = client.get("/facturas?proveedor=Inexistente")
    assert unknown.status_code == 422 and alerts(unknown.text)[0].startswith("Proveedor:")


def test_hand_entry_mistakes_name_the_field(client, app, shop):
    supplier = a_supplier(app)
    csrf = sign_in(app, client, "admin")
    cases = [({"proveedor": ""}, 422, "Proveedor:"),
             ({"numero": "12345"}, 422, "Número:"),
             ({"fecha": "31/02/2026"}, 422, "Fecha:"),
             ({"total": "15886"}, 422, "total"),
             ({"l1_cantidad": "doce"}, 422, "Línea 1: Cantidad:"),
             ({"l2_iva": "15"}, 422, "Línea 2: IVA:"),
             ({"l1_costo": "1e3"}, 422, "Línea 1: Costo unitario:"),
             ({"cae": "123"}, 422, "CAE:")]
    for changes, status, message in cases:
        page = client.post("/facturas/nueva", data=invoice_form(csrf, supplier, **changes))
        assert page.status_code == status, (changes, page.status_code, alerts(page.text))
        assert message in alerts(page.text)[0], (changes, alerts(page.text))
        assert 'value="0003-00012345"' in page.text or changes.get("numero")  # what was typed comes back
    assert client.post("/facturas/nueva", data=invoice_form(csrf, supplier)).status_code == 200
    duplicate = client.post("/facturas/nueva", data=invoice_form(csrf, supplier))
    assert duplicate.status_code == 409 and "0003-00012345" in alerts(duplicate.text)[0]


def test_import_a_file_all_or_nothing(client, app, shop):
    a_supplier(app)
    csrf = sign_in(app, client, "encargado")
    good = ("proveedor;tipo;numero;fecha;total;codigo_barras;cantidad;costo_unitario\n"
            "30-71234567-1;A;0004-00000001;2026-11-20;242;7790001000019;2;100\n"
            "30-71234567-1;A;0004-00000002;2026-11-21;121;7790001000019;1;100\n")
    bad = good + "30-71234567-1;A;0004-00000003;2026-11-22;121;7790001000019;uno;100\n"
    refused = client.post("/facturas/importar", data={"csrf": csrf},
                          files={"archivo": ("facturas.csv", bad.encode(), "text/csv")})
    assert refused.status_code == 422 and "fila 4" in alerts(refused.text)[0] and "cantidad" in alerts(refused.text)[0]
    with app.state.db.read() as session:
        assert session.scalars(select(Invoice.id)).all() == []
    done = client.post("/facturas/importar", data={"csrf": csrf},
                       files={"archivo": ("facturas.csv", good.encode(), "text/csv")}, follow_redirects=False)
    assert done.status_code == 303
    listing = client.get(done.headers["location"]).text
    assert "2 factura(s) importadas" in listing and "0004-00000002" in listing
    empty = client.post("/facturas/importar", data={"csrf": csrf})
    assert empty.status_code == 422 and "Archivo:" in alerts(empty.text)[0]


def test_the_deposito_confirms_only_where_the_store_allows_it(client, app, shop):
    invoice_id = a_draft_invoice(app, unmatched=False)
    csrf = sign_in(app, client, "deposito")
    assert "Confirmar recepción" not in client.get(f"/facturas/{invoice_id}").text
    refused = client.post(f"/facturas/{invoice_id}/confirmar", data={"csrf": csrf, "idempotency_key": "d-1"})
    assert refused.status_code == 403 and state_of(app, invoice_id) == "borrador"
    via_api = client.post(f"/api/invoices/{invoice_id}/confirm", headers={"X-CSRF-Token": csrf})  # the session on /api
    assert via_api.status_code == 403 and "deposito_can_confirm" in via_api.text and state_of(app, invoice_id) == "borrador"
    from minimarket.accounts.audit import Context
    from minimarket.invoices.settings import set_deposito_can_confirm

    with app.state.db.write() as session:
        set_deposito_can_confirm(session, Context(actor="test"), allowed=True)
    assert "Confirmar recepción" in client.get(f"/facturas/{invoice_id}").text
    done = client.post(f"/facturas/{invoice_id}/confirmar", data={"csrf": csrf, "idempotency_key": "d-2"},
                       follow_redirects=False)
    assert done.status_code == 303 and state_of(app, invoice_id) == "confirmada"


def test_an_empty_store_says_what_to_do_first(client, app):
    sign_in(app, client, "encargado")
    page = client.get("/facturas").text
    assert "Todavía no hay facturas" in page and "/facturas/nueva" in page
    form = client.get("/facturas/nueva").text
    assert "Primero cargá el proveedor" in form and "/api/invoices/template.csv" in form


def test_an_afip_qr_fills_the_header_in(client, app, shop):
    import base64
    import json

    supplier = a_supplier(app)  # CUIT 30-71234567-1
    data = {"ver": 1, "fecha": "2026-11-20", "cuit": 30712345671, "ptoVta": 3, "tipoCmp": 1, "nroCmp": 12345,
            "importe": 15886.08, "moneda": "PES", "ctz": 1, "tipoCodAut": "E", "codAut": 76123456789012}
    qr = "https://www.afip.gob.ar/fe/qr/?p=" + base64.b64encode(json.dumps(data).encode()).decode()
    csrf = sign_in(app, client, "encargado")
    page = client.get("/facturas/nueva", params={"qr": qr})
    assert page.status_code == 200, alerts(page.text)
    for shown in ('value="0003-00012345"', 'value="20/11/2026"', 'value="15.886,08"', 'value="76123456789012"',
                  f'<option value="{supplier}" selected>'):
        assert shown in page.text, shown
    client.post("/facturas/nueva", data=invoice_form(csrf, supplier))
    assert "Esa factura ya está cargada" in client.get("/facturas/nueva", params={"qr": qr}).text
    unknown = {**data, "cuit": 20123456786}
    other = "https://www.afip.gob.ar/fe/qr/?p=" + base64.b64encode(json.dumps(unknown).encode()).decode()
    missing = client.get("/facturas/nueva", params={"qr": other})
    assert missing.status_code == 422 and "20-12345678-6" in alerts(missing.text)[0]
    broken = client.get("/facturas/nueva", params={"qr": "https://www.afip.gob.ar/fe/qr/?p=no-es-base64"})
    assert broken.status_code == 422 and alerts(broken.text)[0].startswith("QR:")
