"""Precios atrasados after cost rises, by money lost per day — SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest

from minimarket.accounts.audit import Context
from minimarket.catalog.service import find_product
from minimarket.pricing.service import record_cost_change
from tests.integration.helpers import create_product, error_of

D = Decimal


def _sell(client, admin, sku: str, quantity: int, ticket: str) -> None:  # noqa: ANN001
    response = client.post("/api/sales", headers=admin, json={"ticket_id": ticket,
                                                               "lines": [{"sku": sku, "quantity": quantity}]})
    assert response.status_code == 201, response.text


def test_after_a_cost_rise_the_lagging_report_names_the_product(client, admin, app):
    client.patch("/api/prices/settings", headers=admin, json={"monthly_inflation": "3"})
    create_product(client, admin, "YERBA-1", cost="1000", price="1640", initial_stock=100)
    create_product(client, admin, "ARROZ-1", cost="500", price="820", initial_stock=100)
    create_product(client, admin, "FIDEO-1", cost="400", price="660", initial_stock=100)
    _sell(client, admin, "YERBA-1", 30, "T-1")
    _sell(client, admin, "ARROZ-1", 60, "T-2")
    assert client.get("/api/prices/lagging", headers=admin).json() == {"count": 0, "items": []}

    with app.state.db.write() as session:  # two invoices raise costs; the shelf prices stay
        record_cost_change(session, Context(actor="factura"), product=find_product(session, "YERBA-1"),
                           new_cost=D("1300"), reason="factura")
        record_cost_change(session, Context(actor="factura"), product=find_product(session, "FIDEO-1"),
                           new_cost=D("600"), reason="factura")
    client.patch("/api/inventory/ARROZ-1", headers=admin, json={"cost": "480"})  # a cost that falls: 820 ≥ 480 × 1.35 × 1.21

    body = client.get("/api/prices/lagging", headers=admin).json()
    assert body["count"] == 2
    yerba, fideo = body["items"]
    assert (yerba["sku"], fideo["sku"]) == ("YERBA-1", "FIDEO-1")  # FIDEO sold nothing: it goes after
    # 1300 × 1.35 × 1.21 = 2123.55 → 2130; 30 sold in 30 days → 1 a day; (2130 − 1640) / 1.21 = 404.96
    assert yerba["suggested_price"] == "2130.00" and yerba["units_per_day"] == "1.000"
    assert yerba["lost_per_day"] == "404.96" and yerba["below_target"] is True
    assert yerba["cost"] == "1300.00" and yerba["replacement_cost"] == "1300.00"  # bought today
    assert yerba["cost_changed_at"] is not None and D(yerba["markup"]) < D(yerba["target_markup"])
    assert fideo["lost_per_day"] == "0.00" and fideo["units_per_day"] == "0.000"

    client.post("/api/prices/bulk", headers=admin, json={"filter": {"skus": ["YERBA-1"]}, "operation": "recompute"})
    body = client.get("/api/prices/lagging", headers=admin).json()
    assert [i["sku"] for i in body["items"]] == ["FIDEO-1"]
    assert client.get("/api/prices/lagging?limit=1&category=Nada", headers=admin).status_code == 422
    error_of(client.get("/api/prices/lagging?limit=0", headers=admin), 422, mentions="limit")


def test_after_an_invoice_raises_a_cost_the_lagging_report_names_that_product(client, admin):
    from tests.integration.invoice_helpers import invoice_body, supplier_store

    supplier_store(client, admin)
    client.patch("/api/prices/settings", headers=admin, json={"default_markup": "40"})
    assert client.get("/api/prices/lagging", headers=admin).json()["count"] == 0
    draft = client.post("/api/invoices", json=invoice_body(), headers=admin).json()
    client.patch(f"/api/invoices/{draft['id']}", json={"matches": [{"line": 3, "product": "FIDEOS-1"}]},
                 headers=admin)
    confirmed = client.post(f"/api/invoices/{draft['id']}/confirm", headers=admin)
    assert confirmed.status_code == 200, confirmed.text
    body = client.get("/api/prices/lagging", headers=admin).json()
    # YERBA-1: 1033.33 × 1.40 × 1.21 = 1750.46 → 1760 > 1700 on the shelf; the others still meet 40 %.
    assert [(i["sku"], i["cost"], i["price"], i["suggested_price"]) for i in body["items"]] == [
        ("YERBA-1", "1033.33", "1700.00", "1760.00")]
    assert body["items"][0]["cost_changed_at"] is not None and body["items"][0]["last_purchase_at"] is not None


# --------------------------------------------------------------------- the query against the walk

def walk_every_product(session, *, limit: int, offset: int = 0) -> dict:  # noqa: ANN001
    """The report as first written: every active product through Python (the specification)."""
    from datetime import timedelta
    from decimal import ROUND_HALF_UP

    from sqlalchemy import func, select

    from minimarket.catalog.models import Product
    from minimarket.pricing import rules
    from minimarket.catalog.price_history import PriceChange
    from minimarket.pricing.service import summary_of
    from minimarket.pricing.settings import load_pricing_settings
    from minimarket.stock.models import Movement
    from minimarket.types import utcnow

    settings = load_pricing_settings(session)
    since = utcnow() - timedelta(days=30)
    sold = dict(session.execute(select(Movement.product_id, -func.sum(Movement.quantity)).where(
        Movement.type == "venta", Movement.created_at >= since).group_by(Movement.product_id)).all())
    bought = dict(session.execute(select(Movement.product_id, func.max(Movement.created_at)).where(
        Movement.type == "entrada").group_by(Movement.product_id)).all())
    changed = dict(session.execute(select(PriceChange.product_id, func.max(PriceChange.created_at)).where(
        PriceChange.cost_before != PriceChange.cost_after).group_by(PriceChange.product_id)).all())
    items = []
    for p in session.scalars(select(Product).where(Product.active.is_(True), Product.cost > 0)):
        category_target = p.category.target_markup if p.category is not None else None
        target = rules.resolve_markup(p.markup, category_target, settings.default_markup)
        if not rules.below_target(p.price, p.cost, p.vat_rate, target):
            continue
        item = summary_of(sku=p.sku, name=p.name, cost=p.cost, price=p.price, vat=p.vat_rate, own_markup=p.markup,
                          category_target=category_target, settings=settings, last_purchase=bought.get(p.id))
        per_day = (Decimal(sold.get(p.id, 0)) / 30).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
        item.update(units_per_day=per_day, cost_changed_at=changed.get(p.id),
                    lost_per_day=rules.daily_loss(p.price, item["suggested_price"], p.vat_rate, per_day))
        items.append(item)
    items.sort(key=lambda i: (-i["lost_per_day"], i["price"] / i["suggested_price"], i["sku"]))
    return {"count": len(items), "items": items[offset:offset + limit]}


def walk_every_product_of(session, category: str) -> dict:  # noqa: ANN001
    """The walk's list of one category (all of it)."""
    skus = _skus_of(session, category)
    items = [i for i in walk_every_product(session, limit=100_000)["items"] if i["sku"] in skus]
    return {"count": len(items), "items": items}


def _random_store(session, rng) -> None:  # noqa: ANN001
    """300 products: own, category and store markups, every IVA rate, prices above, below and exactly at
    target, inactive and cost-less ones; sales inside and outside the 30 days, purchases, cost changes."""
    from datetime import timedelta

    from sqlalchemy import insert, select

    from minimarket.catalog.models import Category, Product
    from minimarket.pricing import rules
    from minimarket.catalog.price_history import PriceChange
    from minimarket.stock.models import Location, Movement
    from minimarket.types import utcnow

    session.execute(insert(Category.__table__), [{"nombre": f"Cat {i}", "margen_objetivo": t}
                                                 for i, t in enumerate((None, D("30"), D("45.50"), D("0"), D("100")))])
    targets = {None: None, **dict(session.execute(select(Category.id, Category.target_markup)).all())}
    rows = []
    for i in range(300):
        vat = rng.choice((D("0"), D("10.5"), D("21"), D("27")))
        own = rng.choice((None, None, D("35"), D("50"), D("12.25")))
        category = rng.choice(list(targets))
        cost = rng.choice((D(0), D(rng.randint(1, 400_000)) / 100, D(rng.randint(1, 40) * 100)))
        target = rules.resolve_markup(own, targets[category], D("35"))
        exact = rules.money(rules.raw_price(cost, target, vat))  # exactly at target when it has cents only
        price = max(D(0), rng.choice((exact, exact - D("0.01"), exact + D("0.01"), rules.money(exact * D("0.8")),
                                      rules.money(exact * D("1.2")), rules.shelf_price(cost, target, vat, "10"))))
        rows.append({"sku": f"R-{i:03d}", "nombre": f"Producto {i}", "unidad": "u", "costo": cost, "precio": price,
                     "iva": vat, "margen": own, "categoria_id": category, "stock_minimo": D(0),
                     "activo": rng.random() > 0.1})
    session.execute(insert(Product.__table__), rows)
    ids = list(session.scalars(select(Product.id)))
    location = session.scalar(select(Location.id).order_by(Location.id).limit(1))
    now, moves, history = utcnow(), [], []
    for n in range(1500):  # never within an hour of the 30-day edge: both reports read the clock
        when = now - timedelta(hours=rng.choice((rng.uniform(0, 719), rng.uniform(721, 1500))))
        kind = rng.choice(("venta", "venta", "venta", "entrada"))
        quantity = D(rng.randint(1, 9)) / rng.choice((1, 1, 4))
        returned = kind == "venta" and rng.random() < 0.15  # a sale line with a positive quantity: net returns
        moves.append({"producto_id": rng.choice(ids), "ubicacion_id": location, "tipo": kind,
                      "cantidad": -quantity if kind == "venta" and not returned else quantity, "saldo_posterior": D(0),
                      "actor": "t", "operacion": f"op-{n}", "creado_en": when})
    for n in range(200):
        before = D(rng.randint(100, 9000))
        history.append({"producto_id": rng.choice(ids), "costo_antes": before,
                        "costo_despues": rng.choice((before, before + 50)), "precio_antes": D(1), "precio_despues": D(2),
                        "motivo": "factura", "actor": "t", "creado_en": now - timedelta(days=rng.randint(0, 90))})
    session.execute(insert(Movement.__table__), moves)
    session.execute(insert(PriceChange.__table__), history)


@pytest.fixture
def frozen_days(monkeypatch):  # noqa: ANN001, ANN201
    """Days since the last purchase (2 decimals) read one clock: the walk and the query run a moment apart."""
    from minimarket.pricing import service
    from minimarket.types import utcnow

    now = utcnow()
    monkeypatch.setattr(service, "utcnow", lambda: now)


def test_the_query_and_the_walk_agree_on_a_random_store(app, frozen_days):
    import random

    from minimarket.pricing.lagging import JIT_FREE_LIMIT, lagging_prices
    from minimarket.pricing.settings import update_pricing_settings

    rng = random.Random(20261201)
    with app.state.db.write() as session:
        _random_store(session, rng)
        update_pricing_settings(session, Context(actor="t"), changes={"monthly_inflation": D("4.5"),
                                                                      "rounding": "termina_9"})
    with app.state.db.read() as session:
        walked = walk_every_product(session, limit=1000)
        queried = lagging_prices(session, limit=1000)
        assert 40 < walked["count"] < 260 and queried == walked  # the store has both kinds, and they agree
        assert any(i["units_per_day"] > 0 for i in walked["items"])
        # the three groups of the list: losing money a day, nothing, less than nothing (net returns)
        gaining = sum(1 for i in walked["items"] if i["lost_per_day"] > 0)
        returned = sum(1 for i in walked["items"] if i["lost_per_day"] < 0)
        assert gaining > 5 and returned > 2 and walked["count"] - gaining - returned > 2
        edges = (gaining - 1, gaining, walked["count"] - returned - 1, walked["count"] - returned)
        for offset, limit in ((0, 10), (7, 5), (walked["count"] - 3, 10), (walked["count"] + 5, 10),
                              *((edge + shift, 3) for edge in edges for shift in (-2, 0, 1))):
            assert lagging_prices(session, limit=limit, offset=offset) == walk_every_product(
                session, limit=limit, offset=offset)
        # a whole list (an export) turns PostgreSQL's JIT off for its transaction; the same list
        assert lagging_prices(session, limit=JIT_FREE_LIMIT + 1) == walked
        assert lagging_prices(session, limit=JIT_FREE_LIMIT + 1, offset=walked["count"] - 2) == walk_every_product(
            session, limit=JIT_FREE_LIMIT + 1, offset=walked["count"] - 2)
    with app.state.db.lookup() as session:  # the page and the API read without a transaction (PostgreSQL)
        assert lagging_prices(session, limit=1000) == walked
        for category in ("Cat 0", "Cat 4"):
            in_category = walk_every_product_of(session, category)
            assert in_category["count"] and lagging_prices(session, limit=1000, category=category) == in_category


def test_lagging_pages_over_the_api(client, admin):
    for i in range(5):
        create_product(client, admin, f"PAG-{i}", cost="1000", price=str(1000 + i))
    first = client.get("/api/prices/lagging?limit=2", headers=admin).json()
    rest = client.get("/api/prices/lagging?limit=10&offset=2", headers=admin).json()
    assert first["count"] == rest["count"] == 5
    assert [i["sku"] for i in first["items"] + rest["items"]] == [f"PAG-{i}" for i in range(5)]
    error_of(client.get("/api/prices/lagging?offset=-1", headers=admin), 422, mentions="offset")


def test_the_kept_list_follows_every_input_whoever_writes_it(app, frozen_days):
    """Every input of the lagging rows (migration 0014's triggers), changed by the services and by bare SQL:
    after each change the list is the walk over every product, item for item."""
    import random

    from sqlalchemy import text

    from minimarket.pricing.lagging import lagging_prices
    from minimarket.pricing.settings import update_pricing_settings

    db, ctx = app.state.db, Context(actor="t")
    with db.write() as session:
        _random_store(session, random.Random(7))

    def settings(**changes) -> None:  # noqa: ANN003
        with db.write() as session:
            update_pricing_settings(session, ctx, changes=changes)

    def sql(statement: str) -> None:
        with db.write() as session:
            session.execute(text(statement))

    changes = [
        lambda: sql("UPDATE productos SET costo = ROUND(costo * 1.5, 2) WHERE id % 3 = 0"),
        lambda: sql("UPDATE productos SET precio = ROUND(precio * 1.25, 2) WHERE id % 4 = 0"),
        lambda: sql("UPDATE productos SET iva = 27 WHERE iva = 0"),
        lambda: sql("UPDATE productos SET margen = 80 WHERE margen IS NULL AND id % 5 = 0"),
        lambda: sql("UPDATE productos SET margen = NULL WHERE margen = 12.25"),
        lambda: sql("UPDATE productos SET categoria_id = (SELECT id FROM categorias WHERE nombre = 'Cat 4') "
                    "WHERE id % 7 = 0"),
        lambda: sql("UPDATE productos SET activo = NOT activo WHERE id % 11 = 0"),
        lambda: sql("UPDATE productos SET sku = 'Z-' || sku WHERE id % 13 = 0"),
        lambda: settings(category_markups={"Cat 2": D("60")}),
        lambda: settings(category_markups={"Cat 1": None, "Cat 0": D("5")}),
        lambda: settings(default_markup=D("50")),
        lambda: settings(rounding="termina_0"),
        lambda: settings(rounding="100", default_markup=D("20")),
        lambda: settings(monthly_inflation=D("9")),  # not an input of the list, but of its summaries
        lambda: sql("DELETE FROM ajustes WHERE clave = 'precios.redondeo'"),
        lambda: sql("INSERT INTO productos (sku, nombre, unidad, costo, precio, iva, stock_minimo, activo, creado_en, "
                    "actualizado_en) VALUES ('NUEVO-1', 'Nuevo', 'u', 1000, 100, 21, 0, TRUE, "
                    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
        lambda: sql("DELETE FROM productos WHERE sku = 'NUEVO-1'"),
    ]
    counts, firsts = [], []
    for step, change in enumerate([lambda: None, *changes]):
        change()
        with db.read() as session:
            walked = walk_every_product(session, limit=1000)
            assert lagging_prices(session, limit=1000) == walked, step
            assert lagging_prices(session, limit=7, offset=30) == {"count": walked["count"],
                                                                   "items": walked["items"][30:37]}
            in_category = [i for i in walked["items"] if i["sku"] in _skus_of(session, "Cat 2")]
            assert lagging_prices(session, limit=1000, category="Cat 2") == {"count": len(in_category),
                                                                             "items": in_category}
        counts.append(walked["count"])
        firsts.append([i["sku"] for i in walked["items"][:20]])
    assert len(set(counts)) > 8 and len({tuple(f) for f in firsts}) > 8  # the changes did move the list


def _skus_of(session, category: str) -> set[str]:  # noqa: ANN001
    from sqlalchemy import select

    from minimarket.catalog.models import Category, Product

    return set(session.scalars(select(Product.sku).join(Category, Category.id == Product.category_id)
                               .where(Category.name == category)))


def _refreshes(conn) -> int:  # noqa: ANN001
    """Whole-store recomputes of the lagging rows so far (PostgreSQL's function statistics, flushed)."""
    from sqlalchemy import text

    conn.execute(text("SELECT pg_stat_force_next_flush()"))
    conn.commit()
    conn.execute(text("SELECT pg_stat_clear_snapshot()"))
    calls = conn.execute(text("SELECT calls FROM pg_stat_user_functions "
                              "WHERE funcname = 'precios_atrasados_refrescar'")).scalar()
    conn.commit()
    return calls or 0


def test_markup_and_rounding_changed_together_recompute_the_lagging_rows_once(app, client, admin,
                                                                               backend) -> None:  # noqa: ANN001
    """One settings change of both the default markup and the rounding: one recompute of the whole store
    (PostgreSQL: deferred to the commit), with both new values; two changes in two transactions: two. SQLite's
    row triggers recompute once per row (checked there: the rows follow both values)."""
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from minimarket.pricing.lagging import count_lagging
    from minimarket.pricing.settings import update_pricing_settings
    from minimarket.reports.recount import aggregate_mismatches

    create_product(client, admin, "ARROZ-1", cost="500", price="820")  # 500 × 1.35 × 1.21 = 816.75: on target
    create_product(client, admin, "YERBA-1", cost="1000", price="1700")  # 1633.50 at 35 %; 1694 at 40 %
    create_product(client, admin, "FIDEO-1", cost="400", price="600")  # 653.40: lags at 35 %
    db = app.state.db
    with db.engine.connect() as conn:
        if backend == "postgresql":
            conn.execute(text("SET track_functions = 'pl'"))
            conn.commit()
            before = _refreshes(conn)
        with Session(bind=conn) as session:
            update_pricing_settings(session, Context(actor="t"), changes={"default_markup": D("40"), "rounding": "100"})
            session.commit()
        if backend == "postgresql":
            assert _refreshes(conn) == before + 1
        with Session(bind=conn) as session:  # each alone, each its own transaction: each recomputes
            update_pricing_settings(session, Context(actor="t"), changes={"default_markup": D("45")})
            session.commit()
        with Session(bind=conn) as session:
            update_pricing_settings(session, Context(actor="t"), changes={"rounding": "10"})
            session.commit()
        if backend == "postgresql":
            assert _refreshes(conn) == before + 3
    with db.read() as session:
        assert aggregate_mismatches(session) == []
        # 45 %: ARROZ 500 × 1.45 × 1.21 = 877.25 > 820, YERBA 1754.50 > 1700, FIDEO 701.80 > 600
        assert count_lagging(session) == 3
        assert session.scalar(text("SELECT sugerido FROM precios_atrasados p JOIN productos q "
                                   "ON q.id = p.producto_id WHERE q.sku = 'YERBA-1'")) == D("1760.00")
