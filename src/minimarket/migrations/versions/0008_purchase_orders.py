"""purchase orders: tables `pedidos` and `pedidos_items`; price history reason `pedido`

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 01:00:00

* `pedidos`: an order to one supplier, estado borrador → enviado → recibido_parcial → recibido, or
  cancelado; who sent, received or cancelled it and when; the linked supplier invoice; the ledger
  operation of each delivery.
* `pedidos_items`: one line per product: units ordered, units per case, expected net unit cost,
  units received so far, and why it was suggested.
* `precios_historial.motivo` also admits `pedido` (a receipt's cost).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

OLD_REASONS = "motivo IN ('manual','factura','aumento_masivo','lista_proveedor','deshacer')"
NEW_REASONS = "motivo IN ('manual','factura','aumento_masivo','lista_proveedor','deshacer','pedido')"


def upgrade() -> None:
    op.create_table(
        'pedidos',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('proveedor_id', sa.Integer(), nullable=False),
        sa.Column('estado', sa.String(length=20), nullable=False),
        sa.Column('notas', sa.Text(), nullable=True),
        sa.Column('creado_por', sa.String(length=120), nullable=False),
        sa.Column('creado_en', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actualizado_en', sa.DateTime(timezone=True), nullable=False),
        sa.Column('enviado_por', sa.String(length=120), nullable=True),
        sa.Column('enviado_en', sa.DateTime(timezone=True), nullable=True),
        sa.Column('entrega_estimada', sa.Date(), nullable=True),
        sa.Column('recibido_en', sa.DateTime(timezone=True), nullable=True),
        sa.Column('cancelado_por', sa.String(length=120), nullable=True),
        sa.Column('cancelado_en', sa.DateTime(timezone=True), nullable=True),
        sa.Column('motivo_cancelacion', sa.Text(), nullable=True),
        sa.Column('factura_id', sa.Integer(), nullable=True),
        sa.Column('operaciones_recepcion', sa.JSON(), nullable=False),
        sa.CheckConstraint("estado IN ('borrador','enviado','recibido_parcial','recibido','cancelado')",
                           name=op.f('ck_pedidos_estado')),
        sa.ForeignKeyConstraint(['factura_id'], ['facturas.id'], name=op.f('fk_pedidos_factura_id_facturas')),
        sa.ForeignKeyConstraint(['proveedor_id'], ['proveedores.id'], name=op.f('fk_pedidos_proveedor_id_proveedores')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_pedidos')),
    )
    op.create_index(op.f('ix_pedidos_estado'), 'pedidos', ['estado'], unique=False)
    op.create_index(op.f('ix_pedidos_factura_id'), 'pedidos', ['factura_id'], unique=False)
    op.create_index(op.f('ix_pedidos_proveedor_id'), 'pedidos', ['proveedor_id'], unique=False)
    op.create_table(
        'pedidos_items',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('pedido_id', sa.Integer(), nullable=False),
        sa.Column('linea', sa.Integer(), nullable=False),
        sa.Column('producto_id', sa.Integer(), nullable=False),
        sa.Column('cantidad', sa.Numeric(precision=12, scale=3), nullable=False),
        sa.Column('unidades_por_bulto', sa.Integer(), nullable=True),
        sa.Column('costo_unitario', sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column('cantidad_recibida', sa.Numeric(precision=12, scale=3), nullable=False),
        sa.Column('motivo', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['pedido_id'], ['pedidos.id'], name=op.f('fk_pedidos_items_pedido_id_pedidos')),
        sa.ForeignKeyConstraint(['producto_id'], ['productos.id'], name=op.f('fk_pedidos_items_producto_id_productos')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_pedidos_items')),
        sa.UniqueConstraint('pedido_id', 'linea', name='uq_pedidos_items_pedido_linea'),
        sa.UniqueConstraint('pedido_id', 'producto_id', name='uq_pedidos_items_pedido_producto'),
    )
    op.create_index(op.f('ix_pedidos_items_pedido_id'), 'pedidos_items', ['pedido_id'], unique=False)
    op.create_index(op.f('ix_pedidos_items_producto_id'), 'pedidos_items', ['producto_id'], unique=False)
    _reasons(NEW_REASONS)


def _reasons(condition: str) -> None:
    # SQLite rebuilds the table (batch mode); PostgreSQL drops and adds the constraint.
    with op.batch_alter_table('precios_historial', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_precios_historial_motivo'), type_='check')
        batch_op.create_check_constraint(op.f('ck_precios_historial_motivo'), condition)


def downgrade() -> None:
    op.execute("DELETE FROM precios_historial WHERE motivo = 'pedido'")
    _reasons(OLD_REASONS)
    op.drop_index(op.f('ix_pedidos_items_producto_id'), table_name='pedidos_items')
    op.drop_index(op.f('ix_pedidos_items_pedido_id'), table_name='pedidos_items')
    op.drop_table('pedidos_items')
    op.drop_index(op.f('ix_pedidos_proveedor_id'), table_name='pedidos')
    op.drop_index(op.f('ix_pedidos_factura_id'), table_name='pedidos')
    op.drop_index(op.f('ix_pedidos_estado'), table_name='pedidos')
    op.drop_table('pedidos')
