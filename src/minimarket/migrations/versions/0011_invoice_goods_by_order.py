"""invoice goods brought in by a purchase order: column `facturas.mercaderia_ingresada_por`

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 02:20:00

* `facturas.mercaderia_ingresada_por`: what already brought the invoice's goods into stock instead
  of the invoice (`pedido:12`: a delivery of the purchase order the invoice is linked to). Confirming
  such an invoice records its costs only; without it, it would bring the goods in a second time.
  Filled here for the drafts linked to an order that already had a delivery.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

_RECEIVED_ORDER = "FROM pedidos p WHERE p.factura_id = facturas.id AND p.recibido_en IS NOT NULL"
_BACKFILL = (f"UPDATE facturas SET mercaderia_ingresada_por = "
             f"(SELECT 'pedido:' || CAST(MIN(p.id) AS VARCHAR(12)) {_RECEIVED_ORDER}) "
             f"WHERE estado = 'borrador' AND EXISTS (SELECT 1 {_RECEIVED_ORDER})")


def upgrade() -> None:
    op.add_column('facturas', sa.Column('mercaderia_ingresada_por', sa.String(length=40), nullable=True))
    op.execute(_BACKFILL)


def downgrade() -> None:
    with op.batch_alter_table('facturas') as batch:
        batch.drop_column('mercaderia_ingresada_por')
