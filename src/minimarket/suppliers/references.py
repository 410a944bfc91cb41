"""Columns of the areas above suppliers/ that name a supplier: a product's supplier, an invoice's issuer.

suppliers/ sits below those areas (they import its lookups), so it cannot import their tables.
Each area registers its column here, beside its model; a merge moves the rows of every registered
column to the survivor, and the supplier file counts a supplier's products through the same
registry. tests/unit/test_supplier_rules.py checks the registry against every foreign key to
`proveedores.id`, so a new table that names a supplier cannot be left out of merges.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

# label (as a merge reports it: "products", "invoices") -> the mapped column holding the supplier's id
REFERENCES: dict[str, Any] = {}


def names_a_supplier(label: str, column: Any) -> None:  # noqa: ANN401 - an ORM column attribute
    """Register `column` (e.g. Product.supplier_id) as a reference to a supplier, reported as `label`."""
    REFERENCES[label] = column


def count_references(session: Session, label: str, supplier_id: int) -> int:
    """How many rows of `label` name the supplier."""
    column = REFERENCES[label]
    return session.scalar(select(func.count()).select_from(column.class_).where(column == supplier_id)) or 0


def count_references_each(session: Session, label: str, supplier_ids: list[int]) -> dict[int, int]:
    """count_references for several suppliers in one grouped statement (a list page); 0 for those with none."""
    column = REFERENCES[label]
    counts = dict(session.execute(select(column, func.count()).where(column.in_(supplier_ids)).group_by(column)).all()) \
        if supplier_ids else {}
    return {supplier_id: counts.get(supplier_id, 0) for supplier_id in supplier_ids}


def move_references(session: Session, old: int, new: int) -> dict[str, int]:
    """Point every registered reference to supplier `old` at `new`; rows moved per label."""
    return {label: session.execute(update(column.class_).where(column == old).values({column.key: new})).rowcount or 0
            for label, column in REFERENCES.items()}
