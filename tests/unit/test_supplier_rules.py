"""Supplier rules without a database: folded text, order days, which assignment rule wins."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minimarket.suppliers.rules import Rule, best_rule, fold, normalise_order_days


@pytest.mark.parametrize(("raw", "folded"), [
    ("Café La Virginia", "cafe la virginia"),
    ("  CAFÉ--la  virginia!! ", "cafe la virginia"),
    ("Ñandú S.R.L.", "nandu s r l"),
    ("Coca-Cola 2,25 L", "coca cola 2 25 l"),
    ("", ""),
    (None, ""),
])
def test_fold_ignores_accents_case_and_punctuation(raw, folded):
    assert fold(raw) == folded


@given(st.text(max_size=40))
def test_fold_is_idempotent(text):
    assert fold(fold(text)) == fold(text)


def test_order_days_in_week_order_without_repeats_and_accents_optional():
    assert normalise_order_days(["Jueves", "lunes", "miercoles", "LUNES", "Sábado"]) == \
        ["lunes", "miércoles", "jueves", "sábado"]
    assert normalise_order_days([]) == []


def test_an_unknown_day_is_named():
    with pytest.raises(ValueError, match="'feriado' no es un día"):
        normalise_order_days(["lunes", "feriado"])


RULES = [
    Rule(id=1, kind="predeterminado", value="", supplier_id=9, priority=100),
    Rule(id=2, kind="categoria", value="bebidas", supplier_id=3, priority=0),
    Rule(id=3, kind="marca", value="la virginia", supplier_id=4, priority=0),
    Rule(id=4, kind="palabra", value="cerveza", supplier_id=5, priority=0),
    Rule(id=5, kind="palabra", value="quilmes", supplier_id=6, priority=10),
]


def test_brand_field_beats_category_on_equal_priority():
    match = best_rule(RULES, name="Café molido 500 g", brand="LA VIRGINIA", category="Bebidas")
    assert (match.rule.id, match.how, match.confidence) == (3, "marca", Decimal("0.95"))


def test_brand_named_in_the_product_name_matches_with_less_confidence():
    match = best_rule(RULES, name="Café  La-Virginia molido")
    assert (match.rule.id, match.how, match.confidence) == (3, "marca_en_nombre", Decimal("0.85"))


def test_higher_priority_wins_over_a_more_specific_kind():
    match = best_rule(RULES, name="Cerveza Quilmes 1 L")
    assert match.rule.id == 5


def test_keyword_matches_whole_words_only():
    assert best_rule(RULES, name="Cervezería artesanal").rule.kind == "predeterminado"


def test_the_default_only_when_nothing_else_matches_even_with_a_high_priority():
    assert best_rule(RULES, name="Cerveza negra").rule.id == 4
    default = best_rule(RULES, name="Fideos tirabuzón")
    assert (default.rule.id, default.confidence) == (1, Decimal("0.30"))


def test_no_rule_and_no_default_is_none():
    assert best_rule(RULES[1:], name="Fideos tirabuzón") is None


def test_category_matches_folded():
    assert best_rule(RULES[1:], name="Agua mineral", category="BEBÍDAS").rule.id == 2


def test_every_column_of_another_area_that_names_a_supplier_is_moved_by_a_merge():
    """suppliers.references is filled by the areas above suppliers/; a table that names a supplier
    without registering there would keep pointing at a merged supplier."""
    import minimarket.models  # noqa: F401 - every area's tables
    from minimarket.db import Base
    from minimarket.suppliers.references import REFERENCES

    own = {"proveedores", "proveedores_reglas", "proveedores_codigos"}  # moved by merge_suppliers itself
    naming = {(fk.parent.table.name, fk.parent.name) for table in Base.metadata.tables.values()
              if table.name not in own for fk in table.foreign_keys if fk.target_fullname == "proveedores.id"}
    registered = {(c.property.columns[0].table.name, c.property.columns[0].name) for c in REFERENCES.values()}
    assert ("productos", "proveedor_id") in naming and ("facturas", "proveedor_id") in naming
    assert registered == naming
