"""A product's first movement and a change of its price at once: the KPI value follows the new price

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 12:00:00

`productos_cambio` (0014) locks the changed products' `existencias_totales` rows so that a movement of
one of them either commits before the change (whose trigger then sums its stock at the new price) or
waits for it (and its own trigger reads the new price). A product loaded by bulk SQL (an import,
migrate-to) has no row until its first movement, and there is nothing to lock: that movement, still
uncommitted, counted its stock at the old price, the change counted none, and Inicio's stock value kept
the old price for good (PostgreSQL; SQLite writes one transaction at a time).

Now the trigger first gives each changed product that has no row an empty one (stock 0, low flag by its
minimum; in product order, ON CONFLICT DO NOTHING), in a statement of its own. If a first movement
inserted the row and has not committed, that insert waits for it, and the next statement (a new snapshot)
sums the committed stock at the new price; otherwise the row is this change's, and the movement's upsert
waits for the change to commit and its trigger reads the new price. The row's own KPI delta (stock 0
against "no row") is kept by 0013's `kpi_totales_alta`.
"""

from __future__ import annotations

import importlib

from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

_m14 = importlib.import_module("minimarket.migrations.versions.0014_lagging_prices_kept")

_OPEN_MISSING_TOTALS = """
  INSERT INTO existencias_totales (producto_id, cantidad, bajo_minimo)
  SELECT n.id, 0, 0 <= n.stock_minimo FROM nuevos n JOIN viejos o ON o.id = n.id
  WHERE (n.activo, n.costo, n.precio) IS DISTINCT FROM (o.activo, o.costo, o.precio)
    AND NOT EXISTS (SELECT 1 FROM existencias_totales t WHERE t.producto_id = n.id)
  ORDER BY n.id
  ON CONFLICT (producto_id) DO NOTHING;"""


def _replaced(body: str) -> str:
    return body.replace("CREATE FUNCTION productos_cambio()", "CREATE OR REPLACE FUNCTION productos_cambio()", 1)


def product_change() -> str:
    """0014's productos_cambio with the missing totals rows opened first."""
    body = _replaced(_m14._pg_product_change())
    assert "BEGIN\n  WITH cambios" in body
    return body.replace("BEGIN\n  WITH cambios", "BEGIN" + _OPEN_MISSING_TOTALS + "\n  WITH cambios", 1)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(product_change())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_replaced(_m14._pg_product_change()))
