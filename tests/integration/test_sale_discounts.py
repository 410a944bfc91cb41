"""Sales below the shelf price, over HTTP on SQLite and PostgreSQL: who may, how far, and the audit of each line.

Before: a `deposito` key sold a $ 1.550 item at `unit_price 0.00` and nothing recorded that
the price was not the shelf price.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from minimarket.accounts.models import AuditEntry
from minimarket.cli.main import app as cli_app
from minimarket.config import get_settings
from minimarket.stock.sale_prices import max_discount, set_max_discount
from tests.integration.helpers import assert_ledger_clean, create_product, error_of, movement_rows, total_stock


@pytest.fixture(autouse=True)
def _ledger_stays_consistent(app):  # noqa: ANN001, ANN202
    yield
    assert_ledger_clean(app)


@pytest.fixture
def shelf(client, admin):  # noqa: ANN001, ANN201
    create_product(client, admin, "ACEITE", price="1550.00", cost="900", initial_stock=20)
    create_product(client, admin, "PAN", unit="kg", price="2000.00", initial_stock="10.000")


def sale(client, headers, ticket, *lines):  # noqa: ANN001, ANN002, ANN201
    return client.post("/api/sales", json={"ticket_id": ticket, "lines": [dict(line) for line in lines]},
                       headers=headers)


def discount_rows(app) -> list:  # noqa: ANN001
    """(actor, ticket, after) of every discount audit row, oldest first."""
    with app.state.db.read() as session:
        return session.execute(select(AuditEntry.actor, AuditEntry.entity_id, AuditEntry.after)
                               .where(AuditEntry.action == "stock.sale.discount").order_by(AuditEntry.id)).all()


def test_a_deposito_key_cannot_sell_below_the_shelf_price(client, admin, make_key, app, shelf):
    deposito = {"X-API-Key": make_key("deposito", name="caja-deposito")}
    rows = movement_rows(app)
    r = sale(client, deposito, "T-1", {"sku": "PAN", "quantity": 1}, {"sku": "ACEITE", "quantity": 1, "unit_price": "0.00"})
    error = error_of(r, 403, code="descuento_no_autorizado",
                     mentions=("lines[1].unit_price", "ACEITE", "$ 0,00", "$ 1.550,00", "100,00 %", "encargado"))
    assert error["details"]["shelf_price"] == "1550.00" and error["details"]["unit_price"] == "0.00"
    assert movement_rows(app) == rows and total_stock(client, admin, "ACEITE") == 20
    assert discount_rows(app) == []
    # At the shelf price, or above it, the same key sells.
    ok = sale(client, deposito, "T-1", {"sku": "ACEITE", "quantity": 1}, {"sku": "PAN", "quantity": "0.5",
                                                                          "unit_price": "2100.00"})
    assert ok.status_code == 201, ok.text
    assert discount_rows(app) == []


@pytest.mark.parametrize("role", ["encargado", "admin"])
def test_encargado_and_admin_sell_below_it_and_every_line_is_audited(client, make_key, app, shelf, role):
    headers = {"X-API-Key": make_key(role, name=f"caja-{role}")}
    r = sale(client, headers, "T-2", {"sku": "ACEITE", "quantity": 2, "unit_price": "0.00"},
             {"sku": "PAN", "quantity": "0.250", "unit_price": "1800.00"}, {"sku": "ACEITE", "quantity": 1})
    assert r.status_code == 201, r.text
    assert Decimal(r.json()["total"]) == Decimal("450.00") + Decimal("1550.00")
    audited = [(actor, ticket, after["sku"], after["line"], after["shelf_price"], after["unit_price"],
                after["discount_percent"], after["role"]) for actor, ticket, after in discount_rows(app)]
    assert audited == [
        (f"apikey:caja-{role}", "T-2", "ACEITE", 0, "1550.00", "0.00", "100.00", role),
        (f"apikey:caja-{role}", "T-2", "PAN", 1, "2000.00", "1800.00", "10.00", role),
    ]


def test_the_store_setting_lets_any_seller_go_that_far_below(client, admin, make_key, app, shelf):
    with app.state.db.write() as session:
        set_max_discount(session, Decimal("10"))
    deposito = {"X-API-Key": make_key("deposito", name="caja-1")}
    at_limit = sale(client, deposito, "T-3", {"sku": "ACEITE", "quantity": 1, "unit_price": "1395.00"})
    assert at_limit.status_code == 201, at_limit.text
    past = sale(client, deposito, "T-4", {"sku": "PAN", "quantity": 1, "unit_price": "1799.99"})
    error_of(past, 403, code="descuento_no_autorizado", mentions=("lines[0].unit_price", "PAN", "10,01 %", "hasta 10 %"))
    assert [(after["sku"], after["unit_price"], actor) for actor, _, after in discount_rows(app)] == [
        ("ACEITE", "1395.00", "apikey:caja-1")]


@pytest.fixture
def cli_on(database_url, monkeypatch):  # noqa: ANN001, ANN201
    """The command line pointed at the test's database (its Settings are cached per process)."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_sale_discount_command_shows_and_changes_the_setting(app, cli_on):
    shown = cli_on.invoke(cli_app, ["sale-discount"])
    assert shown.exit_code == 0, shown.output
    assert "0 %" in shown.output
    changed = cli_on.invoke(cli_app, ["sale-discount", "--max", "7.5"])
    assert changed.exit_code == 0 and "7.5 %" in changed.output, changed.output
    with app.state.db.read() as session:
        assert max_discount(session) == Decimal("7.5")
    for bad in ("-1", "101", "5,5", "1e1", "abc"):
        refused = cli_on.invoke(cli_app, ["sale-discount", "--max", bad])
        assert refused.exit_code == 2, (bad, refused.output)
    with app.state.db.read() as session:
        assert max_discount(session) == Decimal("7.5")
