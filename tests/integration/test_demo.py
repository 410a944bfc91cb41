"""`generate_demo` against real databases: a consistent, believable and reproducible store."""

from __future__ import annotations

import random
import re
import uuid
from collections import defaultdict
from datetime import date, time, timedelta
from decimal import Decimal
from minimarket.ar.dates import STORE_TZ

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from minimarket.accounts.models import AuditEntry
from minimarket.ar.barcode import is_valid_barcode
from minimarket.ar.cuit import cuit_problem
from minimarket.catalog.models import Product
from minimarket.db import Database
from minimarket.errors import Conflict, InvalidInput
from minimarket.migrations.runner import upgrade
from minimarket.demo.catalog import REGIONAL_BRANDS
from minimarket.demo.generator import DemoSummary, database_is_empty, generate_demo
from minimarket.demo.plan import capacity, plan_catalogue
from minimarket.stock.models import Balance, Movement
from minimarket.stock.verify import verify_ledger
from minimarket.suppliers.models import Supplier
from tests.helpers import PG_URL, skip_outside_ci

SKU = re.compile(r"^[A-Z0-9._-]{1,40}$")
MILLI = Decimal("0.001")
FIXED_TODAY = date(2026, 3, 16)


def fresh_sqlite(path) -> Database:  # noqa: ANN001
    url = f"sqlite:///{path}"
    upgrade(url)
    return Database(url)


@pytest.fixture(scope="module")
def small(tmp_path_factory):  # noqa: ANN001, ANN201
    db = fresh_sqlite(tmp_path_factory.mktemp("demo") / "small.sqlite")
    calls: list[tuple[str, int, int]] = []
    summary = generate_demo(db, products=80, days=30, seed=1, progress=lambda *a: calls.append(a))
    yield db, summary, calls
    db.dispose()


def movements(db: Database) -> list:
    t = Movement.__table__
    with db.read() as session:
        return session.execute(select(t).order_by(t.c.id)).all()


def check_ledger(db: Database, summary: DemoSummary) -> None:
    """The invariants every demo database must keep, on any engine."""
    with db.read() as session:
        report = verify_ledger(session)
        assert report.ok, report.mismatches[:5]
        assert report.movements_checked == summary.movements
        balances = {(p, loc): Decimal(q) for p, loc, q in session.execute(
            select(Balance.product_id, Balance.location_id, Balance.quantity))}
    running: dict[tuple[int, int], Decimal] = defaultdict(Decimal)
    last_at: dict[tuple[int, int], object] = {}
    for row in movements(db):
        key = (row.producto_id, row.ubicacion_id)
        running[key] += Decimal(row.cantidad)
        assert running[key].quantize(MILLI) == Decimal(row.saldo_posterior).quantize(MILLI)
        assert running[key] >= 0, f"saldo negativo en {key}"
        assert key not in last_at or last_at[key] <= row.creado_en, "ids must follow time"
        last_at[key] = row.creado_en
        local = row.creado_en.astimezone(STORE_TZ).time()
        assert time(8, 0) <= local <= time(21, 30), local
        assert row.actor == "demo"
        assert uuid.UUID(row.operacion).version == 4
    assert all(q >= 0 for q in balances.values())
    assert {k: v.quantize(MILLI) for k, v in running.items()} == {k: v.quantize(MILLI) for k, v in balances.items()}


def test_small_store_ledger_is_consistent(small) -> None:  # noqa: ANN001
    db, summary, _ = small
    assert summary.products == 80 and summary.days == 30
    assert summary.sales_lines > 0 and summary.movements > summary.sales_lines
    check_ledger(db, summary)
    rows = movements(db)
    kinds = {r.tipo for r in rows}
    assert {"entrada", "venta", "merma", "transferencia"} <= kinds
    assert sum(1 for r in rows if r.tipo == "venta") == summary.sales_lines
    assert all(r.precio_unitario is not None for r in rows if r.tipo == "venta")
    assert {r.motivo for r in rows if r.tipo == "entrada"} == {"Stock inicial", "Entrega de proveedor"}
    per_operation: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        if r.tipo == "transferencia":
            per_operation[r.operacion] += Decimal(r.cantidad)
    assert per_operation and all(total == 0 for total in per_operation.values())
    today = date.today()  # close enough to the store's date for a ±1 day window
    days = {r.creado_en.astimezone(STORE_TZ).date() for r in rows}
    assert min(days) >= today - timedelta(days=32) and max(days) <= today


def test_small_store_catalogue_is_believable(small) -> None:  # noqa: ANN001
    db, _, _ = small
    with db.read() as session:
        products = session.scalars(select(Product).order_by(Product.sku)).all()
        cuits = session.scalars(select(Supplier.cuit)).all()
        assert len(products) == 80
        barcodes = [p.barcode for p in products]
        assert all(len(b) == 13 and b.startswith("779") and is_valid_barcode(b) for b in barcodes)
        assert len(set(barcodes)) == 80
        assert all(SKU.match(p.sku) for p in products) and len({p.sku for p in products}) == 80
        assert len({p.name for p in products}) == 80
        assert {p.unit for p in products} >= {"u", "kg"}
        assert {p.vat_rate for p in products} >= {Decimal("21"), Decimal("10.5")}
        assert 10 <= len(cuits) <= 15 and all(cuit_problem(c) is None and c.startswith("30") for c in cuits)
        for p in products:
            assert p.cost == p.cost.quantize(Decimal("0.01")) and p.cost > 0
            ratio = p.price / (p.cost * (1 + p.vat_rate / 100))
            assert Decimal("1.15") < ratio < Decimal("1.7"), (p.sku, p.cost, p.price)
            assert p.min_stock < p.max_stock and p.supplier_id is not None and p.category_id is not None
        unit_of = {p.id: p.unit for p in products}
    prices: dict[int, list[Decimal]] = defaultdict(list)
    for r in movements(db):
        q = Decimal(r.cantidad)
        if unit_of[r.producto_id] == "u":
            assert q == q.to_integral_value(), "unit goods move in whole units"
        assert q == q.quantize(MILLI)
        if r.tipo == "venta":
            prices[r.producto_id].append(Decimal(r.precio_unitario))
    # Prices only rise with inflation, and the catalogue holds the latest one.
    with db.read() as session:
        final = dict(session.execute(select(Product.id, Product.price)).all())
    for pid, seen in prices.items():
        assert seen == sorted(seen) and seen[-1] <= final[pid]


def test_progress_is_reported_in_spanish(small) -> None:  # noqa: ANN001
    _, _, calls = small
    labels = {label for label, _, _ in calls}
    assert {"Armando el catálogo", "Simulando ventas", "Guardando movimientos"} <= labels
    assert all(0 < done <= total for _, done, total in calls)
    for label in labels:
        last = [c for c in calls if c[0] == label][-1]
        assert last[1] == last[2]


def test_audit_row_is_written(small) -> None:  # noqa: ANN001
    db, summary, _ = small
    with db.read() as session:
        entries = session.execute(select(AuditEntry.actor, AuditEntry.entity, AuditEntry.after)
                                  .where(AuditEntry.action == "demo.generate")).all()
    assert len(entries) == 1
    actor, entity, after = entries[0]
    assert actor == "demo" and entity == "demo"
    assert after["products"] == 80 and after["movements"] == summary.movements


def test_refuses_a_database_with_products(small) -> None:  # noqa: ANN001
    db, _, _ = small
    assert database_is_empty(db) is False
    with pytest.raises(Conflict, match="ya tiene productos"):
        generate_demo(db, products=10, days=5)
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Product)) == 80


def test_empty_database_and_bad_sizes(tmp_path) -> None:  # noqa: ANN001
    db = fresh_sqlite(tmp_path / "empty.sqlite")
    assert database_is_empty(db) is True
    with pytest.raises(InvalidInput):
        generate_demo(db, products=0)
    with pytest.raises(InvalidInput):
        generate_demo(db, days=0)
    assert database_is_empty(db) is True
    db.dispose()


def _snapshot(db: Database) -> tuple[list, list]:
    with db.read() as session:
        catalogue = session.execute(select(Product.sku, Product.name, Product.price).order_by(Product.sku)).all()
        ledger = session.execute(
            select(Product.sku, Movement.location_id, Movement.type, Movement.quantity, Movement.created_at,
                   Movement.operation_id).join(Product, Product.id == Movement.product_id).order_by(Movement.id)).all()
    return catalogue, ledger


def test_same_seed_gives_the_same_store(tmp_path) -> None:  # noqa: ANN001
    snapshots = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        db = fresh_sqlite(tmp_path / f"{name}.sqlite")
        summary = generate_demo(db, products=40, days=15, seed=seed, today=FIXED_TODAY)
        snapshots.append((summary.movements, *_snapshot(db)))
        db.dispose()
    assert snapshots[0] == snapshots[1]
    assert snapshots[0][1] != snapshots[2][1]
    assert max(r.created_at for r in snapshots[0][2]).astimezone(STORE_TZ).date() == FIXED_TODAY - timedelta(days=1)


def test_sales_follow_the_week(tmp_path) -> None:  # noqa: ANN001
    db = fresh_sqlite(tmp_path / "week.sqlite")
    generate_demo(db, products=80, days=56, seed=3, today=FIXED_TODAY)
    units: dict[date, Decimal] = defaultdict(Decimal)
    with db.read() as session:
        rows = session.execute(select(Movement.created_at, Movement.quantity).join(Product)
                               .where(Movement.type == "venta", Product.unit == "u")).all()
    for when, qty in rows:
        units[when.astimezone(STORE_TZ).date()] -= Decimal(qty)

    def average(weekday: int) -> Decimal:
        days = [units[d] for d in units if d.weekday() == weekday]
        assert len(days) == 8
        return sum(days) / len(days)

    assert average(5) > average(0)  # Saturday beats Monday
    db.dispose()


@pytest.mark.postgres
def test_postgresql_generate_and_verify() -> None:
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    try:
        with admin.connect():
            pass
    except OperationalError as exc:
        admin.dispose()
        skip_outside_ci(f"PostgreSQL no disponible en {PG_URL}: {exc.orig}")
    name = f"mm_demo_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        db = Database(url)
        try:
            summary = generate_demo(db, products=60, days=20, seed=5)
            assert summary.products == 60
            check_ledger(db, summary)
            with db.read() as session:
                assert session.scalar(select(func.count()).select_from(Product)) == 60
            with pytest.raises(Conflict):
                generate_demo(db, products=5, days=2)
        finally:
            db.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_small_store_has_supplier_files_and_the_invoices_behind_its_deliveries(small) -> None:  # noqa: ANN001
    from minimarket.ar.invoices import LineAmount, Totals, totals_problems
    from minimarket.invoices.models import Invoice
    from minimarket.invoices.service import NET_FIELDS, VAT_FIELDS

    db, _, _ = small
    with db.read() as session:
        suppliers = session.scalars(select(Supplier)).all()
        assert all(s.lead_time_days in (1, 2, 3) and s.order_days and s.code for s in suppliers)
        invoices = session.scalars(select(Invoice).order_by(Invoice.id)).all()
        assert invoices and {i.state for i in invoices} == {"confirmada"}
        for invoice in invoices:
            totals = Totals(invoice_type=invoice.type,
                            net={Decimal(r): getattr(invoice, f) for r, f in NET_FIELDS.items() if getattr(invoice, f)},
                            vat={Decimal(r): getattr(invoice, f) for r, f in VAT_FIELDS.items() if getattr(invoice, f)},
                            perception_iibb=invoice.perception_iibb, perception_vat=invoice.perception_vat,
                            total=invoice.total)
            lines = [LineAmount(line.quantity, line.unit_cost, line.vat_rate) for line in invoice.lines]
            assert totals_problems(totals, lines) == [], invoice.id
            assert invoice.issuer_cuit == session.get(Supplier, invoice.supplier_id).cuit
        expected = {f"factura:{i.id}": (sum((line.quantity for line in i.lines), Decimal("0")), i.receipt_operation)
                    for i in invoices}
    by_invoice: dict[str, Decimal] = defaultdict(Decimal)
    deliveries = [r for r in movements(db) if r.tipo == "entrada" and r.motivo == "Entrega de proveedor"]
    for r in deliveries:
        by_invoice[r.referencia] += Decimal(r.cantidad)
    assert set(by_invoice) == set(expected)
    for reference, (quantity, operation) in expected.items():
        assert by_invoice[reference] == quantity
        assert {r.operacion for r in deliveries if r.referencia == reference} == {operation}


def test_price_history_follows_the_monthly_lists(small) -> None:  # noqa: ANN001
    from minimarket.pricing.lagging import lagging_prices
    from minimarket.catalog.price_history import PriceChange
    from minimarket.pricing.models import PriceBatch
    from minimarket.pricing.settings import load_pricing_settings

    db, _, _ = small
    with db.read() as session:
        products = {p.id: p for p in session.scalars(select(Product))}
        changes = session.scalars(select(PriceChange).order_by(PriceChange.id)).all()
        batched = [b.products for b in session.scalars(select(PriceBatch))]
        lagging = lagging_prices(session, limit=1000)
        assert load_pricing_settings(session).monthly_inflation == Decimal("3")
        assert changes and batched and sum(batched) == len(changes)
        last: dict[int, tuple[Decimal, Decimal]] = {}
        for change in changes:  # each product's chain of changes, ending at its current cost and price
            assert change.reason == "lista_proveedor" and change.cost_after > change.cost_before
            assert last.get(change.product_id, (change.cost_before, change.price_before)) == (change.cost_before,
                                                                                              change.price_before)
            last[change.product_id] = (change.cost_after, change.price_after)
        assert all((products[pid].cost, products[pid].price) == values for pid, values in last.items())
        held = {products[c.product_id].sku for c in changes if c.price_after == c.price_before}
        assert held, "the newest price lists are not on the shelves yet"
        assert {item["sku"] for item in lagging["items"]} == held
        assert all(item["replacement_cost"] >= item["cost"] for item in lagging["items"])


# --- a large store: up to 100,000 products (what `minimarket demo --products` accepts) ---------------


def test_the_catalogue_reaches_what_the_cli_accepts_with_unique_valid_codes() -> None:
    assert capacity() >= 100_000
    items = plan_catalogue(random.Random(42), 100_000, 30, lambda *_: None)
    assert len(items) == 100_000
    assert len({it.sku for it in items}) == 100_000 and all(SKU.match(it.sku) for it in items)
    barcodes = [it.barcode for it in items]
    assert len(set(barcodes)) == 100_000
    assert all(len(b) == 13 and b.startswith("779") and is_valid_barcode(b) for b in barcodes)
    assert len({it.name for it in items}) == 100_000 and max(len(it.name) for it in items) <= 200
    assert len({it.category for it in items}) == 12
    # The leading brands still sell the most: regional brands and big packs form the long tail.
    regional = [it for it in items if it.brand in REGIONAL_BRANDS]
    assert regional and sum(it.rate for it in regional) / len(regional) < sum(it.rate for it in items) / len(items)


def test_small_stores_keep_the_leading_brands_only() -> None:
    items = plan_catalogue(random.Random(42), capacity(0), 30, lambda *_: None)
    assert not [it for it in items if it.brand in REGIONAL_BRANDS]


def test_more_products_than_the_leading_brands_offer(database_url: str) -> None:
    """Past the 6,527 products the templates' brands give (refused before): SQLite and PostgreSQL.
    200 past them is enough to need the regional brands (it was 8,000: 1,473 more products to write)."""
    products = capacity(0) + 200
    db = Database(database_url)
    calls: list[tuple[str, int, int]] = []
    try:
        summary = generate_demo(db, products=products, days=3, seed=9, today=FIXED_TODAY,
                                progress=lambda *a: calls.append(a))
        assert summary.products == products and summary.sales_lines > 0
        with db.read() as session:
            report = verify_ledger(session)
            assert report.ok, report.mismatches[:5]
            assert report.movements_checked == summary.movements
            assert session.scalar(select(func.count(func.distinct(Product.barcode)))) == products
            assert session.scalar(select(func.count()).select_from(Product).where(
                Product.brand.in_(REGIONAL_BRANDS))) > 0
    finally:
        db.dispose()
    labels = [label for label, _, _ in calls]
    assert {"Armando el catálogo", "Simulando ventas", "Guardando movimientos"} <= set(labels)
    assert calls[-1][1] == calls[-1][2]


def test_the_history_reaches_today_up_to_now(tmp_path) -> None:  # noqa: ANN001
    from datetime import datetime

    now = datetime(2026, 3, 16, 15, 20, tzinfo=STORE_TZ)
    db = fresh_sqlite(tmp_path / "today.sqlite")
    summary = generate_demo(db, products=40, days=5, seed=4, now=now)
    check_ledger(db, summary)
    rows = movements(db)
    today = [r for r in rows if r.creado_en.astimezone(STORE_TZ).date() == now.date()]
    assert any(r.tipo == "venta" for r in today), "Inicio shows sales today"
    assert max(r.creado_en for r in rows) <= now and min(r.creado_en for r in rows).astimezone(STORE_TZ).date() \
        == date(2026, 3, 11)
    with db.read() as session:
        closed = session.scalar(select(func.max(Balance.updated_at)))
    assert closed.astimezone(STORE_TZ) == now
    db.dispose()


def test_the_demo_store_has_its_own_data(small) -> None:  # noqa: ANN001
    from minimarket.store_profile import load_store_profile

    db, _, _ = small
    with db.read() as session:
        profile = load_store_profile(session)
    assert profile.name.startswith("Minimercado") and cuit_problem(profile.cuit) is None and profile.address
