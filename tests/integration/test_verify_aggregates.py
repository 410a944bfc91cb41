"""`minimarket verify` recounts the aggregates the database triggers keep (Inicio's KPIs of migration 0013,
the lagging prices of 0014) from their source tables: nothing to report on a store written through the app,
each corrupted figure or row named with what was kept and what was recounted, and the command exits 1.
SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import text

from minimarket.stock.verify import run_verification
from tests.integration.helpers import create_product, store_today
from tests.integration.test_cli_errors import minimarket


def _store(client, admin) -> None:  # noqa: ANN001
    """Three products moved, one never moved, a sale, a cost that rose, a settings change."""
    create_product(client, admin, "YERBA-1", cost="1000", price="1640", min_stock=2, initial_stock=10)
    create_product(client, admin, "ARROZ-1", cost="500", price="820", min_stock=5, initial_stock=3)
    create_product(client, admin, "FIDEO-1", cost="400", price="660")  # never moved: no totals row
    create_product(client, admin, "LECHE-1", cost="1000", price="1000", initial_stock=1)  # lags from the start
    sale = client.post("/api/sales", headers=admin, json={"ticket_id": "T-1", "lines": [{"sku": "YERBA-1",
                                                                                        "quantity": 2}]})
    assert sale.status_code == 201, sale.text
    assert client.patch("/api/inventory/FIDEO-1", headers=admin, json={"cost": "600"}).status_code == 200
    assert client.patch("/api/prices/settings", headers=admin, json={"rounding": "100"}).status_code == 200


def test_a_store_written_through_the_app_has_nothing_to_report(client, admin, app, tmp_path) -> None:  # noqa: ANN001
    _store(client, admin)
    report = run_verification(app.state.db)
    assert report.aggregates == [] and report.mismatches == [] and report.ok
    result = minimarket("verify", cwd=tmp_path, DATABASE_URL=app.state.db.url, COLUMNS="200")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "los KPI de Inicio y los precios atrasados guardados coinciden con su recuento" in result.stdout


def test_each_corrupted_aggregate_is_named_with_kept_and_recounted(client, admin, app, tmp_path) -> None:  # noqa: ANN001
    _store(client, admin)
    with app.state.db.write() as session:
        # A stray delta row of the stock figures: one more below minimum, $ 1500 more at cost.
        session.execute(text("INSERT INTO kpi_existencias (activos, bajo_minimo, sin_stock, valor_costo_e5, "
                             "valor_precio_e5) VALUES (0, 1, 0, 150000000, 0)"))
        # Today's sales $ 100 more than the ledger's.
        session.execute(text("UPDATE kpi_dias SET ventas_importe = ventas_importe + 100 "
                             "WHERE id = (SELECT MAX(id) FROM kpi_dias)"))
        # A kept suggested price that is not the rule's, a lagging row gone, one for a product that does not lag.
        session.execute(text("UPDATE precios_atrasados SET sugerido = 990 WHERE sku = 'FIDEO-1'"))
        session.execute(text("DELETE FROM precios_atrasados WHERE sku = 'LECHE-1'"))
        yerba = session.execute(text("SELECT id, categoria_id, sku, precio, iva FROM productos "
                                     "WHERE sku = 'YERBA-1'")).one()
        session.execute(text("INSERT INTO precios_atrasados (producto_id, categoria_id, sku, precio, iva, sugerido, "
                             "proporcion) VALUES (:id, :cat, :sku, :price, :vat, 2000, 0.82)"),
                        {"id": yerba.id, "cat": yerba.categoria_id, "sku": yerba.sku, "price": yerba.precio,
                         "vat": yerba.iva})

    report = run_verification(app.state.db)
    assert report.mismatches == [] and not report.ok
    # 1000 × 8 + 500 × 3 + 1000 × 1 = 10,500 at cost; ARROZ-1 (3 ≤ 5) and FIDEO-1 (never moved) below minimum.
    # FIDEO-1: 600 × 1.35 × 1.21 = 980.10 → 1000 (rounding 100); LECHE-1: 1000 × 1.35 × 1.21 = 1633.50 → 1700.
    assert [(a.what, a.row, a.kept, a.recounted) for a in report.aggregates] == [
        ("KPI de Inicio: productos bajo mínimo", "total", "3", "2"),
        ("KPI de Inicio: valor del stock a costo", "total", "$ 12000", "$ 10500"),
        ("KPI de Inicio: ventas (importe) del día", store_today(), "3380.00", "3280.00"),
        ("Precios atrasados", "YERBA-1", "atrasado, sugerido 2000.00", "no está atrasado"),
        ("Precios atrasados", "FIDEO-1", "sugerido 990.00", "sugerido 1000.00"),
        ("Precios atrasados", "LECHE-1", "sin fila", "atrasado, sugerido 1700.00"),
    ]
    assert report.aggregates[0].problem == "KPI de Inicio: productos bajo mínimo (total): guardado 3, recontado 2"

    result = minimarket("verify", cwd=tmp_path, DATABASE_URL=app.state.db.url, COLUMNS="200")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Agregados que no coinciden con su recuento" in result.stdout, result.stdout
    assert "6 agregado(s) no coinciden" in result.stdout, result.stdout
    for shown in ("productos bajo mínimo", "$ 12000", "$ 10500", "3380.00", "LECHE-1", "sin fila", "no está atrasado"):
        assert shown in result.stdout, (shown, result.stdout)
    assert "Traceback" not in result.stdout + result.stderr
