"""price changes rewrite no index: productos without the `actualizado_en` index, with room on each page

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 02:00:00

A bulk price change updates `costo`, `precio` and `actualizado_en` of every product it touches.
With `actualizado_en` indexed, no such update could be a HOT update (heap-only tuple), so each
row put a new entry in every one of the table's eight indexes. Now:

* `ix_productos_actualizado_en` is dropped: the dashboard's change marker is the last audit row
  (reports/kpis.py), not the last product change, so nothing reads it.
* PostgreSQL: `productos` keeps 55 % of each page free (fillfactor 45) and is rewritten once
  that way (CLUSTER on its primary key), so even a change to every product finds room for the
  new row versions on their own pages: a HOT update, no index touched.
* `ix_precios_historial_creado_en` is dropped: every reader of the history goes by product
  (`ix_precios_historial_producto_id_id`) or by batch (`ix_precios_historial_lote_id`).
"""

from __future__ import annotations

from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

FILLFACTOR = 45


def upgrade() -> None:
    op.drop_index('ix_productos_actualizado_en', table_name='productos')
    op.drop_index('ix_precios_historial_creado_en', table_name='precios_historial')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(f'ALTER TABLE productos SET (fillfactor = {FILLFACTOR})')
        op.execute('CLUSTER productos USING pk_productos')  # rewrites the table with the new fillfactor
        op.execute('ALTER TABLE productos SET WITHOUT CLUSTER')  # a one-off rewrite, not a standing order


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE productos RESET (fillfactor)')
    op.create_index('ix_precios_historial_creado_en', 'precios_historial', ['creado_en'])
    op.create_index('ix_productos_actualizado_en', 'productos', ['actualizado_en'])
