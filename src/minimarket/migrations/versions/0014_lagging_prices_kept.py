"""Lagging prices kept by triggers (`precios_atrasados`); Inicio's product trigger in one pass

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 08:00:00

`precios_atrasados` holds one row per product whose shelf price gives less than its target markup
(pricing.lagging): its category and SKU (the filters and the last sort key), its price and IVA,
the suggested shelf price and price ÷ suggested (the order of those that lose nothing a day).
Triggers keep it in the transaction of every write to any input, whoever writes: a product's
cost, price, IVA, own markup, category, SKU or active flag; a category's target markup; the
store's default markup or rounding rule (those two recompute every product: a rare owner action,
one transaction, after waiting for the product writes in flight). The list page reads a page of
it instead of computing every product; `ix_movimientos_stock_ventas` (partial: sales only,
covering) gives the last 30 days' sales without reading the ledger's rows.

PostgreSQL computes in NUMERIC, the same expressions pricing.lagging used at read time. SQLite's
NUMERIC is a binary float, so its triggers compute in integers (cents, tenths of IVA, hundredths of
markup; the cost split in two so that nothing overflows over NUMERIC(14,2)): exact. Price ÷
suggested is a REAL there (correctly rounded from two integers: the same order as the exact
quotient while suggested prices stay under ~$ 670.000; only that key is read from it).

Also: `kpi_productos_cambio` (0013) joined the new and old transition tables twice (once to lock the
changed products' totals, once to sum), each join estimated at n² rows, so PostgreSQL compiled it
with JIT and sorted on disk: 5-7 s for `UPDATE productos SET precio = precio * 1.01` over 100,000
products even when nothing changed. Now one function `productos_cambio` runs one statement: a
materialized CTE joins them once and keeps only the rows where an input changed; the KPI delta (rows
whose cost, price or active flag changed) is summed over those products' totals as its locking CTE
returns them, and their lagging rows are refreshed from the same CTE; without JIT, with hash joins.
"""

from __future__ import annotations

import importlib

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

# 0013's own SQL builders: the KPI figures are written once, there.
_kpi = importlib.import_module("minimarket.migrations.versions.0013_kpi_aggregates")

DEFAULT_MARKUP_KEY = "precios.margen_defecto"
ROUNDING_KEY = "precios.redondeo"
ROUNDING_RULES = ("1", "5", "10", "50", "100", "termina_9", "termina_0")
STEPS = {"1": 1, "5": 5, "10": 10, "50": 50, "100": 100}
ENDINGS = {"termina_9": 9, "termina_0": 0}
_INPUTS = ("activo", "costo", "precio", "iva", "margen", "categoria_id", "sku")
_KEPT_COLUMNS = "producto_id, categoria_id, sku, precio, iva, sugerido, proporcion"
_RULES_SQL = ", ".join(f"'{r}'" for r in ROUNDING_RULES)


# --------------------------------------------------------------------------------------- PostgreSQL

def _pg_round(value: str, rule: str) -> str:
    """pricing.rules.round_price over NUMERIC for the rule held in the SQL expression `rule`."""
    steps = " ".join(f"WHEN '{name}' THEN CEIL({value} / {step}) * {step}" for name, step in STEPS.items())
    endings = " ".join(f"WHEN '{name}' THEN CEIL({value}) + MOD({end + 10} - MOD(CEIL({value}), 10), 10)"
                       for name, end in ENDINGS.items())
    return f"CASE WHEN {value} <= 0 THEN 0 ELSE CASE {rule} {steps} {endings} END END"


def _pg_refresh(rows: str) -> tuple[str, str]:
    """(CTEs, INSERT) recomputing the kept rows of the products `rows` gives (alias p: productos' columns).

    The rule is pricing.lagging's: active, with a cost, and price < cost × (1 + markup) × (1 + IVA), the
    markup the product's own, else its category's target, else the store default."""
    hundred = "CAST(100 AS NUMERIC(30, 10))"
    ctes = f"""fila AS MATERIALIZED (
    SELECT p.id, p.categoria_id, p.sku, p.precio, p.iva, a.regla, p.activo AND p.costo > 0 AS cuenta,
           p.costo * (1 + COALESCE(p.margen, c.margen_objetivo, a.margen) / {hundred}) * (1 + p.iva / {hundred}) AS bruto
    FROM {rows} LEFT JOIN categorias c ON c.id = p.categoria_id CROSS JOIN precios_ajustes() a
  ), atrasado AS MATERIALIZED (
    SELECT id, categoria_id, sku, precio, iva, {_pg_round('bruto', 'regla')} AS sugerido
    FROM fila WHERE cuenta AND precio < bruto
  ), quitados AS (
    DELETE FROM precios_atrasados k USING fila f
    WHERE k.producto_id = f.id AND NOT (f.cuenta AND f.precio < f.bruto)
  )"""
    insert = f"""INSERT INTO precios_atrasados ({_KEPT_COLUMNS})
  SELECT id, categoria_id, sku, precio, iva, sugerido, CAST(precio AS NUMERIC(44, 30)) / sugerido FROM atrasado
  ON CONFLICT (producto_id) DO UPDATE SET categoria_id = EXCLUDED.categoria_id, sku = EXCLUDED.sku,
      precio = EXCLUDED.precio, iva = EXCLUDED.iva, sugerido = EXCLUDED.sugerido, proporcion = EXCLUDED.proporcion
    WHERE (precios_atrasados.categoria_id, precios_atrasados.sku, precios_atrasados.precio, precios_atrasados.iva,
           precios_atrasados.sugerido) IS DISTINCT FROM
          (EXCLUDED.categoria_id, EXCLUDED.sku, EXCLUDED.precio, EXCLUDED.iva, EXCLUDED.sugerido)"""
    return ctes, insert


# Hash joins over the transition tables (PostgreSQL estimates their join at n² rows: a merge join with
# two sorts, or JIT compilation), with room in memory for 100,000 rows.
_TRIGGER_SETTINGS = "SET jit = off SET enable_mergejoin = off SET work_mem = '64MB'"

_PG_FUNCTIONS = [
    # The store's default markup and rounding rule as pricing.settings.load_pricing_settings reads them.
    ("precios_ajustes()", f"""
CREATE FUNCTION precios_ajustes(OUT margen numeric, OUT regla text) LANGUAGE sql STABLE AS $$
SELECT COALESCE((SELECT CASE WHEN valor ~ '^-?[0-9]+(\\.[0-9]+)?$' THEN valor::numeric END FROM ajustes
                 WHERE clave = '{DEFAULT_MARKUP_KEY}'), 35),
       COALESCE((SELECT valor FROM ajustes WHERE clave = '{ROUNDING_KEY}' AND valor IN ({_RULES_SQL})), '10')
$$"""),
    # Recompute the kept rows of `ids` (NULL: every product).
    ("precios_atrasados_refrescar(integer[])", """
CREATE FUNCTION precios_atrasados_refrescar(ids integer[]) RETURNS void LANGUAGE plpgsql {settings} AS $$
BEGIN
  IF ids IS NULL THEN
    DELETE FROM precios_atrasados;
    WITH {every_ctes}
    {every_insert};
  ELSE
    WITH {some_ctes}
    {some_insert};
  END IF;
END
$$""".format(settings=_TRIGGER_SETTINGS,
             every_ctes=_pg_refresh("productos p")[0], every_insert=_pg_refresh("productos p")[1],
             some_ctes=_pg_refresh("unnest(ids) AS u(id) JOIN productos p ON p.id = u.id")[0],
             some_insert=_pg_refresh("unnest(ids) AS u(id) JOIN productos p ON p.id = u.id")[1])),
]


def _pg_product_change() -> str:
    """productos UPDATE, one statement: one join of the transition tables gives the rows where an input
    changed; from it, the lagging rows and, for those whose cost, price or active flag changed, the KPI
    delta, summed over their `existencias_totales` rows as locked (FOR SHARE returns each row's latest
    version: a movement of one of these products either committed before, and its stock is summed, or
    waits for this transaction, and its own trigger reads the new price)."""
    pg = "postgresql"
    new_p = _kpi._contribution(pg, "c", "t.cantidad", "t.bajo_minimo")
    old_p = [x.replace("c.", "c.viejo_") for x in new_p]
    kpi_changed = "(c.activo, c.costo, c.precio) IS DISTINCT FROM (c.viejo_activo, c.viejo_costo, c.viejo_precio)"
    inputs = ", ".join(f"n.{c}" for c in _INPUTS), ", ".join(f"o.{c}" for c in _INPUTS)
    sums = _kpi._stock_delta(pg, new_p, old_p,
                             f"FROM cambios c LEFT JOIN bloqueados t ON t.producto_id = c.id WHERE {kpi_changed}")
    ctes, insert = _pg_refresh("cambios p")
    return f"""
CREATE FUNCTION productos_cambio() RETURNS trigger LANGUAGE plpgsql {_TRIGGER_SETTINGS} AS $$
BEGIN
  WITH cambios AS MATERIALIZED (
    SELECT n.id, n.categoria_id, n.sku, n.activo, n.costo, n.precio, n.iva, n.margen,
           o.activo AS viejo_activo, o.costo AS viejo_costo, o.precio AS viejo_precio
    FROM nuevos n JOIN viejos o ON o.id = n.id
    WHERE ({inputs[0]}) IS DISTINCT FROM ({inputs[1]})
  ), bloqueados AS (
    SELECT t.producto_id, t.cantidad, t.bajo_minimo FROM existencias_totales t JOIN cambios c ON c.id = t.producto_id
    WHERE {kpi_changed} ORDER BY t.producto_id FOR SHARE OF t
  ), {ctes}, puestos AS (
  {insert}
  )
  {sums};
  RETURN NULL;
END
$$"""


def _pg_triggers() -> list[tuple[str, str, str, str]]:
    """(function, trigger, table, CREATE TRIGGER clause) for the lagging rows' other inputs."""
    return [
        ("precios_atrasados_alta", "precios_atrasados_alta", "productos",
         "AFTER INSERT ON productos REFERENCING NEW TABLE AS nuevos FOR EACH STATEMENT"),
        ("precios_atrasados_baja", "precios_atrasados_baja", "productos",
         "AFTER DELETE ON productos REFERENCING OLD TABLE AS viejos FOR EACH STATEMENT"),
        ("precios_atrasados_categoria", "precios_atrasados_categoria", "categorias",
         "AFTER UPDATE ON categorias REFERENCING NEW TABLE AS nuevos OLD TABLE AS viejos FOR EACH STATEMENT"),
        ("precios_atrasados_ajustes", "precios_atrasados_ajustes_cambio", "ajustes",
         "AFTER INSERT OR UPDATE ON ajustes FOR EACH ROW WHEN "
         f"(NEW.clave IN ('{DEFAULT_MARKUP_KEY}', '{ROUNDING_KEY}'))"),
        ("precios_atrasados_ajustes", "precios_atrasados_ajustes_baja", "ajustes",
         f"AFTER DELETE ON ajustes FOR EACH ROW WHEN (OLD.clave IN ('{DEFAULT_MARKUP_KEY}', '{ROUNDING_KEY}'))"),
    ]


_PG_TRIGGER_BODIES = {
    "precios_atrasados_alta": "PERFORM precios_atrasados_refrescar(ARRAY(SELECT id FROM nuevos));",
    "precios_atrasados_baja": "DELETE FROM precios_atrasados WHERE producto_id IN (SELECT id FROM viejos);",
    # Every product of a category whose target changed; first wait for the product writes in flight
    # (a SHARE lock lets none start until this commits), so none is computed against the old target.
    "precios_atrasados_categoria": (
        "IF EXISTS (SELECT 1 FROM nuevos n JOIN viejos o ON o.id = n.id "
        "WHERE n.margen_objetivo IS DISTINCT FROM o.margen_objetivo) THEN\n"
        "  LOCK TABLE productos IN SHARE MODE;\n"
        "  PERFORM precios_atrasados_refrescar(ARRAY(SELECT p.id FROM productos p JOIN nuevos n "
        "ON n.id = p.categoria_id JOIN viejos o ON o.id = n.id "
        "WHERE n.margen_objetivo IS DISTINCT FROM o.margen_objetivo));\n"
        "END IF;"),
    "precios_atrasados_ajustes": (
        "IF TG_OP = 'UPDATE' THEN\n"
        "  IF NEW.valor IS NOT DISTINCT FROM OLD.valor THEN RETURN NULL; END IF;\n"
        "END IF;\n"
        "LOCK TABLE productos IN SHARE MODE;\n"
        "PERFORM precios_atrasados_refrescar(NULL);"),
}


# ------------------------------------------------------------------------------------------- SQLite

def _sqlite_units(value: str, factor: int) -> str:
    """`value` × `factor` as an integer (SQLite keeps NUMERIC as a float; the app writes whole cents)."""
    return f"CAST(ROUND(({value}) * {factor}) AS INTEGER)"


def _sqlite_select(scope: str) -> str:
    """SELECT of the kept columns for the lagging products among `productos p WHERE scope`, in integers."""
    markup = (f"COALESCE(p.margen, c.margen_objetivo, (SELECT CAST(valor AS REAL) FROM ajustes "
              f"WHERE clave = '{DEFAULT_MARKUP_KEY}'), 35)")
    rule = (f"COALESCE((SELECT valor FROM ajustes WHERE clave = '{ROUNDING_KEY}' AND valor IN ({_RULES_SQL})), "
            "'10')")
    base = (f"SELECT p.id, p.categoria_id, p.sku, p.iva, p.activo, {_sqlite_units('p.costo', 100)} AS cc, "
            f"{_sqlite_units('p.precio', 100)} AS pc, "
            f"(10000 + {_sqlite_units(markup, 100)}) * (1000 + {_sqlite_units('p.iva', 10)}) AS k, "
            f"{rule} AS regla FROM productos p LEFT JOIN categorias c ON c.id = p.categoria_id WHERE {scope}")
    # cost × (1 + markup) × (1 + IVA) in cents = cc × k / 10⁷: its ceiling, with the cost split at 10⁷.
    ceiling = (f"SELECT *, (cc / 10000000) * k + ((cc % 10000000) * k) / 10000000 "
               f"+ (((cc % 10000000) * k) % 10000000 > 0) AS techo FROM ({base}) b")
    steps = " ".join(f"WHEN '{name}' THEN ((techo + {step * 100 - 1}) / {step * 100}) * {step * 100}"
                     for name, step in STEPS.items())
    endings = " ".join(f"WHEN '{name}' THEN ((techo + 99) / 100 + (({end} - (techo + 99) / 100) % 10 + 10) % 10) * 100"
                       for name, end in ENDINGS.items())
    suggested = (f"SELECT id, categoria_id, sku, iva, pc, CASE regla {steps} {endings} END AS sc FROM ({ceiling}) t "
                 "WHERE activo AND cc > 0 AND k > 0 AND pc < techo")
    return f"SELECT id, categoria_id, sku, pc / 100.0, iva, sc / 100.0, CAST(pc AS REAL) / sc FROM ({suggested}) s"


def _sqlite_refresh(scope: str, kept_scope: str) -> str:
    return (f"DELETE FROM precios_atrasados WHERE {kept_scope}; "
            f"INSERT INTO precios_atrasados ({_KEPT_COLUMNS}) {_sqlite_select(scope)}")


def _sqlite_triggers() -> list[tuple[str, str]]:
    changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in _INPUTS)
    every = "1 = 1"
    keys = f"('{DEFAULT_MARKUP_KEY}', '{ROUNDING_KEY}')"
    bodies = [
        ("precios_atrasados_alta", "AFTER INSERT ON productos", _sqlite_refresh("p.id = NEW.id", "producto_id = NEW.id")),
        ("precios_atrasados_cambio", f"AFTER UPDATE OF {', '.join(_INPUTS)} ON productos WHEN {changed}",
         _sqlite_refresh("p.id = NEW.id", "producto_id = NEW.id")),
        ("precios_atrasados_baja", "AFTER DELETE ON productos", "DELETE FROM precios_atrasados WHERE producto_id = OLD.id"),
        ("precios_atrasados_categoria", "AFTER UPDATE OF margen_objetivo ON categorias "
                                        "WHEN NEW.margen_objetivo IS NOT OLD.margen_objetivo",
         _sqlite_refresh("p.categoria_id = NEW.id", "categoria_id = NEW.id")),
        ("precios_atrasados_ajustes_alta", f"AFTER INSERT ON ajustes WHEN NEW.clave IN {keys}",
         _sqlite_refresh(every, every)),
        ("precios_atrasados_ajustes_cambio", f"AFTER UPDATE ON ajustes WHEN NEW.clave IN {keys} "
                                             "AND NEW.valor IS NOT OLD.valor", _sqlite_refresh(every, every)),
        ("precios_atrasados_ajustes_baja", f"AFTER DELETE ON ajustes WHEN OLD.clave IN {keys}",
         _sqlite_refresh(every, every)),
    ]
    return [(name, f"CREATE TRIGGER {name} {when} BEGIN {body}; END") for name, when, body in bodies]


# ---------------------------------------------------------------------------------------- upgrade

def upgrade() -> None:
    op.create_table(
        'precios_atrasados',
        sa.Column('producto_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('categoria_id', sa.Integer(), nullable=True),
        sa.Column('sku', sa.String(length=40), nullable=False),
        sa.Column('precio', sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column('iva', sa.Numeric(precision=4, scale=1), nullable=False),
        sa.Column('sugerido', sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column('proporcion', sa.Numeric(precision=44, scale=30), nullable=False),
        sa.PrimaryKeyConstraint('producto_id', name=op.f('pk_precios_atrasados')),
    )
    op.create_index('ix_precios_atrasados_orden', 'precios_atrasados', ['proporcion', 'sku'])
    op.create_index('ix_precios_atrasados_categoria', 'precios_atrasados', ['categoria_id', 'proporcion', 'sku'])
    op.create_index('ix_movimientos_stock_ventas', 'movimientos_stock', ['creado_en', 'producto_id', 'cantidad'],
                    postgresql_where=sa.text("tipo = 'venta'"), sqlite_where=sa.text("tipo = 'venta'"))
    if op.get_bind().dialect.name == "postgresql":
        for _signature, statement in _PG_FUNCTIONS:
            op.execute(statement)
        for function, body in _PG_TRIGGER_BODIES.items():
            op.execute(f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql {_TRIGGER_SETTINGS} AS $$\n"
                       f"BEGIN\n{body}\nRETURN NULL;\nEND\n$$")
        for _function, trigger, _table, clause in _pg_triggers():
            op.execute(f"CREATE TRIGGER {trigger} {clause} EXECUTE FUNCTION {_function}()")
        op.execute("DROP TRIGGER kpi_productos_cambio ON productos")
        op.execute("DROP FUNCTION kpi_productos_cambio()")
        op.execute(_pg_product_change())
        op.execute("CREATE TRIGGER productos_cambio AFTER UPDATE ON productos REFERENCING NEW TABLE AS nuevos "
                   "OLD TABLE AS viejos FOR EACH STATEMENT EXECUTE FUNCTION productos_cambio()")
        op.execute("SELECT precios_atrasados_refrescar(NULL)")
    else:
        for _name, statement in _sqlite_triggers():
            op.execute(statement)
        op.execute(f"INSERT INTO precios_atrasados ({_KEPT_COLUMNS}) {_sqlite_select('1 = 1')}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER productos_cambio ON productos")
        op.execute("DROP FUNCTION productos_cambio()")
        for name, table, event, body in _kpi._postgres_triggers():
            if name == "kpi_productos_cambio":
                op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\nBEGIN\n{body};\n"
                           f"RETURN NULL;\nEND\n$$")
                op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} REFERENCING NEW TABLE AS nuevos "
                           f"OLD TABLE AS viejos FOR EACH STATEMENT EXECUTE FUNCTION {name}()")
        for function, trigger, table, _clause in _pg_triggers():
            op.execute(f"DROP TRIGGER IF EXISTS {trigger} ON {table}")
        for function in _PG_TRIGGER_BODIES:
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
        for signature, _statement in reversed(_PG_FUNCTIONS):
            op.execute(f"DROP FUNCTION IF EXISTS {signature}")
    else:
        for name, _statement in _sqlite_triggers():
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_index('ix_movimientos_stock_ventas', table_name='movimientos_stock')
    op.drop_index('ix_precios_atrasados_categoria', table_name='precios_atrasados')
    op.drop_index('ix_precios_atrasados_orden', table_name='precios_atrasados')
    op.drop_table('precios_atrasados')
