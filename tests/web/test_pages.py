"""The dashboard's pages over real databases: Inicio's numbers (es-AR), the empty store, search and scan,
the movement form (retry-safe), stocktake, exports, Configuración's keys and users, live updates."""

from __future__ import annotations

import io
import re
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from minimarket.web import home
from tests.integration.helpers import movement_rows
from tests.web.helpers import alerts, form_key, sign_in

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "font-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'")


def kpi(html: str, name: str) -> str:
    return re.search(rf'data-kpi="{name}">([^<]*)<', html).group(1)


def test_an_empty_store_says_what_to_do_first(client, app):
    sign_in(app, client, "admin")
    home_page = client.get("/")
    assert home_page.status_code == 200
    assert "Tu tienda todavía no tiene productos" in home_page.text and "minimarket demo" in home_page.text
    assert "No hay productos todavía" in client.get("/inventario").text
    assert "No hay movimientos" in client.get("/movimientos").text
    for path, says in (("/movimientos/nuevo", "Todavía no hay productos"), ("/recuento", "Todavía no hay productos para contar"),
                       ("/reportes", "Todavía no hay nada que reportar"), ("/alertas", "No hay alertas")):
        page = client.get(path)
        assert page.status_code == 200 and says in page.text, path
    report = client.get("/reportes/inventario.xlsx")
    assert report.status_code == 200 and load_workbook(io.BytesIO(report.content)).active.max_row == 1


def test_inicio_numbers_in_es_ar_each_a_link(client, app, shop, admin):
    sign_in(app, client, "lectura")
    page = client.get("/")
    assert page.headers["content-security-policy"] == CSP
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["referrer-policy"] == "no-referrer"
    html = page.text
    assert kpi(html, "stock_value_cost") == "$ 123.456,00"  # 100 × 1.234,56
    assert kpi(html, "stock_value_price") == "$ 200.000,00"
    assert kpi(html, "out_of_stock") == "1" and kpi(html, "below_minimum") == "1"
    assert kpi(html, "sales_today_amount") == "$ 0,00" and kpi(html, "margin_week") == "—"
    assert 'href="/inventario?estado=sin"' in html and 'href="/inventario?estado=bajo"' in html
    assert "<svg" in html and "style=" not in html and "<script>" not in html
    sale = client.post("/api/sales", json={"ticket_id": "T-1", "lines": [{"sku": "YERBA-1", "quantity": "1.5"}]},
                       headers=admin)
    assert sale.status_code == 422  # unit product: whole units only
    client.post("/api/sales", json={"ticket_id": "T-1", "lines": [{"sku": "YERBA-1", "quantity": 2}]}, headers=admin)
    html = client.get("/").text
    assert kpi(html, "sales_today_amount") == "$ 4.000,00" and kpi(html, "sales_today_units") == "2"
    assert kpi(html, "stock_value_cost") == "$ 120.986,88"
    # 2 × 2000 with 21 % IVA = 3305,79 net; cost 2469,12; margin 25,3 %
    assert kpi(html, "margin_week") == "25,3 %"
    assert kpi(html, "movements_today") == "2"  # YERBA-1's opening entrada and the sale
    listing = client.get("/inventario?estado=sin").text
    assert "BAJA-1" in listing and "YERBA-1" not in listing


def test_inicio_numbers_follow_every_price_change(client, app, shop, admin):
    # Inicio's numbers are cached under the store's change marker: a price edit, a bulk change and
    # its undo each give a new one (the products' actualizado_en is not it: unindexed since 0010).
    sign_in(app, client, "lectura")
    assert kpi(client.get("/").text, "stock_value_price") == "$ 200.000,00"  # 100 × 2.000
    assert client.patch("/api/inventory/YERBA-1", json={"price": "2500.00"}, headers=admin).status_code == 200
    assert kpi(client.get("/").text, "stock_value_price") == "$ 250.000,00"
    assert client.patch("/api/prices/settings", headers=admin, json={"rounding": "1"}).status_code == 200
    kpi(client.get("/").text, "stock_value_price")  # cached under the marker the bulk change must move
    applied = client.post("/api/prices/bulk", headers=admin, json={
        "filter": {"skus": ["YERBA-1"]}, "operation": "price_percent", "percent": "10"})
    assert applied.status_code == 201, applied.text
    assert kpi(client.get("/").text, "stock_value_price") == "$ 275.000,00"
    undone = client.post(f"/api/prices/batches/{applied.json()['batch_id']}/undo", headers=admin)
    assert undone.status_code == 201, undone.text
    assert kpi(client.get("/").text, "stock_value_price") == "$ 250.000,00"


def test_search_and_a_scanned_barcode_open_the_product(client, app, shop):
    sign_in(app, client, "lectura")
    scanned = client.get(f"/inventario?q={shop['barcode']}", follow_redirects=False)
    assert scanned.status_code == 303 and scanned.headers["location"] == "/inventario/YERBA-1"
    product = client.get("/inventario/YERBA-1").text
    assert "Yerba mate suave 1 kg" in product and "$ 1.234,56" in product and "Depósito" in product
    assert "Registrar movimiento" not in product  # lectura cannot record
    listing = client.get("/inventario?q=yerba").text
    assert "YERBA-1" in listing and "BAJA-1" not in listing
    assert client.get("/inventario/sugerencias?q=yer").json() == [
        {"sku": "YERBA-1", "name": "Yerba mate suave 1 kg", "stock": "100"}]
    sorted_desc = client.get("/inventario?orden=precio&dir=desc").text
    assert sorted_desc.index("YERBA-1") < sorted_desc.index("BAJA-1")
    assert client.get("/inventario?orden=inventado").status_code == 200  # a clear message, not a 500
    assert "no es una columna ordenable" in client.get("/inventario?orden=inventado").text
    assert client.get("/inventario/NO-EXISTE").status_code == 404


def test_movement_form_records_once_per_form_and_explains_mistakes(client, app, shop):
    csrf = sign_in(app, client, "deposito")
    key = form_key(client.get("/movimientos/nuevo?producto=YERBA-1").text)
    rows = movement_rows(app)
    data = {"csrf": csrf, "producto": shop["barcode"], "cantidad": "12", "tipo": "entrada", "ubicacion": "DEP",
            "motivo": "Remito 0001-00000123", "idempotency_key": key}
    first, second = client.post("/movimientos/nuevo", data=data), client.post("/movimientos/nuevo", data=data)
    assert first.status_code == second.status_code == 201
    assert "Saldo: <strong>112</strong>" in first.text and "Saldo: <strong>112</strong>" in second.text
    assert movement_rows(app) == rows + 1  # a double tap recorded once
    assert form_key(first.text) != key  # the next form gets a new key
    too_much = client.post("/movimientos/nuevo", data={**data, "tipo": "salida", "cantidad": "1000",
                                                      "idempotency_key": "otra"})
    assert too_much.status_code == 409
    assert alerts(too_much.text) == ["Stock insuficiente de 'YERBA-1' en DEP: hay 112, se pidieron 1000"]
    for cantidad, message in (("abc", "Cantidad: 'abc' no es un número"), ("0", "Cantidad:")):
        bad = client.post("/movimientos/nuevo", data={**data, "cantidad": cantidad, "idempotency_key": cantidad})
        assert bad.status_code == 422 and alerts(bad.text)[0].startswith(message)
    assert movement_rows(app) == rows + 1
    ledger = client.get("/movimientos?producto=YERBA-1&tipo=entrada").text
    assert "Remito 0001-00000123" in ledger and ">u-deposito</td>" in ledger and "usuario:" not in ledger
    assert "no es un tipo de movimiento" in client.get("/movimientos?tipo=robo").text


def test_stocktake_by_scanning_shows_differences_then_records_one_count(client, app, shop):
    csrf = sign_in(app, client, "deposito")
    scans = "\n".join([shop["barcode"]] * 3 + ["YERBA-1 x 2", "", "BAJA-1*4"])
    review = client.post("/recuento/revisar", data={"csrf": csrf, "ubicacion": "DEP", "escaneos": scans})
    assert review.status_code == 200
    assert re.findall(r'name="contado" value="([^"]+)"', review.text) == ["5", "4"]
    assert "diff-neg" in review.text and "-95" in review.text
    rows = movement_rows(app)
    confirm = client.post("/recuento/confirmar", data={
        "csrf": csrf, "ubicacion": "DEP", "sku": ["YERBA-1", "BAJA-1"], "contado": ["5", "4"],
        "idempotency_key": form_key(review.text)})
    assert confirm.status_code == 201 and "2 con diferencia quedaron como ajuste" in confirm.text
    assert movement_rows(app) == rows + 2
    unknown = client.post("/recuento/revisar", data={"csrf": csrf, "ubicacion": "DEP", "escaneos": "NADA-9"})
    assert unknown.status_code == 422 and "'NADA-9' no existe" in alerts(unknown.text)[0]


def test_exports_honour_filters_and_open(client, app, shop):
    sign_in(app, client, "lectura")
    xlsx = client.get("/reportes/inventario.xlsx?estado=sin")
    assert xlsx.headers["content-disposition"].startswith('attachment; filename="inventario-')
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("SKU", "Código de barras", "Producto") and [r[0] for r in rows[1:]] == ["BAJA-1"]
    full = list(load_workbook(io.BytesIO(client.get("/reportes/inventario.xlsx").content)).active.iter_rows(
        values_only=True))
    yerba = next(r for r in full if r[0] == "YERBA-1")
    assert Decimal(str(yerba[7])) == 100 and Decimal(str(yerba[11])) == Decimal("123456.00")
    csv_text = client.get("/reportes/movimientos.csv?producto=YERBA-1").content.decode("utf-8-sig")
    assert csv_text.splitlines()[0].startswith("Fecha;SKU;Tipo") and ";entrada;DEP;100;100;1.234,56;" in csv_text
    pdf = client.get("/reportes/movimientos.pdf?tipo=entrada")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF") and pdf.headers["content-type"] == "application/pdf"
    assert client.get("/reportes/inventario.doc").status_code in (404, 422)


def test_configuracion_keys_belong_to_the_user_and_admin_manages_users(client, app, shop):
    csrf = sign_in(app, client, "deposito", "pepe")
    created = client.post("/configuracion/claves", data={"csrf": csrf, "nombre": "lector-1"})
    key = re.search(r'value="(mm_[^"]+)"', created.text).group(1)
    assert created.status_code == 201 and "no se vuelve a mostrar" in created.text
    assert key not in client.get("/configuracion").text  # shown once
    assert client.get("/api/locations", headers={"X-API-Key": key}).status_code == 200
    prefix = key[3:].split(".")[0]
    assert client.post("/configuracion/claves/revocar", data={"csrf": csrf, "prefijo": prefix}).status_code == 200
    assert client.get("/api/locations", headers={"X-API-Key": key}).status_code == 401
    client.cookies.clear()
    csrf = sign_in(app, client, "admin", "jefa")
    made = client.post("/configuracion/usuarios", data={"csrf": csrf, "usuario": "Nueva.Cajera", "rol": "deposito",
                                                        "contrasena": "corta"})
    assert made.status_code == 422 and "al menos 10 caracteres" in alerts(made.text)[0]
    made = client.post("/configuracion/usuarios", data={"csrf": csrf, "usuario": "Nueva.Cajera", "rol": "deposito",
                                                        "contrasena": "una-clave-bien-larga"})
    assert made.status_code == 201 and "nueva.cajera" in made.text
    own = client.post("/configuracion/usuarios/estado", data={"csrf": csrf, "usuario": "jefa", "accion": "deshabilitar"})
    assert own.status_code == 422
    off = client.post("/configuracion/usuarios/estado", data={"csrf": csrf, "usuario": "pepe", "accion": "deshabilitar"})
    assert off.status_code == 200 and "deshabilitado" in off.text


@pytest.mark.timeout(60)
def test_inicio_updates_over_server_sent_events(client, app, shop, admin, monkeypatch):
    monkeypatch.setattr(home, "STREAM_SECONDS", 2.5)
    monkeypatch.setattr(home, "POLL_SECONDS", 0.5)
    assert client.get("/eventos/inicio").status_code == 401  # no session, no numbers
    sign_in(app, client, "lectura")
    marker = re.search(r'data-marker="(\d+)"', client.get("/").text).group(1)
    client.post("/api/inventory/YERBA-1/movements", json={"type": "entrada", "quantity": 5}, headers=admin)
    stream = client.get(f"/eventos/inicio?desde={marker}")
    assert stream.headers["content-type"].startswith("text/event-stream")
    events = [block for block in stream.text.split("\n\n") if block.startswith("event: kpis")]
    assert len(events) == 1, stream.text  # one change, one event
    assert '"stock_value_cost": "$ 129.628,80"' in events[0]  # 105 × 1.234,56
    quiet = client.get(f"/eventos/inicio?desde={int(marker) + 1}")
    assert "event: kpis" not in quiet.text  # nothing changed since the marker the page has


def test_product_page_shows_the_price_history(client, app, shop, admin):
    sign_in(app, client, "lectura")
    assert "Historia de precios" not in client.get("/inventario/YERBA-1").text  # no change yet: no chart
    changed = client.patch("/api/inventory/YERBA-1", json={"price": "2500.00"}, headers=admin)
    assert changed.status_code == 200, changed.text
    page = client.get("/inventario/YERBA-1").text
    assert "Historia de precios" in page and "$ 2.000,00 → $ 2.500,00" in page and "<polyline" in page


def test_lagging_prices_number_links_to_its_list(client, app, shop, admin):
    sign_in(app, client, "lectura")
    kpi_of = lambda html: re.search(r'href="/precios/atrasados".*?kpi-value">([^<]+)<', html, re.S).group(1)  # noqa: E731
    listed = lambda: int(re.search(r"<p>(\d+) producto\(s\)", client.get("/precios/atrasados").text).group(1))  # noqa: E731
    before = kpi_of(client.get("/").text)  # the kept count (pricing.lagging), current without opening the list
    assert before == str(listed())
    low = client.patch("/api/inventory/BAJA-1", json={"price": "12.00"}, headers=admin)  # below 10 × 1.35 × 1.21
    assert low.status_code == 200, low.text
    assert kpi_of(client.get("/").text) == str(int(before) + 1)  # Inicio follows the write at once
    listing = client.get("/precios/atrasados").text
    assert "BAJA-1" in listing and "$ 12,00" in listing and listed() == int(before) + 1


def test_configuracion_sets_markup_rounding_and_inflation(client, app, admin):
    csrf = sign_in(app, client, "admin")
    saved = client.post("/configuracion/precios", data={"csrf": csrf, "margen": "40", "redondeo": "10",
                                                        "inflacion": "3,5"})
    assert saved.status_code == 200 and "guardados" in saved.text
    settings = client.get("/api/prices/settings", headers=admin).json()
    assert Decimal(settings["default_markup"]) == 40 and Decimal(settings["monthly_inflation"]) == Decimal("3.5")
    assert 'value="3,5"' in client.get("/configuracion").text  # shown back in es-AR
    bad = client.post("/configuracion/precios", data={"csrf": csrf, "margen": "mucho", "redondeo": "10",
                                                      "inflacion": "3"})
    assert bad.status_code == 422 and alerts(bad.text) == ["Margen: 'mucho' no es un número; escribí por ejemplo 35 o 3,5"]
    wrong = client.post("/configuracion/precios", data={"csrf": csrf, "margen": "40", "redondeo": "7",
                                                        "inflacion": "3"})
    assert wrong.status_code == 422 and alerts(wrong.text)[0].startswith("rounding: usá una de")
    assert Decimal(client.get("/api/prices/settings", headers=admin).json()["monthly_inflation"]) == Decimal("3.5")


def _store_alerts(app, *alerts_sent: dict) -> None:  # noqa: ANN001
    from minimarket.alerts.schemas import AlertmanagerNotification
    from minimarket.alerts.service import record_notification

    notification = AlertmanagerNotification.model_validate(
        {"version": "4", "status": alerts_sent[0]["status"], "receiver": "critical", "alerts": list(alerts_sent)})
    with app.state.db.write() as session:
        record_notification(session, notification=notification)


def _alert(name: str, status: str, fingerprint: str, starts: str, ends: str | None = None) -> dict:
    return {"status": status, "labels": {"alertname": name, "severity": "critical", "service": "agente-deposito"},
            "annotations": {"summary": f"Resumen de {name}"}, "startsAt": starts, "endsAt": ends,
            "fingerprint": fingerprint}


def test_alertas_lists_what_alertmanager_sent_and_inicio_counts_the_firing_ones(client, app, shop):
    sign_in(app, client, "lectura")
    empty = client.get("/alertas")
    assert empty.status_code == 200 and "No hay alertas: Alertmanager no avisó ningún problema" in empty.text
    assert 'href="/alertas"' in empty.text  # in the navigation
    alerts_kpi = lambda html: re.search(r'href="/alertas\?estado=activa".*?kpi-value[^>]*>([^<]+)<', html, re.S).group(1)  # noqa: E731
    assert alerts_kpi(client.get("/").text) == "0"

    _store_alerts(app, _alert("DatabaseDown", "firing", "aaaa000011112222", "2026-11-30T21:05:00Z"))
    _store_alerts(app, _alert("RedisDown", "resolved", "bbbb000011112222", "2026-11-30T12:00:00Z",
                              "2026-11-30T12:30:00Z"))
    page = client.get("/alertas").text
    assert "DatabaseDown" in page and "Resumen de DatabaseDown" in page and "RedisDown" in page
    assert "30/11/2026 18:05" in page  # 21:05 UTC on Buenos Aires' clock
    assert "30/11/2026 09:30" in page and "sigue activa" in page
    firing = client.get("/alertas?estado=activa").text
    assert "DatabaseDown" in firing and "RedisDown" not in firing
    resolved = client.get("/alertas?estado=resuelta").text
    assert "RedisDown" in resolved and "DatabaseDown" not in resolved
    assert alerts_kpi(client.get("/").text) == "1"

    _store_alerts(app, _alert("DatabaseDown", "resolved", "aaaa000011112222", "2026-11-30T21:05:00Z",
                              "2026-11-30T21:20:00Z"))
    assert "No hay alertas activas: nada de lo que Alertmanager vigila está fallando" in \
        client.get("/alertas?estado=activa").text
    assert alerts_kpi(client.get("/").text) == "0"
    bad = client.get("/alertas?estado=rota")
    assert bad.status_code == 422 and alerts(bad.text) == ["estado: elegí 'activa' o 'resuelta' (o ninguno para ver todas)"]
    bad = client.get("/alertas?desde=abc")
    assert bad.status_code == 422 and alerts(bad.text)[0].startswith("desde: valor inválido")
