"""forecasts: table `pronosticos` (purchasing: the chosen demand forecast of each product)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 23:40:00

* `pronosticos`: per product and computation day, the chosen method (by rolling-origin backtest),
  its daily rate and weekday profile (7 factors, Monday first, mean 1), the backtest error
  (units per day and WAPE) and how many days of history were observed (not stock-outs).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'pronosticos',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('producto_id', sa.Integer(), nullable=False),
        sa.Column('fecha_calculo', sa.Date(), nullable=False),
        sa.Column('tasa_diaria', sa.Float(), nullable=False),
        sa.Column('perfil_semanal', sa.JSON(), nullable=False),
        sa.Column('metodo', sa.String(length=30), nullable=False),
        sa.Column('error_backtest', sa.Float(), nullable=True),
        sa.Column('wape_backtest', sa.Float(), nullable=True),
        sa.Column('dias_historia', sa.Integer(), nullable=False),
        sa.Column('dias_observados', sa.Integer(), nullable=False),
        sa.Column('creado_en', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['producto_id'], ['productos.id'], name=op.f('fk_pronosticos_producto_id_productos'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_pronosticos')),
        sa.UniqueConstraint('producto_id', 'fecha_calculo', name='uq_pronosticos_producto_fecha'),
    )
    op.create_index(op.f('ix_pronosticos_fecha_calculo'), 'pronosticos', ['fecha_calculo'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_pronosticos_fecha_calculo'), table_name='pronosticos')
    op.drop_table('pronosticos')
