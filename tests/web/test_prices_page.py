"""Precios over real databases: a bulk change previewed, applied once, undone; mistakes explained; roles."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from minimarket.catalog.models import Product
from minimarket.pricing.models import PriceBatch
from tests.web.helpers import alerts, sign_in


def prices(app) -> dict[str, Decimal]:  # noqa: ANN001
    with app.state.db.read() as session:
        return dict(session.execute(select(Product.sku, Product.price)).all())


def batch_count(app) -> int:  # noqa: ANN001
    with app.state.db.read() as session:
        return session.scalar(select(func.count()).select_from(PriceBatch))


RAISE = {"categoria": "Almacén", "operacion": "price_percent", "porcentaje": "10"}


def test_raise_a_category_preview_apply_once_and_undo(client, app, shop):
    csrf = sign_in(app, client, "encargado")
    before = prices(app)
    preview = client.get("/precios/vista-previa", params=RAISE)
    assert preview.status_code == 200
    assert "1 producto(s) cambian" in preview.text and "$ 2.000,00" in preview.text and "$ 2.200,00" in preview.text
    assert "BAJA-1" not in preview.text  # not in the category
    assert prices(app) == before  # a preview writes nothing
    form = {**RAISE, "csrf": csrf, "idempotency_key": "form-1"}
    first = client.post("/precios/aplicar", data=form, follow_redirects=False)
    again = client.post("/precios/aplicar", data=form, follow_redirects=False)  # a double tap
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    assert batch_count(app) == 1
    assert prices(app)["YERBA-1"] == Decimal("2200.00") and prices(app)["BAJA-1"] == before["BAJA-1"]
    listing = client.get(first.headers["location"]).text
    assert "aplicado" in listing and "precio +10" in listing and "Deshacer lote" in listing
    batch_id = first.headers["location"].rsplit("=", 1)[1]
    undone = client.post(f"/precios/lotes/{batch_id}/deshacer", data={"csrf": csrf, "idempotency_key": "u-1"},
                         follow_redirects=False)
    assert undone.status_code == 303 and prices(app) == before
    assert "deshecho" in client.get(undone.headers["location"]).text
    twice = client.post(f"/precios/lotes/{batch_id}/deshacer", data={"csrf": csrf, "idempotency_key": "u-2"})
    assert twice.status_code == 409 and "ya se deshizo" in alerts(twice.text)[0]


def test_mistakes_are_explained_with_the_forms_labels(client, app, shop):
    sign_in(app, client, "admin")
    cases = [({**RAISE, "porcentaje": "diez"}, "Porcentaje: 'diez' no es un número"),
             ({**RAISE, "porcentaje": ""}, "Porcentaje: completalo"),
             ({**RAISE, "porcentaje": "1e3"}, "Porcentaje"),
             ({"operacion": "price_percent", "porcentaje": "5"}, "Filtro:"),
             ({**RAISE, "categoria": "Inventada"}, "la categoría 'Inventada' no existe"),
             ({**RAISE, "porcentaje": "-95"}, "Porcentaje: debe estar entre"),
             ({**RAISE, "operacion": "otra"}, "Operación:")]
    for params, message in cases:
        page = client.get("/precios/vista-previa", params=params)
        assert page.status_code == 422, (params, page.status_code)
        assert message in alerts(page.text)[0], (params, alerts(page.text))
    assert batch_count(app) == 0


def test_a_cost_change_shows_cost_columns_and_decimals_in_es_ar(client, app, shop):
    sign_in(app, client, "admin")
    page = client.get("/precios/vista-previa", params={"categoria": "Almacén", "operacion": "cost_percent",
                                                         "porcentaje": "2,5", "recalcular": "si"})
    assert page.status_code == 200
    assert "$ 1.234,56" in page.text and "$ 1.265,42" in page.text  # 1234,56 × 1,025
    assert "costo +2.5%" in page.text


def test_readers_see_batches_and_lagging_but_no_change_form(client, app, shop):
    sign_in(app, client, "encargado")
    csrf = sign_in(app, client, "encargado")
    client.post("/precios/aplicar", data={**RAISE, "csrf": csrf, "idempotency_key": "k"})
    client.cookies.clear()
    sign_in(app, client, "lectura")
    page = client.get("/precios").text
    assert "/precios/atrasados" in page and "precio +10" in page
    assert "/precios/vista-previa" not in page and "Deshacer" not in page


def test_an_empty_store_says_what_to_do_first(client, app):
    sign_in(app, client, "admin")
    page = client.get("/precios")
    assert page.status_code == 200 and "Todavía no hay productos" in page.text and "minimarket demo" in page.text
    assert "Todavía no hubo cambios masivos" in page.text


def test_the_preview_pages_through_every_product(client, app, shop, admin):
    from minimarket.web import prices as page_module
    from tests.integration.helpers import create_product

    for n in range(4):
        create_product(client, admin, f"ARROZ-{n}", name=f"Arroz {n}", cost="500", price="900", category="Almacén")
    sign_in(app, client, "admin")
    original, page_module.PER_PAGE = page_module.PER_PAGE, 2
    try:
        pages = [client.get("/precios/vista-previa", params={**RAISE, "pagina": n}).text for n in (1, 2, 3)]
    finally:
        page_module.PER_PAGE = original
    skus = ["ARROZ-0", "ARROZ-1", "ARROZ-2", "ARROZ-3", "YERBA-1"]
    assert [[s for s in skus if f"<span class=\"muted\">{s}</span>" in html] for html in pages] == [
        skus[:2], skus[2:4], skus[4:]]
    assert "5 producto(s) cambian" in pages[2] and "pagina=2" in pages[2] and "pagina=4" not in pages[2]
