"""pricing: price history, price batches, product and category markups

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 21:36:34

* `lotes_precios`: one row per bulk change (percent rise, supplier price list, recompute,
  undo); `precios_historial`: one row per cost/price change of a product, with the batch id
  that lets a batch be undone exactly.
* `productos.margen` (the product's own markup over cost, percent) and
  `categorias.margen_objetivo` (the category's target markup); both nullable: unset falls
  back to the category's target, then to the store default (`ajustes`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('lotes_precios',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('operacion', sa.String(length=20), nullable=False),
    sa.Column('motivo', sa.String(length=20), nullable=False),
    sa.Column('porcentaje', sa.Numeric(precision=7, scale=2), nullable=True),
    sa.Column('descripcion', sa.String(length=300), nullable=True),
    sa.Column('filtro', sa.JSON(), nullable=True),
    sa.Column('productos', sa.Integer(), nullable=False),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('creado_en', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deshecho_en', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deshecho_por_lote', sa.Integer(), nullable=True),
    sa.Column('deshace_lote', sa.Integer(), nullable=True),
    sa.CheckConstraint("operacion IN ('price_percent','cost_percent','recompute','lista_proveedor','deshacer')", name=op.f('ck_lotes_precios_operacion')),
    sa.ForeignKeyConstraint(['deshace_lote'], ['lotes_precios.id'], name=op.f('fk_lotes_precios_deshace_lote_lotes_precios')),
    sa.ForeignKeyConstraint(['deshecho_por_lote'], ['lotes_precios.id'], name=op.f('fk_lotes_precios_deshecho_por_lote_lotes_precios')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lotes_precios'))
    )
    with op.batch_alter_table('lotes_precios', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lotes_precios_creado_en'), ['creado_en'], unique=False)

    op.create_table('precios_historial',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('producto_id', sa.Integer(), nullable=False),
    sa.Column('costo_antes', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('costo_despues', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('precio_antes', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('precio_despues', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('motivo', sa.String(length=20), nullable=False),
    sa.Column('lote_id', sa.Integer(), nullable=True),
    sa.Column('referencia', sa.String(length=100), nullable=True),
    sa.Column('actor', sa.String(length=120), nullable=False),
    sa.Column('creado_en', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("motivo IN ('manual','factura','aumento_masivo','lista_proveedor','deshacer')", name=op.f('ck_precios_historial_motivo')),
    sa.ForeignKeyConstraint(['lote_id'], ['lotes_precios.id'], name=op.f('fk_precios_historial_lote_id_lotes_precios')),
    sa.ForeignKeyConstraint(['producto_id'], ['productos.id'], name=op.f('fk_precios_historial_producto_id_productos')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_precios_historial'))
    )
    with op.batch_alter_table('precios_historial', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_precios_historial_creado_en'), ['creado_en'], unique=False)
        batch_op.create_index(batch_op.f('ix_precios_historial_lote_id'), ['lote_id'], unique=False)
        batch_op.create_index('ix_precios_historial_producto_id_id', ['producto_id', 'id'], unique=False)

    with op.batch_alter_table('categorias', schema=None) as batch_op:
        batch_op.add_column(sa.Column('margen_objetivo', sa.Numeric(precision=6, scale=2), nullable=True))

    with op.batch_alter_table('productos', schema=None) as batch_op:
        batch_op.add_column(sa.Column('margen', sa.Numeric(precision=6, scale=2), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('productos', schema=None) as batch_op:
        batch_op.drop_column('margen')

    with op.batch_alter_table('categorias', schema=None) as batch_op:
        batch_op.drop_column('margen_objetivo')

    with op.batch_alter_table('precios_historial', schema=None) as batch_op:
        batch_op.drop_index('ix_precios_historial_producto_id_id')
        batch_op.drop_index(batch_op.f('ix_precios_historial_lote_id'))
        batch_op.drop_index(batch_op.f('ix_precios_historial_creado_en'))

    op.drop_table('precios_historial')
    with op.batch_alter_table('lotes_precios', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lotes_precios_creado_en'))

    op.drop_table('lotes_precios')
