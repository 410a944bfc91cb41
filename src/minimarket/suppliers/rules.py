"""Supplier rules as pure functions: folded text, order days, and which assignment rule matches a product."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from minimarket.suppliers.models import WEEKDAYS

_NOT_WORD = re.compile(r"[^0-9a-z]+")
# How sure a suggestion is, by what matched: the brand field itself, a brand named inside the
# product name, a keyword, the category, or only the store's default supplier.
CONFIDENCE = {"marca": Decimal("0.95"), "marca_en_nombre": Decimal("0.85"), "palabra": Decimal("0.75"),
              "categoria": Decimal("0.60"), "predeterminado": Decimal("0.30")}
# On equal priority the more specific kind wins.
_SPECIFICITY = {"marca": 3, "palabra": 2, "categoria": 1, "predeterminado": 0}


def fold(text: str | None) -> str:
    """Lower case, no accents, punctuation as spaces: 'Café  La-Virginia!' → 'cafe la virginia'."""
    if not text:
        return ""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return " ".join(_NOT_WORD.sub(" ", plain).split())


def normalise_order_days(days: Iterable[str]) -> list[str]:
    """`["Jueves", "lunes", "miercoles"]` → `["lunes", "miércoles", "jueves"]` (week order, no repeats)."""
    by_fold = {fold(day): day for day in WEEKDAYS}
    chosen = set()
    for raw in days:
        day = by_fold.get(fold(raw))
        if day is None:
            raise ValueError(f"'{raw}' no es un día; usá lunes, martes, miércoles, jueves, viernes, sábado o domingo")
        chosen.add(day)
    return [day for day in WEEKDAYS if day in chosen]


@dataclass(frozen=True)
class Rule:
    id: int
    kind: str
    value: str  # folded
    supplier_id: int
    priority: int


@dataclass(frozen=True)
class Match:
    rule: Rule
    confidence: Decimal
    how: str  # the CONFIDENCE key that applied


def _contains_words(haystack: str, needle: str) -> bool:
    return bool(needle) and f" {needle} " in f" {haystack} "


def _match(rule: Rule, name: str, brand: str, category: str) -> str | None:
    if rule.kind == "marca":
        if brand and brand == rule.value:
            return "marca"
        return "marca_en_nombre" if _contains_words(name, rule.value) else None
    if rule.kind == "palabra":
        return "palabra" if _contains_words(name, rule.value) else None
    if rule.kind == "categoria":
        return "categoria" if category and category == rule.value else None
    return "predeterminado" if rule.kind == "predeterminado" else None


def best_rule(rules: Iterable[Rule], *, name: str, brand: str | None = None,
              category: str | None = None) -> Match | None:
    """The matching rule with the highest priority (then the most specific kind, then the oldest);
    the default supplier's rule only when nothing else matches."""
    folded = (fold(name), fold(brand), fold(category))
    matches = []
    for rule in rules:
        how = _match(rule, *folded)
        if how is not None:
            matches.append(Match(rule=rule, confidence=CONFIDENCE[how], how=how))
    specific = [m for m in matches if m.rule.kind != "predeterminado"]
    matches = specific or matches  # the default supplier only when no other rule matches
    if not matches:
        return None
    return min(matches, key=lambda m: (-m.rule.priority, -_SPECIFICITY[m.rule.kind], -m.confidence, m.rule.id))
