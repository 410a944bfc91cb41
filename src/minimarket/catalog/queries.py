"""Catalog reads that need no stock: categories."""

from __future__ import annotations

import unicodedata

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from minimarket.catalog.models import Category, Product
from minimarket.catalog.schemas import CategoryOut


def list_categories(session: Session) -> list[CategoryOut]:
    rows = session.execute(
        select(Category.id, Category.name, func.count(Product.id))
        .outerjoin(Product, (Product.category_id == Category.id) & Product.active.is_(True))
        .group_by(Category.id, Category.name)
    ).all()
    # Alphabetical as a person reads it: "Lácteos" before "Limpieza".
    rows = sorted(rows, key=lambda r: _collation_key(r[1]))
    return [CategoryOut(id=i, name=n, products=c) for i, n, c in rows]


def _collation_key(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))
