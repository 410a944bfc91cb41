"""Inicio's KPIs come from aggregates the database keeps in the transaction of every write (migration
0012): after any committed write they equal a full recount, on both backends, with and without Redis."""

from __future__ import annotations

import re
import threading
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text

from minimarket.accounts.audit import Context
from minimarket.apps import create_app
from minimarket.stock.schemas import BatchLine
from minimarket.stock.service import register_movement
from minimarket.reports import kpis as kpi_module
from minimarket.reports.kpis import compute_kpis, current_kpis, day_figures, fold_aggregates, stock_figures
from minimarket.reports.models import KpiDay, KpiStock
from minimarket.reports.recount import aggregate_mismatches
from minimarket.ar.dates import store_day_start
from tests.helpers import REDIS_URL, make_settings, need_redis
from tests.integration.helpers import create_product
from tests.web.helpers import sign_in


def recount(db) -> tuple[int, int, int, Decimal, Decimal]:  # noqa: ANN001
    """The five stock figures the slow way: every product's balances summed (not the kept totals)."""
    with db.read() as session:
        rows = session.execute(text(
            "SELECT p.activo, p.costo, p.precio, p.stock_minimo, COALESCE(SUM(e.cantidad), 0) "
            "FROM productos p LEFT JOIN existencias e ON e.producto_id = p.id "
            "GROUP BY p.id, p.activo, p.costo, p.precio, p.stock_minimo")).all()
    active = [(Decimal(str(c)), Decimal(str(pr)), Decimal(str(m)), Decimal(str(q))) for a, c, pr, m, q in rows if a]
    cents = Decimal("0.01")
    return (len(active), sum(1 for _, _, m, q in active if q <= m), sum(1 for *_, q in active if q <= 0),
            sum((q * c for c, _, _, q in active), Decimal(0)).quantize(cents),
            sum((q * p for _, p, _, q in active), Decimal(0)).quantize(cents))


def kept(db) -> tuple[int, int, int, Decimal, Decimal]:  # noqa: ANN001
    with db.read() as session:
        return stock_figures(session)[:5]


def today_sales(db) -> tuple[int, Decimal, Decimal]:  # noqa: ANN001
    """Movements of today, units and amount sold today, the slow way (from the ledger)."""
    with db.read() as session:
        rows = session.execute(text("SELECT tipo, cantidad, precio_unitario FROM movimientos_stock "
                                    "WHERE creado_en >= :start"), {"start": store_day_start()}).all()
    sold = [(-Decimal(str(q)), Decimal(str(p or 0))) for t, q, p in rows if t == "venta"]
    return len(rows), sum((q for q, _ in sold), Decimal(0)), sum((q * p for q, p in sold), Decimal(0))


def assert_kept_equals_recount(db) -> None:  # noqa: ANN001
    assert kept(db) == recount(db)
    with db.read() as session:
        day = day_figures(session, store_day_start().date())[0].get(store_day_start().date())
    movements, units, amount = today_sales(db)
    assert (day.movements if day else 0) == movements
    assert (day.units_sold if day else 0) == units
    assert (day.sales_amount if day else 0).quantize(Decimal("0.01")) == amount.quantize(Decimal("0.01"))


def test_every_kind_of_write_keeps_the_aggregates_equal_to_a_recount(app, client, admin) -> None:  # noqa: ANN001
    db = app.state.db
    assert kept(db) == recount(db) == (0, 0, 0, Decimal("0.00"), Decimal("0.00"))
    create_product(client, admin, "KPI-A", cost="100.50", price="150.00", min_stock=3, initial_stock=10)
    create_product(client, admin, "KPI-B", cost="2.25", price="3.10", min_stock=1, unit="kg")
    create_product(client, admin, "KPI-C", cost="7", price="9", initial_stock=4)
    assert_kept_equals_recount(db)
    for sku, body in [("KPI-A", {"type": "venta", "quantity": 8}), ("KPI-B", {"type": "entrada", "quantity": "1.375"}),
                      ("KPI-B", {"type": "venta", "quantity": "0.125"}), ("KPI-C", {"type": "merma", "quantity": 4})]:
        response = client.post(f"/api/inventory/{sku}/movements", json=body, headers=admin)
        assert response.status_code == 201, response.text
        assert_kept_equals_recount(db)
    for sku, change in [("KPI-A", {"cost": "120.00", "price": "180.00"}), ("KPI-B", {"min_stock": 5}),
                        ("KPI-C", {"active": False}), ("KPI-C", {"active": True})]:
        response = client.patch(f"/api/inventory/{sku}", json=change, headers=admin)
        assert response.status_code == 200, response.text
        assert_kept_equals_recount(db)
    sale = client.post("/api/sales", json={"ticket_id": "KPI-T1", "lines": [{"sku": "KPI-A", "quantity": 1},
                                                                            {"sku": "KPI-B", "quantity": "0.5"}]},
                       headers=admin)
    assert sale.status_code in (200, 201), sale.text
    assert_kept_equals_recount(db)
    with db.write() as session:  # a bulk SQL change of every price, as a price batch does
        session.execute(text("UPDATE productos SET precio = precio * 2, costo = costo + 1"))
    assert_kept_equals_recount(db)


def test_folding_sums_the_rows_into_one_and_changes_no_figure(app, client, admin, monkeypatch) -> None:  # noqa: ANN001
    db = app.state.db
    create_product(client, admin, "FOLD-1", cost="10", price="15", initial_stock=5)
    for _ in range(3):
        client.post("/api/inventory/FOLD-1/movements", json={"type": "venta", "quantity": 1}, headers=admin)
    with db.read() as session:
        before, _ = compute_kpis(session, kpi_module.change_marker(session))
        assert session.scalar(select(func.count()).select_from(KpiStock)) > 1
    monkeypatch.setattr(kpi_module, "FOLD_ROWS", 1)
    assert current_kpis(db) == before  # read, then folded (more than FOLD_ROWS rows)
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(KpiStock)) == 1
        assert session.scalar(select(func.count()).select_from(KpiDay).where(KpiDay.day == store_day_start().date())) == 1
    assert current_kpis(db) == before
    assert_kept_equals_recount(db)


def _inicio_numbers(client: TestClient) -> dict[str, str]:
    page = client.get("/")
    assert page.status_code == 200, page.text
    return dict(re.findall(r'data-kpi="([a-z_]+)">([^<]*)<', page.text))


@pytest.mark.parametrize("with_redis", [False, pytest.param(True, marks=pytest.mark.redis)])
def test_a_movement_moves_inicio_at_once(database_url: str, with_redis: bool) -> None:
    """On both backends, with and without Redis: the page right after the write shows it (no cache to expire)."""
    if with_redis:
        need_redis()
    settings = make_settings(database_url, redis_url=REDIS_URL if with_redis else None)
    apps = [create_app("all", settings), create_app("all", settings)]  # two processes: write on one, read the other
    try:
        with TestClient(apps[0]) as writer, TestClient(apps[1]) as reader:
            sign_in(apps[1], reader, "lectura")
            from tests.integration.test_rate_limit_redis import new_key

            key = {"X-API-Key": new_key(apps[0])}
            create_product(writer, key, "VIVO-1", cost="1000.00", price="1500.00", min_stock=2, initial_stock=3)
            before = _inicio_numbers(reader)
            assert before["stock_value_cost"] == "$ 3.000,00" and before["below_minimum"] == "0"
            sold = writer.post("/api/inventory/VIVO-1/movements", json={"type": "venta", "quantity": 2}, headers=key)
            assert sold.status_code == 201, sold.text
            after = _inicio_numbers(reader)
            assert after["stock_value_cost"] == "$ 1.000,00"
            assert after["below_minimum"] == "1"
            assert after["sales_today_amount"] == "$ 3.000,00"
            assert int(after["movements_today"]) == int(before["movements_today"]) + 1
            changed = writer.patch("/api/inventory/VIVO-1", json={"cost": "1100.00"}, headers=key)
            assert changed.status_code == 200, changed.text
            assert _inicio_numbers(reader)["stock_value_cost"] == "$ 1.100,00"
    finally:
        for app in apps:
            app.state.db.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("first", ["price", "movement"])
def test_a_price_change_and_a_movement_of_the_same_product_at_once_keep_the_value_right(
        app, client, admin, backend: str, first: str) -> None:  # noqa: ANN001
    """The price change locks the product's totals row: whichever commits first, the other reads what it wrote."""
    if backend != "postgresql":
        pytest.skip("SQLite writes one transaction at a time")
    db = app.state.db
    create_product(client, admin, "CARRERA-1", cost="10.00", price="20.00", initial_stock=100)
    errors: list[BaseException] = []

    def in_thread(action) -> threading.Thread:  # noqa: ANN001
        def run() -> None:
            try:
                action()
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
        thread = threading.Thread(target=run)
        thread.start()
        return thread

    def move() -> None:
        response = client.post("/api/inventory/CARRERA-1/movements", json={"type": "entrada", "quantity": 50},
                               headers=admin)
        assert response.status_code == 201, response.text

    def reprice() -> None:
        response = client.patch("/api/inventory/CARRERA-1", json={"cost": "12.00"}, headers=admin)
        assert response.status_code == 200, response.text

    if first == "movement":  # the movement's trigger read $ 10; the price change must see its 150 units
        with db.write() as session:
            register_movement(session, Context(actor="test"), line=BatchLine(sku="CARRERA-1", type="entrada",
                                                                              quantity=50), settings=app.state.settings)
            other = in_thread(reprice)
            other.join(0.5)
            assert other.is_alive(), "the price change waits for the movement's lock on the totals row"
    else:  # the price change read 100 units; the movement must read $ 12
        with db.write() as session:
            session.execute(text("UPDATE productos SET costo = 12.00 WHERE sku = 'CARRERA-1'"))
            other = in_thread(move)
            other.join(0.5)
            assert other.is_alive(), "the movement waits for the price change's lock on the totals row"
    other.join(30)
    assert not errors, errors
    assert kept(db) == recount(db)
    assert kept(db)[3] == Decimal("1800.00")  # 150 × $ 12


@pytest.mark.postgres
@pytest.mark.parametrize("first", ["price", "movement"])
def test_a_first_movement_and_a_price_change_at_once_keep_the_value_right(
        app, client, admin, backend: str, first: str) -> None:  # noqa: ANN001
    """A product loaded by bulk SQL (an import, migrate-to) has no totals row until its first movement: the price
    change cannot lock a row that does not exist yet. Whichever starts first, the value follows the new cost."""
    if backend != "postgresql":
        pytest.skip("SQLite writes one transaction at a time")
    db = app.state.db
    with db.write() as session:  # like a bulk import: no existencias_totales row
        session.execute(text("INSERT INTO productos (sku, nombre, unidad, costo, precio, iva, stock_minimo, activo, "
                             "creado_en, actualizado_en) VALUES ('PRIMERO-1', 'Primero', 'u', 10.00, 20.00, 21, 0, "
                             "TRUE, now(), now())"))
    with db.read() as session:
        assert session.scalar(text("SELECT COUNT(*) FROM existencias_totales")) == 0
    errors: list[BaseException] = []

    def in_thread(action) -> threading.Thread:  # noqa: ANN001
        def run() -> None:
            try:
                action()
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
        thread = threading.Thread(target=run)
        thread.start()
        return thread

    def move() -> None:
        with db.write() as session:
            register_movement(session, Context(actor="test"), line=BatchLine(sku="PRIMERO-1", type="entrada",
                                                                              quantity=50), settings=app.state.settings)

    def reprice() -> None:
        with db.write() as session:
            session.execute(text("UPDATE productos SET costo = 12.00 WHERE sku = 'PRIMERO-1'"))

    if first == "movement":  # its trigger read $ 10, uncommitted; the price change must count its 50 units
        with db.write() as session:
            register_movement(session, Context(actor="test"), line=BatchLine(sku="PRIMERO-1", type="entrada",
                                                                              quantity=50), settings=app.state.settings)
            other = in_thread(reprice)
            other.join(0.5)
            assert other.is_alive(), "the price change waits for the movement's totals row"
    else:  # the price change saw no units; the movement must read $ 12
        with db.write() as session:
            session.execute(text("UPDATE productos SET costo = 12.00 WHERE sku = 'PRIMERO-1'"))
            other = in_thread(move)
            other.join(0.5)
            assert other.is_alive(), "the movement waits for the price change's totals row"
    other.join(30)
    assert not errors, errors
    assert kept(db) == recount(db)
    assert kept(db)[3] == Decimal("600.00")  # 50 × $ 12
    with db.read() as session:
        assert aggregate_mismatches(session) == []
