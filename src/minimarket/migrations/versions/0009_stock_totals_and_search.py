"""stock totals and text search: table `existencias_totales`; trigram indexes on PostgreSQL

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 01:10:00

* `existencias_totales`: per product, the sum of its balances (`cantidad`) and whether it is at or
  below its minimum (`bajo_minimo`), kept by the ledger in the same transaction as the balances
  (stock/totals.py). Partial indexes over the low and the out-of-stock products: the "bajo mínimo"
  and "sin stock" lists read those few rows instead of summing every product's balances.
  Filled here from `existencias`.
* PostgreSQL: `pg_trgm` and GIN trigram indexes on lower(nombre), lower(sku) and lower(marca), so
  `q=` (a LIKE '%…%' on each) is a bitmap index scan instead of reading the whole catalogue.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_REBUILD = """
INSERT INTO existencias_totales (producto_id, cantidad, bajo_minimo)
SELECT p.id, COALESCE(s.total, 0), COALESCE(s.total, 0) <= p.stock_minimo
FROM productos p LEFT JOIN (SELECT producto_id, ROUND(SUM(cantidad), 3) AS total FROM existencias
                            GROUP BY producto_id) s ON s.producto_id = p.id
"""
_TRIGRAM_COLUMNS = ("nombre", "sku", "marca")


def upgrade() -> None:
    op.create_table(
        'existencias_totales',
        sa.Column('producto_id', sa.Integer(), nullable=False),
        sa.Column('cantidad', sa.Numeric(precision=18, scale=3), nullable=False),  # several locations' sum
        sa.Column('bajo_minimo', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['producto_id'], ['productos.id'],
                                name=op.f('fk_existencias_totales_producto_id_productos')),
        sa.PrimaryKeyConstraint('producto_id', name=op.f('pk_existencias_totales')),
    )
    op.execute(_REBUILD)
    op.create_index('ix_existencias_totales_bajo', 'existencias_totales', ['producto_id'],
                    sqlite_where=sa.text('bajo_minimo'), postgresql_where=sa.text('bajo_minimo'))
    op.create_index('ix_existencias_totales_sin_stock', 'existencias_totales', ['producto_id'],
                    sqlite_where=sa.text('cantidad <= 0'), postgresql_where=sa.text('cantidad <= 0'))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
        for column in _TRIGRAM_COLUMNS:
            op.execute(f'CREATE INDEX ix_productos_{column}_trgm ON productos '
                       f'USING gin (lower({column}) gin_trgm_ops)')
        op.execute('ANALYZE productos')  # the planner needs the new indexes' and table's statistics at once
        op.execute('ANALYZE existencias_totales')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for column in _TRIGRAM_COLUMNS:
            op.execute(f'DROP INDEX IF EXISTS ix_productos_{column}_trgm')
    op.drop_index('ix_existencias_totales_sin_stock', table_name='existencias_totales')
    op.drop_index('ix_existencias_totales_bajo', table_name='existencias_totales')
    op.drop_table('existencias_totales')
