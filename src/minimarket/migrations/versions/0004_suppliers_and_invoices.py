"""suppliers and invoices: supplier file, assignment rules, supplier codes, facturas and facturas_items

`proveedores` (from 0001) gains code, contact data, order days, lead time, minimum order,
notes and the survivor of a merge; rows without CUIT stay valid (suppliers "a completar").

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 21:36:02.086956
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('proveedores_reglas',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tipo', sa.String(length=20), nullable=False),
    sa.Column('valor', sa.String(length=100), nullable=False),
    sa.Column('proveedor_id', sa.Integer(), nullable=False),
    sa.Column('prioridad', sa.Integer(), nullable=False),
    sa.Column('creado_en', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['proveedor_id'], ['proveedores.id'], name=op.f('fk_proveedores_reglas_proveedor_id_proveedores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_proveedores_reglas'))
    )
    with op.batch_alter_table('proveedores_reglas', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_proveedores_reglas_proveedor_id'), ['proveedor_id'], unique=False)

    op.create_table('facturas',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('proveedor_id', sa.Integer(), nullable=False),
    sa.Column('tipo', sa.String(length=1), nullable=False),
    sa.Column('punto_venta', sa.Integer(), nullable=False),
    sa.Column('numero', sa.Integer(), nullable=False),
    sa.Column('fecha', sa.Date(), nullable=False),
    sa.Column('cuit_emisor', sa.String(length=11), nullable=False),
    sa.Column('neto_no_gravado', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('neto_10_5', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('neto_21', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('neto_27', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('iva_10_5', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('iva_21', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('iva_27', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('percepcion_iibb', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('percepcion_iva', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('total', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('cae', sa.String(length=14), nullable=True),
    sa.Column('cae_vencimiento', sa.Date(), nullable=True),
    sa.Column('estado', sa.String(length=12), nullable=False),
    sa.Column('ubicacion_id', sa.Integer(), nullable=True),
    sa.Column('notas', sa.Text(), nullable=True),
    sa.Column('creada_por', sa.String(length=120), nullable=False),
    sa.Column('creado_en', sa.DateTime(timezone=True), nullable=False),
    sa.Column('confirmada_por', sa.String(length=120), nullable=True),
    sa.Column('confirmada_en', sa.DateTime(timezone=True), nullable=True),
    sa.Column('anulada_por', sa.String(length=120), nullable=True),
    sa.Column('anulada_en', sa.DateTime(timezone=True), nullable=True),
    sa.Column('motivo_anulacion', sa.Text(), nullable=True),
    sa.Column('operacion_ingreso', sa.String(length=36), nullable=True),
    sa.Column('operacion_anulacion', sa.String(length=36), nullable=True),
    sa.CheckConstraint("estado IN ('borrador','confirmada','anulada')", name=op.f('ck_facturas_estado')),
    sa.CheckConstraint("tipo IN ('A','B','C','M')", name=op.f('ck_facturas_tipo')),
    sa.ForeignKeyConstraint(['proveedor_id'], ['proveedores.id'], name=op.f('fk_facturas_proveedor_id_proveedores')),
    sa.ForeignKeyConstraint(['ubicacion_id'], ['ubicaciones.id'], name=op.f('fk_facturas_ubicacion_id_ubicaciones')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_facturas')),
    sa.UniqueConstraint('cuit_emisor', 'tipo', 'punto_venta', 'numero', name='uq_facturas_comprobante')
    )
    with op.batch_alter_table('facturas', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_facturas_estado'), ['estado'], unique=False)
        batch_op.create_index(batch_op.f('ix_facturas_fecha'), ['fecha'], unique=False)
        batch_op.create_index(batch_op.f('ix_facturas_proveedor_id'), ['proveedor_id'], unique=False)

    op.create_table('proveedores_codigos',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('proveedor_id', sa.Integer(), nullable=False),
    sa.Column('codigo', sa.String(length=60), nullable=False),
    sa.Column('producto_id', sa.Integer(), nullable=False),
    sa.Column('unidades_por_bulto', sa.Integer(), nullable=True),
    sa.Column('creado_en', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['producto_id'], ['productos.id'], name=op.f('fk_proveedores_codigos_producto_id_productos')),
    sa.ForeignKeyConstraint(['proveedor_id'], ['proveedores.id'], name=op.f('fk_proveedores_codigos_proveedor_id_proveedores')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_proveedores_codigos')),
    sa.UniqueConstraint('proveedor_id', 'codigo', name='uq_proveedores_codigos_proveedor_codigo')
    )
    with op.batch_alter_table('proveedores_codigos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_proveedores_codigos_producto_id'), ['producto_id'], unique=False)

    op.create_table('facturas_items',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('factura_id', sa.Integer(), nullable=False),
    sa.Column('linea', sa.Integer(), nullable=False),
    sa.Column('codigo_barras', sa.String(length=14), nullable=True),
    sa.Column('sku', sa.String(length=40), nullable=True),
    sa.Column('codigo_proveedor', sa.String(length=60), nullable=True),
    sa.Column('descripcion', sa.String(length=200), nullable=True),
    sa.Column('producto_id', sa.Integer(), nullable=True),
    sa.Column('cantidad', sa.Numeric(precision=12, scale=3), nullable=False),
    sa.Column('costo_unitario', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('iva', sa.Numeric(precision=4, scale=1), nullable=False),
    sa.Column('descuento_pct', sa.Numeric(precision=5, scale=2), nullable=False),
    sa.Column('neto', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.ForeignKeyConstraint(['factura_id'], ['facturas.id'], name=op.f('fk_facturas_items_factura_id_facturas')),
    sa.ForeignKeyConstraint(['producto_id'], ['productos.id'], name=op.f('fk_facturas_items_producto_id_productos')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_facturas_items')),
    sa.UniqueConstraint('factura_id', 'linea', name='uq_facturas_items_factura_linea')
    )
    with op.batch_alter_table('facturas_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_facturas_items_factura_id'), ['factura_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_facturas_items_producto_id'), ['producto_id'], unique=False)

    with op.batch_alter_table('proveedores', schema=None) as batch_op:
        batch_op.add_column(sa.Column('codigo', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('telefono', sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column('email', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('direccion', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('dias_pedido', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('plazo_entrega_dias', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('pedido_minimo', sa.Numeric(precision=14, scale=2), nullable=True))
        batch_op.add_column(sa.Column('notas', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('fusionado_en_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('actualizado_en', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_proveedores_codigo'), ['codigo'])
        batch_op.create_foreign_key(batch_op.f('fk_proveedores_fusionado_en_id_proveedores'), 'proveedores', ['fusionado_en_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('proveedores', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_proveedores_fusionado_en_id_proveedores'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_proveedores_codigo'), type_='unique')
        batch_op.drop_column('actualizado_en')
        batch_op.drop_column('fusionado_en_id')
        batch_op.drop_column('notas')
        batch_op.drop_column('pedido_minimo')
        batch_op.drop_column('plazo_entrega_dias')
        batch_op.drop_column('dias_pedido')
        batch_op.drop_column('direccion')
        batch_op.drop_column('email')
        batch_op.drop_column('telefono')
        batch_op.drop_column('codigo')

    with op.batch_alter_table('facturas_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_facturas_items_producto_id'))
        batch_op.drop_index(batch_op.f('ix_facturas_items_factura_id'))

    op.drop_table('facturas_items')
    with op.batch_alter_table('proveedores_codigos', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_proveedores_codigos_producto_id'))

    op.drop_table('proveedores_codigos')
    with op.batch_alter_table('facturas', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_facturas_proveedor_id'))
        batch_op.drop_index(batch_op.f('ix_facturas_fecha'))
        batch_op.drop_index(batch_op.f('ix_facturas_estado'))

    op.drop_table('facturas')
    with op.batch_alter_table('proveedores_reglas', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_proveedores_reglas_proveedor_id'))

    op.drop_table('proveedores_reglas')
