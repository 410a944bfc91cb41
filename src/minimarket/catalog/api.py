"""Routes for the catalog that need no stock: categories."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from minimarket.accounts.audit import Context
from minimarket.accounts.permissions import READ
from minimarket.api.deps import get_db, require
from minimarket.catalog import queries
from minimarket.catalog.schemas import CategoryOut
from minimarket.db import Database

read_router = APIRouter(prefix="/api", tags=["inventario"])


@read_router.get("/categories", response_model=list[CategoryOut], summary="Categorías con cantidad de productos")
def list_categories(_ctx: Context = Depends(require(READ)), db: Database = Depends(get_db)) -> list[CategoryOut]:
    with db.read() as session:
        return queries.list_categories(session)
