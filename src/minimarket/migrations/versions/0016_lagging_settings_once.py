"""The store's default markup and rounding changed together: the lagging prices recomputed once

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 12:30:00

0014 recomputes every product's `precios_atrasados` row after each write of the store's default markup or
rounding rule: a row trigger on `ajustes`, so a settings change of both (PATCH /api/prices/settings, the
Configuración page, which always sends both) recomputed the whole store twice in one transaction, the first
time with half of the new settings.

PostgreSQL: the trigger is now a constraint trigger deferred to the commit (DEFERRABLE INITIALLY DEFERRED),
when every setting the transaction wrote is final. The first one to fire recomputes and notes, for the rest
of the transaction (`set_config(…, true)`), the transaction and the settings it recomputed with; the others
find the same settings and skip. If something fires it earlier (SET CONSTRAINTS … IMMEDIATE) and the
settings change again, the settings differ and it recomputes again: the kept rows always follow the last
settings. As before it first waits for the product writes in flight (LOCK TABLE productos IN SHARE MODE).
Reads of `precios_atrasados` later in the same transaction see the old rows (nothing in the app does that).

SQLite has neither statement nor deferred triggers: its row triggers still recompute once per row written
(SQLite writes one transaction at a time; its stores are small).
"""

from __future__ import annotations

import importlib

from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

_m14 = importlib.import_module("minimarket.migrations.versions.0014_lagging_prices_kept")
_KEYS = f"('{_m14.DEFAULT_MARKUP_KEY}', '{_m14.ROUNDING_KEY}')"
_DONE = "minimarket.precios_atrasados_recalculados"  # this transaction's id and the settings it recomputed with

_ONCE_BODY = f"""IF TG_OP = 'UPDATE' THEN
  IF NEW.valor IS NOT DISTINCT FROM OLD.valor THEN RETURN NULL; END IF;
END IF;
SELECT txid_current()::text || '|' || a.margen::text || '|' || a.regla INTO hecho FROM precios_ajustes() a;
IF current_setting('{_DONE}', true) IS NOT DISTINCT FROM hecho THEN RETURN NULL; END IF;
PERFORM set_config('{_DONE}', hecho, true);
LOCK TABLE productos IN SHARE MODE;
PERFORM precios_atrasados_refrescar(NULL);"""

_TRIGGERS = {
    "precios_atrasados_ajustes_cambio": ("INSERT OR UPDATE", "NEW"),
    "precios_atrasados_ajustes_baja": ("DELETE", "OLD"),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for trigger in _TRIGGERS:
        op.execute(f"DROP TRIGGER {trigger} ON ajustes")
    op.execute(f"CREATE OR REPLACE FUNCTION precios_atrasados_ajustes() RETURNS trigger LANGUAGE plpgsql "
               f"{_m14._TRIGGER_SETTINGS} AS $$\nDECLARE hecho text;\nBEGIN\n{_ONCE_BODY}\nRETURN NULL;\nEND\n$$")
    for trigger, (events, row) in _TRIGGERS.items():
        op.execute(f"CREATE CONSTRAINT TRIGGER {trigger} AFTER {events} ON ajustes DEFERRABLE INITIALLY DEFERRED "
                   f"FOR EACH ROW WHEN ({row}.clave IN {_KEYS}) EXECUTE FUNCTION precios_atrasados_ajustes()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for trigger in _TRIGGERS:
        op.execute(f"DROP TRIGGER {trigger} ON ajustes")
    op.execute(f"CREATE OR REPLACE FUNCTION precios_atrasados_ajustes() RETURNS trigger LANGUAGE plpgsql "
               f"{_m14._TRIGGER_SETTINGS} AS $$\nBEGIN\n{_m14._PG_TRIGGER_BODIES['precios_atrasados_ajustes']}"
               f"\nRETURN NULL;\nEND\n$$")
    for _function, trigger, _table, clause in _m14._pg_triggers():
        if trigger in _TRIGGERS:
            op.execute(f"CREATE TRIGGER {trigger} {clause} EXECUTE FUNCTION precios_atrasados_ajustes()")
