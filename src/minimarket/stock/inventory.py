"""Inventory read side: products with their stock totals, one product with stock per location."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import String, any_, bindparam, func, or_, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from minimarket.ar.money import to_money, to_qty
from minimarket.catalog.models import Category, Product
from minimarket.stock.schemas import LocationStock, ProductDetail, ProductOut
from minimarket.errors import InvalidInput, NotFound
from minimarket.search import caseless, contains_text
from minimarket.stock.models import Balance, Location, ProductStock
from minimarket.suppliers.models import Supplier
from minimarket.suppliers.service import supplier_matches

MAX_PAGE = 500
_ZERO = Decimal("0.000")
_QTY = Decimal("0.001")


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


# The kept per-product total (stock.totals); a product never moved and never given a row has 0.
_STOCK = func.coalesce(ProductStock.quantity, 0)
# Literal, not bound: SQLite uses a partial index only when the query repeats its condition as written.
_LOW = text("existencias_totales.bajo_minimo")
_OUT = text("existencias_totales.cantidad <= 0")


# The list reads plain columns (no ORM objects per row): a page costs about half as much.
_LIST_COLUMNS = (Product.sku, Product.barcode, Product.name, Product.brand, Category.name.label("category"),
                 Product.unit, Product.cost, Product.price, Product.vat_rate, Product.min_stock, Product.max_stock,
                 Supplier.name.label("supplier"), Product.active, Product.created_at, Product.updated_at)


def _fields(row: Mapping[str, Any], stock: Decimal | None) -> dict[str, Any]:
    stock = Decimal(stock or 0).quantize(Decimal("0.001"))
    max_stock = row["max_stock"]
    return dict(
        sku=row["sku"], barcode=row["barcode"], name=row["name"], brand=row["brand"], category=row["category"],
        unit=row["unit"], cost=to_money(row["cost"]), price=to_money(row["price"]),
        vat_rate=Decimal(row["vat_rate"]).quantize(Decimal("0.1")), min_stock=to_qty(row["min_stock"]),
        max_stock=None if max_stock is None else to_qty(max_stock), supplier=row["supplier"],
        active=bool(row["active"]), stock=stock, low_stock=stock <= Decimal(row["min_stock"]),
        created_at=row["created_at"], updated_at=row["updated_at"],
    )


def _out(row: Mapping[str, Any], stock: Decimal | None, model: type[ProductOut] = ProductOut,
         **extra: Any) -> ProductOut:
    return model(**_fields(row, stock), **extra)


def item_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """A list row (from inventory_rows) as ProductOut's fields, each already of its type (for serializing
    without validating again: stock.list_reads)."""
    return _fields(row, row["stock"])


def product_out(product: Product, stock: Decimal | None, model: type[ProductOut] = ProductOut,
                **extra: Any) -> ProductOut:
    row = {column.key: getattr(product, column.key) for column in _LIST_COLUMNS
           if column.key not in ("category", "supplier")}
    row["category"] = product.category.name if product.category else None
    row["supplier"] = product.supplier.name if product.supplier else None
    return _out(row, stock, model, **extra)


def _matches(q: str, *, postgres: bool):  # noqa: ANN202
    # On PostgreSQL always lower(): the trigram indexes are on lower(column).
    fold = postgres or not caseless(q)
    return or_(contains_text(Product.name, q, fold=fold), contains_text(Product.sku, q, fold=fold),
               Product.barcode == q.strip(), contains_text(Product.brand, q, fold=fold))


MAX_CANDIDATES = 5_000  # more matches than this: walking the SKU index fills a page sooner


def _selective(session: Session, *, q: str | None, low_stock: bool | None, out_of_stock: bool | None,
               by_sku: bool = False) -> bool:
    """On PostgreSQL, whether a filter has an index that yields the few candidates by itself: the trigram indexes
    (3 characters or more; shorter text has no trigram, and a SKU index walk fills a page of a common fragment
    at once) or, for an order other than the SKU, the partial indexes of existencias_totales ("bajo mínimo",
    "sin stock"). By SKU those indexes are walked in order instead (see _sku_of)."""
    if not _is_postgres(session):
        return False
    if q and len(q.strip()) >= 3:
        return True
    return bool(low_stock or out_of_stock) and not by_sku


def _sku_of(*, low_stock: bool | None, out_of_stock: bool | None):  # noqa: ANN202
    """The SKU column a list orders and pages by: the totals row's copy for "bajo mínimo" and "sin stock" (their
    partial indexes are on it, so a page is a walk that stops at the page), the product's otherwise."""
    return ProductStock.sku if (low_stock or out_of_stock) else Product.sku


def _filtered(*, q: str | None, category: str | None, supplier: str | None, low_stock: bool | None,
              out_of_stock: bool | None, active: bool | None, postgres: bool):  # noqa: ANN202
    """The ids of the products a list shows: filtered on `productos` and the kept totals only (category and
    supplier by their ids), so a page can be ordered and cut before anything is joined (see _page_rows)."""
    stmt = select(Product.id).select_from(Product)
    if low_stock or out_of_stock:  # the few low or empty products, from a partial index
        stmt = stmt.join(ProductStock, ProductStock.product_id == Product.id)
        stmt = stmt.where(_LOW) if low_stock else stmt
        stmt = stmt.where(_OUT) if out_of_stock else stmt
    elif low_stock is False or out_of_stock is False:
        stmt = stmt.outerjoin(ProductStock, ProductStock.product_id == Product.id)
    if q:
        stmt = stmt.where(_matches(q, postgres=postgres))
    if category:  # the id of that name, then productos.categoria_id
        stmt = stmt.where(Product.category_id.in_(
            select(Category.id).where(func.lower(Category.name) == category.strip().lower())))
    if supplier:
        stmt = stmt.where(Product.supplier_id.in_(select(Supplier.id).where(supplier_matches(supplier))))
    if low_stock is False:
        stmt = stmt.where(_STOCK > Product.min_stock)
    if out_of_stock is False:
        stmt = stmt.where(_STOCK > 0)
    if active is not None and postgres:  # plain, so the planner knows from statistics how many are active
        stmt = stmt.where(Product.active.is_(active))
    elif active is not None:
        # Not `activo IS 1`: SQLite would walk ix_productos_activo (almost every row) and sort them all,
        # instead of reading the SKU index in order and stopping at the page (400 ms → ~1 ms at 100k).
        stmt = stmt.where(func.coalesce(Product.active, False).is_(active))
    return stmt


def _page_rows(session: Session, filtered, order: list[tuple[Any, bool]], *, selective: bool,  # noqa: ANN001
               offset: int = 0, limit: int) -> list[Mapping[str, Any]]:
    """One page of products with their category, supplier and total, as plain rows (_LIST_COLUMNS + `stock`).

    The page is ordered by `order` — (column, descending) pairs — and cut on ids first, in a subquery with
    LIMIT that is planned on its own: only its rows are then read whole and joined, instead of every
    candidate. `selective` (see _selective): the candidates are first gathered by their own index (a fenced
    subquery of at most MAX_CANDIDATES + 1, so the planner cannot walk the SKU index for the ~2 % of a search
    or of "bajo mínimo" spread over the whole catalogue) and counted; more than that, and the page is read
    again by walking the sort order instead."""
    keys = [column.label(f"k{i}") for i, (column, _) in enumerate(order)]
    if selective:
        fenced = filtered.add_columns(*keys).limit(MAX_CANDIDATES + 1).subquery("candidates")
        inner = select(fenced.c.id, *(fenced.c[k.name] for k in keys), func.count().over().label("candidates"))
        sort = [fenced.c[k.name] for k in keys]
    else:
        inner, sort = filtered.add_columns(*keys), keys
    inner = inner.order_by(*(c.desc() if desc else c.asc() for c, (_, desc) in zip(sort, order, strict=True)))
    page = inner.offset(offset).limit(limit).subquery("page")
    stmt = (select(*_LIST_COLUMNS, _STOCK.label("stock"), *([page.c.candidates] if selective else []))
            .select_from(page)
            .join(Product, Product.id == page.c.id)
            .outerjoin(ProductStock, ProductStock.product_id == Product.id)
            .outerjoin(Category, Category.id == Product.category_id)
            .outerjoin(Supplier, Supplier.id == Product.supplier_id)
            .order_by(*(page.c[k.name].desc() if desc else page.c[k.name].asc()
                        for k, (_, desc) in zip(keys, order, strict=True))))
    rows = session.execute(stmt).mappings().all()
    if selective and ((rows and rows[0]["candidates"] > MAX_CANDIDATES) or (not rows and offset)):
        return _page_rows(session, filtered, order, selective=False, offset=offset, limit=limit)
    return rows


def inventory_rows(session: Session, *, q: str | None = None, category: str | None = None,
                   supplier: str | None = None, low_stock: bool | None = None, out_of_stock: bool | None = None,
                   active: bool | None = True, limit: int = 50,
                   cursor: str | None = None) -> tuple[list[Mapping[str, Any]], str | None]:
    """The rows of one keyset page ordered by SKU (plain columns: _LIST_COLUMNS plus `stock`), and the
    cursor of the next page (None: this is the last)."""
    filtered = _filtered(q=q, category=category, supplier=supplier, low_stock=low_stock, out_of_stock=out_of_stock,
                         active=active, postgres=_is_postgres(session))
    sku = _sku_of(low_stock=low_stock, out_of_stock=out_of_stock)
    if cursor:
        filtered = filtered.where(sku > decode_cursor(cursor))
    rows = _page_rows(session, filtered, [(sku, False)], limit=limit + 1,
                      selective=_selective(session, q=q, low_stock=low_stock, out_of_stock=out_of_stock, by_sku=True))
    return rows[:limit], (encode_cursor(rows[limit - 1]["sku"]) if len(rows) > limit else None)


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
    rows, next_cursor = inventory_rows(session, q=q, category=category, supplier=supplier, low_stock=low_stock,
                                       out_of_stock=out_of_stock, active=active, limit=limit, cursor=cursor)
    return [_out(row, row["stock"]) for row in rows], next_cursor


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


SORTS = {"sku": Product.sku, "nombre": Product.name, "precio": Product.price, "costo": Product.cost}


def inventory_page(session: Session, *, q: str | None = None, category: str | None = None,
                   supplier: str | None = None, low_stock: bool | None = None, out_of_stock: bool | None = None,
                   sort: str = "sku", descending: bool = False, page: int = 1,
                   per_page: int = 50) -> tuple[list[ProductOut], bool]:
    """One numbered page of active products sorted by a column (SKU breaks ties); and whether more follow."""
    if sort not in SORTS:
        raise InvalidInput(f"orden: '{sort}' no es una columna ordenable; usá una de: {', '.join(SORTS)}")
    filtered = _filtered(q=q, category=category, supplier=supplier, low_stock=low_stock, out_of_stock=out_of_stock,
                         active=True, postgres=_is_postgres(session))
    sku = _sku_of(low_stock=low_stock, out_of_stock=out_of_stock)
    order = [(sku, descending)] if sort == "sku" else [(SORTS[sort], descending), (sku, False)]
    rows = _page_rows(session, filtered, order, offset=(page - 1) * per_page, limit=per_page + 1,
                      selective=_selective(session, q=q, low_stock=low_stock, out_of_stock=out_of_stock,
                                           by_sku=sort == "sku"))
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


def _product_rows(where):  # noqa: ANN001, ANN202
    """Products chosen by `where` with their stock per location: one row per (product, location), by key."""
    return (
        select(*_LIST_COLUMNS, Product.id.label("product_id"), Location.code.label("location"),
               Location.name.label("location_name"), Balance.quantity.label("quantity"))
        .select_from(Product)
        .outerjoin(Category, Category.id == Product.category_id)
        .outerjoin(Supplier, Supplier.id == Product.supplier_id)
        .outerjoin(Balance, Balance.product_id == Product.id)
        .outerjoin(Location, Location.id == Balance.location_id)
        .where(where)
        .order_by(Product.id, Location.id)
    )


# One product by SKU (any case) or barcode with its stock per location, in one statement built once (no
# statement construction and cache-key walk per read). The route runs it through SQLAlchemy; both turn its
# rows into the answer with `detail_fields` (stock.product_reads.detail_body writes them as JSON).
PRODUCT_BY_REF = _product_rows((Product.sku == bindparam("sku")) | (Product.barcode == bindparam("ref")))
# The same read for several references at once (PostgreSQL arrays: `skus` and `refs`, each reference's
# ref_params): the misses of GET /api/inventory/{sku} that meet in one event-loop turn are read in one
# statement through psycopg's async API (stock.product_reads), each request's rows picked by `rows_of_ref`.
PRODUCTS_BY_REFS = _product_rows(
    (Product.sku == any_(bindparam("skus", type_=postgresql.ARRAY(String))))
    | (Product.barcode == any_(bindparam("refs", type_=postgresql.ARRAY(String)))))


def rows_of_ref(rows: Sequence[Mapping[str, Any]], params: Mapping[str, str]) -> list[Mapping[str, Any]]:
    """Of PRODUCTS_BY_REFS's rows, those PRODUCT_BY_REF gives for one reference's `params` (ref_params):
    the same rows in the same order (both statements sort by product and location)."""
    sku, ref = params["sku"], params["ref"]
    return [row for row in rows if row["sku"] == sku or row["barcode"] == ref]


def ref_params(ref: str) -> dict[str, str]:
    """PRODUCT_BY_REF's parameters for what a caller typed: the SKU as stored (catalog.service.find_product's
    rule: ASCII upper-cased) and the barcode as typed, both stripped."""
    ref = ref.strip()
    return {"sku": ref.upper() if ref.isascii() else ref, "ref": ref}


def detail_fields(rows: Sequence[Mapping[str, Any]], ref: str) -> dict[str, Any]:
    """PRODUCT_BY_REF's rows (by column key) as ProductDetail's fields, each already of its type (for serializing
    without validating again: stock.product_reads); NotFound when there are none."""
    if not rows:
        ref = ref.strip()
        raise NotFound(f"El producto '{ref}' no existe (se buscó por SKU y código de barras)", details={"sku": ref})
    mine = [row for row in rows if row["product_id"] == rows[0]["product_id"]]
    locations = [{"location": row["location"], "name": row["location_name"],
                  "quantity": Decimal(row["quantity"]).quantize(_QTY)}
                 for row in mine if row["location"] is not None]
    fields = _fields(mine[0], sum((loc["quantity"] for loc in locations), _ZERO))
    fields["locations"] = locations
    return fields


def detail_from_rows(rows: Sequence[Mapping[str, Any]], ref: str) -> ProductDetail:
    """PRODUCT_BY_REF's rows (by column key) as the product's answer; NotFound when there are none."""
    return ProductDetail(**detail_fields(rows, ref))


def product_detail_by_ref(session: Session, ref: str) -> ProductDetail:
    """One product by SKU (any case) or barcode with its stock per location, in one statement."""
    return product_by_ref(session, ref)[1]


def product_by_ref(session: Session, ref: str) -> tuple[int, ProductDetail]:
    """product_detail_by_ref and the product's id (for reading its movements and prices without looking
    it up again)."""
    rows = session.execute(PRODUCT_BY_REF, ref_params(ref)).mappings().all()
    detail = detail_from_rows(rows, ref)
    return rows[0]["product_id"], detail


def stock_summary(session: Session) -> dict[str, int]:
    """Active products, those at or below their minimum, and those without stock (for /metrics)."""
    stock = func.coalesce(ProductStock.quantity, 0)
    low = func.coalesce(ProductStock.low, True)  # no row: never moved, so 0 ≤ its minimum
    stmt = (
        select(func.count(), func.count().filter(low.is_(True)), func.count().filter(stock <= 0))
        .select_from(Product)
        .outerjoin(ProductStock, ProductStock.product_id == Product.id)
        .where(Product.active.is_(True))
    )
    active, below, out = session.execute(stmt).one()
    return {"active": active, "below_minimum": below, "out_of_stock": out}
