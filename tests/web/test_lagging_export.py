"""Precios atrasados on the page and as CSV / XLSX / PDF, honouring the category filter (pricing.lagging)."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from tests.integration.helpers import create_product
from tests.web.helpers import alerts, sign_in


def test_lagging_prices_page_and_exports_honour_the_category(client, app, shop, admin):
    # YERBA-1 sells at $ 2.000 with IVA over a cost of $ 1.234,56: 33,9 % under the default 35 %.
    create_product(client, admin, "GASEOSA-1", name="Gaseosa cola 2,25 l", cost="1000", price="1300",
                   category="Bebidas")
    sign_in(app, client, "lectura")
    page = client.get("/precios/atrasados").text
    assert "2 producto(s)" in page and "$ 1.234,56" in page and "33,9 %" in page
    only = client.get("/precios/atrasados?categoria=Bebidas").text
    assert "1 producto(s) de Bebidas" in only and "GASEOSA-1" in only and "YERBA-1" not in only
    assert "/reportes/precios-atrasados.xlsx?categoria=Bebidas" in only
    csv = client.get("/reportes/precios-atrasados.csv?categoria=Almac%C3%A9n")
    assert csv.status_code == 200 and "attachment" in csv.headers["content-disposition"]
    text = csv.content.decode("utf-8-sig")
    assert "YERBA-1" in text and "GASEOSA-1" not in text and "1.234,56" in text
    sheet = load_workbook(io.BytesIO(client.get("/reportes/precios-atrasados.xlsx").content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("SKU", "Producto", "Costo") and {r[0] for r in rows[1:]} == {"YERBA-1", "GASEOSA-1"}
    assert client.get("/reportes/precios-atrasados.pdf").content.startswith(b"%PDF")
    unknown = client.get("/reportes/precios-atrasados.csv?categoria=Inventada")
    assert unknown.status_code == 422 and "Inventada" in unknown.text
    bad = client.get("/precios/atrasados?categoria=Inventada")
    assert bad.status_code == 422 and "Categoría: la categoría 'Inventada' no existe" in alerts(bad.text)[0]


def test_lagging_prices_of_an_empty_store(client, app):
    sign_in(app, client, "lectura")
    page = client.get("/precios/atrasados")
    assert page.status_code == 200 and "Todavía no hay productos" in page.text
    sheet = load_workbook(io.BytesIO(client.get("/reportes/precios-atrasados.xlsx").content)).active
    assert sheet.max_row == 1


def test_lagging_prices_in_pages(client, app, shop, admin):
    from minimarket.web import prices

    for n in range(3):
        create_product(client, admin, f"GASEOSA-{n}", name=f"Gaseosa {n}", cost="1000", price="1300", category="Bebidas")
    sign_in(app, client, "lectura")
    original, prices.SHOWN = prices.SHOWN, 2
    try:
        first = client.get("/precios/atrasados").text
        second = client.get("/precios/atrasados?pagina=2").text
    finally:
        prices.SHOWN = original
    assert "4 producto(s)" in first and "pagina=2" in first and "pagina=3" not in second and "← Anterior" in second
    shown = lambda html: {s for s in ("YERBA-1", "GASEOSA-0", "GASEOSA-1", "GASEOSA-2") if s in html}  # noqa: E731
    assert len(shown(first)) == len(shown(second)) == 2 and shown(first) | shown(second) == {
        "YERBA-1", "GASEOSA-0", "GASEOSA-1", "GASEOSA-2"}


def test_lagging_prices_of_a_store_where_none_lags_and_past_the_last_page(client, app, admin):
    # The page asks whether the store has products only when nothing lags; past the last page it still
    # says how many lag (the count is asked alone when the page comes back empty).
    create_product(client, admin, "BIEN-1", name="Bien de precio", cost="100", price="500", category="Bebidas")
    sign_in(app, client, "lectura")
    page = client.get("/precios/atrasados")
    assert page.status_code == 200 and "Ningún precio está por debajo de su margen objetivo." in page.text
    assert "Todavía no hay productos" not in page.text and "<option>Bebidas</option>" in page.text
    create_product(client, admin, "MAL-1", name="Mal de precio", cost="1000", price="1000", category="Bebidas")
    beyond = client.get("/precios/atrasados?pagina=3")
    assert beyond.status_code == 200 and "1 producto(s) se venden por debajo" in beyond.text
    assert "MAL-1" not in beyond.text and "Ningún precio está por debajo" in beyond.text
    assert "MAL-1" in client.get("/precios/atrasados?pagina=1").text
