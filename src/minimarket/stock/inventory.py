"""Inventory read side: products with their stock totals, one product with stock per location."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from minimarket.ar.money import to_money, to_qty
from minimarket.catalog.models import Category, Product
from minimarket.stock.schemas import LocationStock, ProductDetail, ProductOut
from minimarket.errors import InvalidInput
from minimarket.search import contains_text
from minimarket.stock.models import Balance, Location
from minimarket.suppliers.models import Supplier
from minimarket.suppliers.service import supplier_matches

MAX_PAGE = 500
_ZERO = Decimal("0.000")


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput("cursor: valor inválido; usá el next_cursor de la respuesta anterior") from exc
    if "\x00" in value:  # not a SKU, and PostgreSQL cannot even compare it
        raise InvalidInput("cursor: valor inválido; usá el next_cursor de la respuesta anterior")
    return value


def _stock_total():  # noqa: ANN202
    # Correlated per product: a page of 50 sums 50 products' balances, not the whole table.
    return (
        select(func.coalesce(func.sum(Balance.quantity), 0))
        .where(Balance.product_id == Product.id)
        .correlate(Product)
        .scalar_subquery()
    )


# The list reads plain columns (no ORM objects per row): a page costs about half as much.
_LIST_COLUMNS = (Product.sku, Product.barcode, Product.name, Product.brand, Category.name.label("category"),
                 Product.unit, Product.cost, Product.price, Product.vat_rate, Product.min_stock, Product.max_stock,
                 Supplier.name.label("supplier"), Product.active, Product.created_at, Product.updated_at)


def _out(row: Mapping[str, Any], stock: Decimal | None, model: type[ProductOut] = ProductOut,
         **extra: Any) -> ProductOut:
    stock = Decimal(stock or 0).quantize(Decimal("0.001"))
    max_stock = row["max_stock"]
    return model(
        sku=row["sku"], barcode=row["barcode"], name=row["name"], brand=row["brand"], category=row["category"],
        unit=row["unit"], cost=to_money(row["cost"]), price=to_money(row["price"]),
        vat_rate=Decimal(row["vat_rate"]).quantize(Decimal("0.1")), min_stock=to_qty(row["min_stock"]),
        max_stock=None if max_stock is None else to_qty(max_stock), supplier=row["supplier"],
        active=row["active"], stock=stock, low_stock=stock <= Decimal(row["min_stock"]),
        created_at=row["created_at"], updated_at=row["updated_at"], **extra,
    )


def product_out(product: Product, stock: Decimal | None, model: type[ProductOut] = ProductOut,
                **extra: Any) -> ProductOut:
    row = {column.key: getattr(product, column.key) for column in _LIST_COLUMNS
           if column.key not in ("category", "supplier")}
    row["category"] = product.category.name if product.category else None
    row["supplier"] = product.supplier.name if product.supplier else None
    return _out(row, stock, model, **extra)


def _inventory_query(*, q: str | None, category: str | None, supplier: str | None, low_stock: bool | None,
                     out_of_stock: bool | None, active: bool | None):  # noqa: ANN202
    """Products with their total stock, filtered; shared by the API's keyset list and the dashboard's pages."""
    stock = _stock_total()
    stmt = (select(*_LIST_COLUMNS, stock.label("stock")).select_from(Product)
            .outerjoin(Category, Category.id == Product.category_id)
            .outerjoin(Supplier, Supplier.id == Product.supplier_id))
    if q:
        stmt = stmt.where(or_(contains_text(Product.name, q), contains_text(Product.sku, q),
                              Product.barcode == q.strip(), contains_text(Product.brand, q)))
    if category:
        stmt = stmt.where(func.lower(Category.name) == category.strip().lower())
    if supplier:
        stmt = stmt.where(supplier_matches(supplier))
    if low_stock is not None:
        stmt = stmt.where((stock <= Product.min_stock) if low_stock else (stock > Product.min_stock))
    if out_of_stock is not None:
        stmt = stmt.where((stock <= 0) if out_of_stock else (stock > 0))
    if active is not None:
        # Not `activo IS 1`: SQLite would walk ix_productos_activo (almost every row) and sort them all,
        # instead of reading the SKU index in order and stopping at the page (400 ms → ~1 ms at 100k).
        stmt = stmt.where(func.coalesce(Product.active, False).is_(active))
    return stmt


def list_inventory(
    session: Session,
    *,
    q: str | None = None,
    category: str | None = None,
    supplier: str | None = None,
    low_stock: bool | None = None,
    out_of_stock: bool | None = None,
    active: bool | None = True,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[ProductOut], str | None]:
    """Products ordered by SKU with their total stock; keyset-paginated."""
    stmt = _inventory_query(q=q, category=category, supplier=supplier, low_stock=low_stock,
                            out_of_stock=out_of_stock, active=active)
    if cursor:
        stmt = stmt.where(Product.sku > decode_cursor(cursor))
    rows = session.execute(stmt.order_by(Product.sku).limit(limit + 1)).mappings().all()
    items = [_out(row, row["stock"]) for row in rows[:limit]]
    next_cursor = encode_cursor(items[-1].sku) if len(rows) > limit else None
    return items, next_cursor


SORTS = {"sku": Product.sku, "nombre": Product.name, "precio": Product.price, "costo": Product.cost}


def inventory_page(session: Session, *, q: str | None = None, category: str | None = None,
                   supplier: str | None = None, low_stock: bool | None = None, out_of_stock: bool | None = None,
                   sort: str = "sku", descending: bool = False, page: int = 1,
                   per_page: int = 50) -> tuple[list[ProductOut], bool]:
    """One numbered page of active products sorted by a column (SKU breaks ties); and whether more follow."""
    if sort not in SORTS:
        raise InvalidInput(f"orden: '{sort}' no es una columna ordenable; usá una de: {', '.join(SORTS)}")
    column = SORTS[sort].desc() if descending else SORTS[sort].asc()
    stmt = _inventory_query(q=q, category=category, supplier=supplier, low_stock=low_stock,
                            out_of_stock=out_of_stock, active=True)
    rows = session.execute(stmt.order_by(column, Product.sku).offset((page - 1) * per_page)
                           .limit(per_page + 1)).mappings().all()
    return [_out(row, row["stock"]) for row in rows[:per_page]], len(rows) > per_page


def product_detail(session: Session, product: Product) -> ProductDetail:
    rows = session.execute(
        select(Location.code, Location.name, Balance.quantity)
        .join(Location, Location.id == Balance.location_id)
        .where(Balance.product_id == product.id)
        .order_by(Location.id)
    ).all()
    locations = [LocationStock(location=c, name=n, quantity=Decimal(qty).quantize(Decimal("0.001"))) for c, n, qty in rows]
    total = sum((loc.quantity for loc in locations), _ZERO)
    return product_out(product, total, ProductDetail, locations=locations)


def stock_summary(session: Session) -> dict[str, int]:
    """Active products, those at or below their minimum, and those without stock (for /metrics)."""
    totals = (
        select(Balance.product_id.label("pid"), func.sum(Balance.quantity).label("qty"))
        .group_by(Balance.product_id)
        .subquery()
    )
    stock = func.coalesce(totals.c.qty, 0)
    stmt = (
        select(func.count(), func.count().filter(stock <= Product.min_stock), func.count().filter(stock <= 0))
        .select_from(Product)
        .outerjoin(totals, totals.c.pid == Product.id)
        .where(Product.active.is_(True))
    )
    active, below, out = session.execute(stmt).one()
    return {"active": active, "below_minimum": below, "out_of_stock": out}
