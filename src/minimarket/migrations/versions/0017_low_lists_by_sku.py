"""`existencias_totales` keeps its product's SKU: "bajo mínimo" and "sin stock" read by SKU from their own index

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 12:15:00

The API's and the dashboard's "bajo mínimo" list (and "sin stock") is ordered by SKU. Its partial index was on
`producto_id`, so a page read every low product's row and then each one's `productos` row by its key to sort
them by SKU (766–1,061 products at 100,000: ~3,000 buffers, 2–5 ms of PostgreSQL a page). With the SKU in the
totals row and the partial indexes on it, a page is a walk of the index in order that stops at the page.

A SKU never changes once the product exists (catalog.service), so the copy is written once, when the row is
inserted, by the database itself whoever inserts it (the ledger's upsert, a new product, 0015's trigger, a bulk
rebuild, migrate-to): PostgreSQL in a BEFORE INSERT trigger; SQLite, which cannot change NEW, in an AFTER INSERT
trigger that fills a row inserted without it (only then: an upsert that updates fires no INSERT trigger). `minimarket verify` checks the copy (stock.totals.total_mismatches).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

_PG_FILL = """
CREATE FUNCTION existencias_totales_sku() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.sku IS NULL THEN
    NEW.sku := (SELECT sku FROM productos WHERE id = NEW.producto_id);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER existencias_totales_sku BEFORE INSERT ON existencias_totales
  FOR EACH ROW EXECUTE FUNCTION existencias_totales_sku();
"""
_SQLITE_FILL = """
CREATE TRIGGER existencias_totales_sku AFTER INSERT ON existencias_totales WHEN NEW.sku IS NULL BEGIN
  UPDATE existencias_totales SET sku = (SELECT sku FROM productos WHERE id = NEW.producto_id)
  WHERE producto_id = NEW.producto_id;
END
"""
_OLD = (("ix_existencias_totales_bajo", "bajo_minimo"), ("ix_existencias_totales_sin_stock", "cantidad <= 0"))
_NEW = (("ix_existencias_totales_bajo_sku", "bajo_minimo"), ("ix_existencias_totales_sin_stock_sku", "cantidad <= 0"))


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.add_column('existencias_totales', sa.Column('sku', sa.String(length=40), nullable=True))
    op.execute("UPDATE existencias_totales SET sku = "
               "(SELECT p.sku FROM productos p WHERE p.id = existencias_totales.producto_id)")
    if postgres:
        op.execute(_PG_FILL)
    else:
        op.execute(_SQLITE_FILL)
    for name, where in _OLD:
        op.drop_index(name, table_name='existencias_totales')
    for name, where in _NEW:
        op.create_index(name, 'existencias_totales', ['sku'], sqlite_where=sa.text(where),
                        postgresql_where=sa.text(where))
    if postgres:
        op.execute('ANALYZE existencias_totales')


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, _ in _NEW:
        op.drop_index(name, table_name='existencias_totales')
    for name, where in _OLD:
        op.create_index(name, 'existencias_totales', ['producto_id'], sqlite_where=sa.text(where),
                        postgresql_where=sa.text(where))
    op.execute("DROP TRIGGER IF EXISTS existencias_totales_sku" + (" ON existencias_totales" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS existencias_totales_sku()")
    op.execute("ALTER TABLE existencias_totales DROP COLUMN sku")  # SQLite too (3.35+): no table rebuild, which
    # would drop the table's KPI triggers
