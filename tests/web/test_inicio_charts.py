"""Inicio's charts: the 30-day flow from the per-day aggregates on every view; the three scanning charts
drawn in the background and kept, so no visitor waits seconds for them."""

from __future__ import annotations

import threading
import time

from minimarket.reports import series
from minimarket.web import home
from tests.web.helpers import sign_in


def test_a_small_store_shows_every_chart_on_the_first_view(client, app, shop) -> None:  # noqa: ANN001
    sign_in(app, client, "lectura")
    html = client.get("/").text
    assert "se están preparando" not in html
    assert html.count("<svg") == 3  # flow, top products, value by category
    assert "Hace falta comprar el mismo producto en dos meses seguidos" in html  # one month of purchases


def test_a_slow_first_drawing_does_not_hold_the_page_and_shows_up_when_ready(client, app, shop, admin,
                                                                            monkeypatch) -> None:  # noqa: ANN001
    release = threading.Event()
    original = series.stock_value_by_category

    def slow_categories(session):  # noqa: ANN001, ANN202 - a big store's scan
        release.wait(10)
        return original(session)

    monkeypatch.setattr(series, "stock_value_by_category", slow_categories)
    app.state.charts = home.KeptCharts(app.state.db)  # a process that has drawn nothing yet
    sign_in(app, client, "lectura")
    started = time.monotonic()
    html = client.get("/").text
    assert time.monotonic() - started < 5
    assert "se están preparando" in html and html.count("<svg") == 1  # the flow, from the aggregates
    release.set()
    app.state.charts.drawn.wait(10)
    html = client.get("/").text
    assert "se están preparando" not in html and "Stock al costo por categoría" in html
    assert "Almacén" in html  # YERBA-1's category, in the value-by-category chart


def test_the_flow_chart_follows_each_movement_at_once(client, app, shop, admin) -> None:  # noqa: ANN001
    sign_in(app, client, "lectura")
    with app.state.db.read() as session:
        before = series.daily_in_vs_sales(session)[-1]
    response = client.post("/api/inventory/YERBA-1/movements", json={"type": "venta", "quantity": 7}, headers=admin)
    assert response.status_code == 201, response.text
    with app.state.db.read() as session:
        after = series.daily_in_vs_sales(session)[-1]
    assert after[0] == before[0] and after[1] == before[1] and after[2] == before[2] + 7
