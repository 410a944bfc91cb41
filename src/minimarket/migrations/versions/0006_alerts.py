"""alerts: table `alertas` (what Alertmanager delivered to the webhook) and the webhook's token

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 22:10:00

* `alertas`: one row per alert occurrence (Alertmanager fingerprint + start time, unique), updated
  by later notifications of the same occurrence (`resolved`, repeats).
* `system_config.alertmanager_token_encrypted`: the bearer token Alertmanager presents to
  POST /api/alerts/webhook (`minimarket secret set alertmanager_webhook_token`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'alertas',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('nombre', sa.String(length=200), nullable=False),
        sa.Column('estado', sa.String(length=10), nullable=False),
        sa.Column('severidad', sa.String(length=50), nullable=True),
        sa.Column('servicio', sa.String(length=100), nullable=True),
        sa.Column('resumen', sa.Text(), nullable=True),
        sa.Column('etiquetas', sa.JSON(), nullable=False),
        sa.Column('anotaciones', sa.JSON(), nullable=False),
        sa.Column('huella', sa.String(length=64), nullable=False),
        sa.Column('inicio', sa.DateTime(timezone=True), nullable=False),
        sa.Column('fin', sa.DateTime(timezone=True), nullable=True),
        sa.Column('origen_url', sa.Text(), nullable=True),
        sa.Column('receptor', sa.String(length=200), nullable=True),
        sa.Column('notificaciones', sa.Integer(), nullable=False),
        sa.Column('recibida_en', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actualizada_en', sa.DateTime(timezone=True), nullable=False),
        sa.Column('correo_enviado_en', sa.DateTime(timezone=True), nullable=True),
        sa.Column('correo_error', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_alertas')),
        sa.UniqueConstraint('huella', 'inicio', name='uq_alertas_huella_inicio'),
    )
    with op.batch_alter_table('alertas', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alertas_nombre'), ['nombre'], unique=False)
        batch_op.create_index('ix_alertas_estado_inicio', ['estado', 'inicio'], unique=False)
    with op.batch_alter_table('system_config', schema=None) as batch_op:
        batch_op.add_column(sa.Column('alertmanager_token_encrypted', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('system_config', schema=None) as batch_op:
        batch_op.drop_column('alertmanager_token_encrypted')
    op.drop_table('alertas')
