"""users and sessions: lock-out columns on `usuarios`, the `sesiones` table of the web dashboard

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 21:45:00

* `usuarios` gains `intentos_fallidos` (consecutive failed logins), `bloqueado_hasta` (lock-out
  end, with back-off) and `ultimo_ingreso`.
* `sesiones`: one row per browser session; the cookie holds a random token and only its
  SHA-256 is stored (`id`), with the session's CSRF token, expiry and last activity.
* `productos.actualizado_en` gets an index: the dashboard's change marker reads its maximum.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('usuarios') as batch:
        batch.add_column(sa.Column('intentos_fallidos', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('bloqueado_hasta', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('ultimo_ingreso', sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        'sesiones',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('usuario_id', sa.Integer(), nullable=False),
        sa.Column('csrf', sa.String(length=64), nullable=False),
        sa.Column('creada_en', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expira_en', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ultima_actividad', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ip', sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(['usuario_id'], ['usuarios.id'], name=op.f('fk_sesiones_usuario_id_usuarios'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sesiones')),
    )
    op.create_index(op.f('ix_sesiones_usuario_id'), 'sesiones', ['usuario_id'])
    op.create_index(op.f('ix_sesiones_expira_en'), 'sesiones', ['expira_en'])
    op.create_index(op.f('ix_productos_actualizado_en'), 'productos', ['actualizado_en'])
    op.create_index(op.f('ix_api_keys_usuario_id'), 'api_keys', ['usuario_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_api_keys_usuario_id'), table_name='api_keys')
    op.drop_index(op.f('ix_productos_actualizado_en'), table_name='productos')
    op.drop_index(op.f('ix_sesiones_expira_en'), table_name='sesiones')
    op.drop_index(op.f('ix_sesiones_usuario_id'), table_name='sesiones')
    op.drop_table('sesiones')
    with op.batch_alter_table('usuarios') as batch:
        batch.drop_column('ultimo_ingreso')
        batch.drop_column('bloqueado_hasta')
        batch.drop_column('intentos_fallidos')
