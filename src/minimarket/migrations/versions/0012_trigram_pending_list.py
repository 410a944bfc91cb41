"""trigram indexes with a short pending list (PostgreSQL only)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 04:15:00

* `ix_productos_{nombre,sku,marca}_trgm` (migration 0009): `gin_pending_list_limit = 256` kB instead
  of the server's 4 MB. A GIN index keeps new entries in an unsorted pending list until it fills up
  or a vacuum merges it, and every search reads that whole list: after the demo loaded 100,000
  products each index held ~250-500 pending pages and one `q=` (three index scans) cost 20-40 ms of
  CPU even when it found nothing; merged, 0.3-0.7 ms. A limit of 256 kB bounds what a search reads
  at any time; loading 100,000 products costs the same (~9 s for the three indexes), while turning
  `fastupdate` off would cost ~70 s. The pending lists left now are merged here.
"""

from __future__ import annotations

from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

_INDEXES = ('ix_productos_nombre_trgm', 'ix_productos_sku_trgm', 'ix_productos_marca_trgm')


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for index in _INDEXES:
        op.execute(f'ALTER INDEX {index} SET (gin_pending_list_limit = 256)')
        op.execute(f"SELECT gin_clean_pending_list('{index}'::regclass)")


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for index in _INDEXES:
        op.execute(f'ALTER INDEX {index} RESET (gin_pending_list_limit)')
