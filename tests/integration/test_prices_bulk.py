"""Bulk price changes: preview, apply as one batch, undo exactly, refusals — SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from minimarket.catalog.models import Product
from minimarket.catalog.price_history import PriceChange
from minimarket.pricing.models import PriceBatch
from tests.integration.helpers import create_product, error_of, metric_value

D = Decimal
ALMACEN = [("ALM-1", "1000.00", "1633.33"), ("ALM-2", "333.33", "544.17"), ("ALM-3", "0.07", "0.11"),
           ("ALM-4", "12345.67", "20155.99"), ("ALM-5", "0", "999.99")]


def _store(client, admin) -> None:  # noqa: ANN001
    for sku, cost, price in ALMACEN:
        create_product(client, admin, sku, cost=cost, price=price, category="Almacén", brand="Marolio")
    create_product(client, admin, "LAC-1", cost="800", price="1300", category="Lácteos", brand="Marolio")


def _prices(client, admin) -> dict[str, tuple[str, str]]:  # noqa: ANN001
    items = client.get("/api/inventory?limit=500", headers=admin).json()["items"]
    return {p["sku"]: (p["cost"], p["price"]) for p in items}


def test_category_rise_previews_applies_and_undoes_to_the_cent(client, admin, app):
    _store(client, admin)
    client.patch("/api/prices/settings", headers=admin, json={"rounding": "1"})
    original = _prices(client, admin)
    change = {"filter": {"category": "almacén"}, "operation": "price_percent", "percent": "20"}
    preview = client.post("/api/prices/bulk/preview", headers=admin, json=change)
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert (body["count"], body["unchanged"]) == (5, 0)
    by_sku = {i["sku"]: i for i in body["items"]}
    # price × 1.2 rounded up to the whole peso: 1633.33 × 1.2 = 1959.996 → 1960
    assert by_sku["ALM-1"]["price_before"] == "1633.33" and by_sku["ALM-1"]["price_after"] == "1960.00"
    assert by_sku["ALM-3"]["price_after"] == "1.00" and by_sku["ALM-1"]["cost_after"] == "1000.00"
    assert by_sku["ALM-5"]["markup_after"] is None and by_sku["ALM-5"]["below_target"] is False
    assert _prices(client, admin) == original  # a preview changes nothing
    page = client.post("/api/prices/bulk/preview?offset=3&limit=10", headers=admin, json=change).json()
    assert page["count"] == 5 and [i["sku"] for i in page["items"]] == [i["sku"] for i in body["items"]][3:]

    applied = client.post("/api/prices/bulk", headers=admin, json=change)
    assert applied.status_code == 201, applied.text
    batch_id = applied.json()["batch_id"]
    assert applied.json()["products"] == 5 and applied.json()["reason"] == "aumento_masivo"
    after = _prices(client, admin)
    assert {sku: after[sku][1] for sku in by_sku} == {sku: i["price_after"] for sku, i in by_sku.items()}
    assert after["LAC-1"] == original["LAC-1"]
    history = client.get("/api/prices/ALM-2/history", headers=admin).json()["changes"]
    assert (history[0]["reason"], history[0]["batch_id"], history[0]["price_before"]) == ("aumento_masivo",
                                                                                           batch_id, "544.17")

    undone = client.post(f"/api/prices/batches/{batch_id}/undo", headers=admin)
    assert undone.status_code == 201, undone.text
    assert undone.json()["undoes"] == batch_id and undone.json()["products"] == 5
    assert _prices(client, admin) == original  # every cost and price exactly as before
    listed = client.get("/api/prices/batches", headers=admin).json()["items"]
    assert [b["operation"] for b in listed] == ["deshacer", "price_percent"]
    assert listed[1]["undone_by"] == listed[0]["batch_id"] and listed[1]["undone_at"]
    error_of(client.post(f"/api/prices/batches/{batch_id}/undo", headers=admin), 409, code="lote_ya_deshecho")
    error_of(client.post(f"/api/prices/batches/{listed[0]['batch_id']}/undo", headers=admin), 409,
             code="lote_es_deshacer")
    error_of(client.post("/api/prices/batches/999999/undo", headers=admin), 404, mentions="999999")


def test_undo_is_refused_naming_products_changed_since(client, admin, app):
    _store(client, admin)
    batch_id = client.post("/api/prices/bulk", headers=admin, json={
        "filter": {"brand": "marolio"}, "operation": "cost_percent", "percent": "10"}).json()["batch_id"]
    assert client.patch("/api/inventory/ALM-2", headers=admin, json={"price": "600"}).status_code == 200
    # Changed and changed back still counts: the history shows a later change.
    client.patch("/api/inventory/LAC-1", headers=admin, json={"cost": "1"})
    client.patch("/api/inventory/LAC-1", headers=admin, json={"cost": "880.00"})
    before = _prices(client, admin)
    error = error_of(client.post(f"/api/prices/batches/{batch_id}/undo", headers=admin), 409,
                     code="lote_con_cambios_posteriores", mentions=("ALM-2", "LAC-1"))
    assert error["details"] == {"changed": 2, "skus": ["ALM-2", "LAC-1"]}
    assert _prices(client, admin) == before
    with app.state.db.read() as session:
        assert session.scalar(select(PriceBatch.undone_at).where(PriceBatch.id == batch_id)) is None


def test_cost_rise_with_recomputed_prices_and_below_target_flags(client, admin):
    _store(client, admin)
    client.patch("/api/prices/settings", headers=admin, json={"category_markups": {"Almacén": "40"}})
    preview = client.post("/api/prices/bulk/preview", headers=admin, json={
        "filter": {"skus": ["alm-1", "LAC-1"]}, "operation": "cost_percent", "percent": "-10.5"}).json()
    items = {i["sku"]: i for i in preview["items"]}
    assert items["ALM-1"]["cost_after"] == "895.00" and items["ALM-1"]["price_after"] == "1633.33"
    assert items["LAC-1"]["cost_after"] == "716.00" and items["LAC-1"]["target_markup"] == "35"
    body = client.post("/api/prices/bulk/preview", headers=admin, json={
        "filter": {"category": "Almacén"}, "operation": "cost_percent", "percent": "25",
        "update_prices": True}).json()
    items = {i["sku"]: i for i in body["items"]}
    # 1250 × 1.40 × 1.21 = 2117.50 → 2120 (rounded up to $10); the new price meets the target
    assert (items["ALM-1"]["cost_after"], items["ALM-1"]["price_after"]) == ("1250.00", "2120.00")
    assert items["ALM-1"]["below_target"] is False and D(items["ALM-1"]["markup_after"]) >= 40
    assert "ALM-5" not in items and body["unchanged"] == 1  # no cost: nothing to raise or recompute
    recompute = client.post("/api/prices/bulk/preview", headers=admin, json={
        "filter": {"all_products": True}, "operation": "recompute"}).json()
    assert {i["sku"]: i["price_after"] for i in recompute["items"]}["LAC-1"] == "1310.00"  # 800×1.35×1.21=1306.8


def test_bad_bulk_requests_are_422_and_change_nothing(client, admin, app):
    _store(client, admin)
    before = _prices(client, admin)
    cases = [
        ({"filter": {"category": "Almacén"}, "operation": "price_percent", "percent": "-90.01"}, "percent"),
        ({"filter": {"category": "Almacén"}, "operation": "price_percent"}, "percent"),
        ({"filter": {}, "operation": "recompute"}, "category"),
        ({"filter": {"category": "Nada"}, "operation": "recompute"}, "Nada"),
        ({"filter": {"supplier": "Nadie SA"}, "operation": "recompute"}, "Nadie SA"),
        ({"filter": {"skus": ["ALM-1", "NO-1", "NO-2"]}, "operation": "recompute"}, "NO-1"),
        ({"filter": {"category": "Almacén"}, "operation": "subir"}, "operation"),
        ({"filter": {"skus": ["ALM-1"]}, "operation": "price_percent", "percent": "1000", "x": 1}, "x"),
    ]
    for body, mentions in cases:
        for path in ("/api/prices/bulk/preview", "/api/prices/bulk"):
            error_of(client.post(path, headers=admin, json=body), 422, mentions=mentions)
    error_of(client.post("/api/prices/bulk", headers=admin, json={
        "filter": {"skus": ["ALM-5"]}, "operation": "recompute"}), 422, code="sin_cambios")  # no cost to price from
    assert _prices(client, admin) == before
    with app.state.db.read() as session:
        assert session.scalar(select(func.count()).select_from(PriceBatch)) == 0
        assert session.scalar(select(func.count()).select_from(PriceChange)) == 0


def test_apply_is_idempotent_and_counted_once(client, admin, app):
    _store(client, admin)
    metrics = client.get("/metrics").text
    start = metric_value(metrics, "minimarket_price_batches_applied_total", reason="aumento_masivo")
    change = {"filter": {"category": "Lácteos"}, "operation": "price_percent", "percent": "5"}
    headers = {**admin, "Idempotency-Key": "subida-lacteos-1"}
    first = client.post("/api/prices/bulk", headers=headers, json=change)
    again = client.post("/api/prices/bulk", headers=headers, json=change)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true" and first.json() == again.json()
    assert _prices(client, admin)["LAC-1"] == ("800.00", "1370.00")  # 1365 → 1370, once
    metrics = client.get("/metrics").text
    assert metric_value(metrics, "minimarket_price_batches_applied_total", reason="aumento_masivo") == start + 1


def test_apply_gives_exactly_what_the_preview_promised(client, admin):
    # PostgreSQL computes the batch in SQL, the preview in Python: they must agree to the cent, for every
    # rounding rule (one store: each change is undone before the next).
    for n, (cost, price, vat) in enumerate([("1000.00", "1633.33", "21"), ("333.33", "544.17", "10.5"),
                                            ("0.07", "0.11", "27"), ("12345.67", "20155.99", "0"),
                                            ("99.99", "100.01", "21"), ("0.01", "0.01", "10.5")]):
        create_product(client, admin, f"EQ-{n}", cost=cost, price=price, vat_rate=vat, category="Almacén")
    client.put("/api/prices/EQ-1/markup", headers=admin, json={"markup": "47.5"})
    client.patch("/api/prices/settings", headers=admin, json={"category_markups": {"Almacén": "33.33"}})
    for rounding in ("1", "5", "50", "termina_9", "termina_0"):
        client.patch("/api/prices/settings", headers=admin, json={"rounding": rounding})
        for change in ({"operation": "price_percent", "percent": "7.77"},
                       {"operation": "price_percent", "percent": "-33.5"},
                       {"operation": "cost_percent", "percent": "12.34", "update_prices": True},
                       {"operation": "cost_percent", "percent": "-0.5"}, {"operation": "recompute"}):
            body = {"filter": {"category": "Almacén"}, **change}
            promised = client.post("/api/prices/bulk/preview", headers=admin, json=body).json()["items"]
            response = client.post("/api/prices/bulk", headers=admin, json=body)
            assert response.status_code == 201, response.text
            after = _prices(client, admin)
            assert {i["sku"]: (i["cost_after"], i["price_after"]) for i in promised} == {
                i["sku"]: after[i["sku"]] for i in promised}, (rounding, change)
            undo = client.post(f"/api/prices/batches/{response.json()['batch_id']}/undo", headers=admin)
            assert undo.status_code == 201, undo.text


def test_a_batch_whose_products_changed_meanwhile_is_refused_whole(client, admin, app):
    from minimarket.accounts.audit import Context
    from minimarket.errors import Conflict
    from minimarket.pricing.batches import Planned, open_batch, write_batch

    _store(client, admin)
    before = _prices(client, admin)
    with app.state.db.read() as session:
        ids = dict(session.execute(select(Product.sku, Product.id)).all())
    stale = [Planned(id=ids["ALM-1"], sku="ALM-1", name="x", vat=D("21"), target=D("35"), cost_before=D("1000.00"),
                     cost_after=D("1000.00"), price_before=D("1633.33"), price_after=D("1700.00")),
             # read before someone else changed it: 999.99 is no longer its price
             Planned(id=ids["ALM-2"], sku="ALM-2", name="y", vat=D("21"), target=D("35"), cost_before=D("333.33"),
                     cost_after=D("333.33"), price_before=D("999.99"), price_after=D("1100.00"))]
    with pytest.raises(Conflict, match="cambió"):
        with app.state.db.write() as session:
            batch = open_batch(session, Context(actor="t"), operation="price_percent", reason="aumento_masivo",
                               description="prueba")
            write_batch(session, Context(actor="t"), batch, stale)
    assert _prices(client, admin) == before  # the whole batch rolled back, ALM-1 included
    with app.state.db.read() as session:
        assert session.scalar(select(func.count()).select_from(PriceBatch)) == 0
