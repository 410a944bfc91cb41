"""Forecast over HTTP and the service, on SQLite and PostgreSQL: history read from the ledger
(venta + salida, stock-out days censored), stored in `pronosticos`, read back per SKU."""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from minimarket.catalog.models import Product
from minimarket.purchasing import service
from minimarket.purchasing.history import load_history
from minimarket.purchasing.models import Forecast
from minimarket.stock.models import Balance, Location, Movement
from minimarket.stock.totals import add_to_totals
from tests.integration.helpers import STORE_TZ, create_product, error_of

DAYS = 90


def _write_history(app, sku: str, plan: dict[int, list[tuple[str, int]]]) -> None:
    """Ledger rows at 12:00 store time `days_ago` days before today: (type, signed quantity)."""
    today = datetime.now(STORE_TZ).date()
    with app.state.db.write() as session:
        product_id = session.scalar(select(Product.id).where(Product.sku == sku))
        location_id = session.scalar(select(Location.id).where(Location.code == "SAL"))
        balance = Decimal(0)
        for days_ago in sorted(plan, reverse=True):
            at = datetime.combine(today - timedelta(days=days_ago), time(12), STORE_TZ)
            for kind, qty in plan[days_ago]:
                balance += qty
                session.add(Movement(product_id=product_id, location_id=location_id, type=kind, quantity=Decimal(qty),
                                     balance_after=balance, actor="test", operation_id=str(uuid.uuid4()),
                                     created_at=at))
        session.add(Balance(product_id=product_id, location_id=location_id, quantity=balance))
        session.flush()
        add_to_totals(session, {product_id: balance})  # the product's total follows its balances, as the ledger keeps it


@pytest.fixture
def store(app, client, admin):  # noqa: ANN001, ANN201
    create_product(client, admin, "REG", name="Yerba regular")
    create_product(client, admin, "CUT", name="Galletitas con quiebre")
    create_product(client, admin, "NEW", name="Producto sin historia")
    regular = {d: [("venta", -4)] for d in range(1, DAYS + 1)}
    regular[DAYS + 1] = [("entrada", 1000)]
    regular[30] = [("venta", -4), ("merma", -7), ("ajuste", -50)]  # not demand
    cut = {DAYS + 1: [("entrada", 2 * (DAYS - 30))]}
    for d in range(1, DAYS + 1):
        if not 20 <= d < 30:  # ten days with no stock: nothing to sell
            cut[d] = [("venta", -2)]
    cut[20] = [("entrada", 2 * 19 + 10)]  # ends with 10 left: the last days are not sold out
    _write_history(app, "REG", regular)
    _write_history(app, "CUT", cut)
    return app


def test_history_reads_demand_and_censors_stockouts(store) -> None:  # noqa: ANN001
    with store.state.db.read() as session:
        hist = load_history(session, days=DAYS + 5)
    reg, cut = hist.skus.index("REG"), hist.skus.index("CUT")
    assert hist.demand[:, reg].sum() == 4 * DAYS  # merma and ajuste are not demand
    assert hist.observed[-DAYS:, reg].all()
    # 31 days ago it sold its last 2 (closed at zero: sold out, demand cut short), then 30..20
    # days ago it had no stock; the delivery 20 days ago opened the day at zero too
    assert not hist.observed[-31:-19, cut].any()
    assert hist.observed[-19:, cut].all() and hist.observed[-DAYS:-31, cut].all()


def test_run_stores_a_forecast_and_the_sku_route_reads_it(store, client, admin) -> None:  # noqa: ANN001
    before = client.get("/api/forecast/REG", headers=admin)
    error_of(before, 404, mentions=("REG", "forecast run"))
    response = client.post("/api/forecast/run", json={"days": DAYS + 5}, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["products"] == 3
    with store.state.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Forecast)) == 3
    body = client.get("/api/forecast/reg", headers=admin).json()
    assert len(body["days"]) == 14 and all(d["units"] == pytest.approx(4.0, abs=0.05) for d in body["days"])
    assert body["observed_days"] == DAYS and body["method_label"] in body["how_chosen"]
    cut = client.get("/api/forecast/CUT", headers=admin).json()
    # zeros on the stock-out days would pull a 28-day mean to 2 × 18/28 ≈ 1.3
    assert cut["daily_rate"] == pytest.approx(2.0, abs=0.1)
    assert cut["observed_days"] == DAYS - 12
    new = client.get("/api/forecast/NEW", headers=admin).json()
    assert new["daily_rate"] == 0 and new["backtest_mae"] is None
    # a second run the same day replaces today's rows
    assert client.post("/api/forecast/run", headers=admin).status_code == 200
    with store.state.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Forecast)) == 3


def test_bad_forecast_input_names_the_field(store, client, admin) -> None:  # noqa: ANN001
    error_of(client.post("/api/forecast/run", json={"days": 3}, headers=admin), 422, mentions="days")
    error_of(client.get("/api/forecast/NOPE", headers=admin), 404, mentions="NOPE")


def test_evaluate_on_the_store_history(store) -> None:  # noqa: ANN001
    with store.state.db.read() as session:
        report = service.evaluate_store(session, days=DAYS)
    assert report["products"] == 3
    assert report["overall"]["choice"]["wape"] == pytest.approx(0.0, abs=0.05)  # constant sellers
    assert "Sin categoría" in report["by_group"]
    with store.state.db.read() as session:
        with pytest.raises(Exception, match="days"):
            service.evaluate_store(session, days=60)


def test_cli_run_and_evaluate_json(store, settings, monkeypatch) -> None:  # noqa: ANN001
    import json

    from typer.testing import CliRunner

    from minimarket.cli.main import app as cli

    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    runner = CliRunner()
    ran = runner.invoke(cli, ["forecast", "run", "--days", str(DAYS)])
    assert ran.exit_code == 0, ran.output
    assert "3 productos" in ran.output
    out = runner.invoke(cli, ["forecast", "evaluate", "--json", "--days", str(DAYS)])
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert set(report["overall"]) == {*service.F.METHODS, "choice"}
    short = runner.invoke(cli, ["forecast", "evaluate", "--days", "60"])
    assert short.exit_code == 2 and "84 días" in short.output


def test_the_nightly_run_recomputes_the_forecast(store, settings, tmp_path) -> None:  # noqa: ANN001
    from minimarket.ops.backup.scheduler import BackupScheduler, ScheduleConfig

    config = ScheduleConfig(enabled=True, hour=3, dest=tmp_path / "programados", keep=2, include_config=False)
    assert BackupScheduler(settings.database_url, config).run_once().status == "hecho"
    with store.state.db.read() as session:
        days = session.scalars(select(Forecast.history_days)).all()
    assert days == [180, 180, 180]
