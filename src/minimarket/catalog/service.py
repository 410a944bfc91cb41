"""Product use cases: find, create (with opening stock), update, deactivate."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from minimarket.accounts.audit import Context, record_audit
from minimarket.catalog.models import Category, Product
from minimarket.catalog.schemas import ProductCreate, ProductUpdate
from minimarket.errors import Conflict, InvalidInput, NotFound
from minimarket.catalog.price_history import record_change
from minimarket.suppliers.service import supplier_by_ref
from minimarket.unique_names import find_or_create

AUDITED_FIELDS = ("sku", "barcode", "name", "brand", "unit", "cost", "price", "vat_rate", "min_stock",
                  "max_stock", "active")


def find_product(session: Session, ref: str, *, lock: bool = False) -> Product:
    """A product by SKU (any case) or by barcode; NotFound names what was asked."""
    ref = ref.strip()
    # SKUs are ASCII: folding case of anything else would turn "ßabc" into "SSABC", another product.
    sku = ref.upper() if ref.isascii() else ref
    stmt = select(Product).where((Product.sku == sku) | (Product.barcode == ref))
    if lock:
        stmt = stmt.with_for_update(of=Product)
    product = session.scalars(stmt).first()
    if product is None:
        raise NotFound(f"El producto '{ref}' no existe (se buscó por SKU y código de barras)", details={"sku": ref})
    return product


def category_by_name(session: Session, name: str | None, *, create: bool) -> Category | None:
    if name is None or not name.strip():
        return None
    name = name.strip()
    match = func.lower(Category.name) == name.lower()
    if not create:
        return session.scalars(select(Category).where(match)).first()
    return find_or_create(session, Category, match=match, name=name, values={"nombre": name})


def snapshot(product: Product) -> dict[str, Any]:
    data = {f: getattr(product, f) for f in AUDITED_FIELDS}
    data["category"] = product.category.name if product.category else None
    data["supplier"] = product.supplier.name if product.supplier else None
    return data


def _check_unique(session: Session, *, sku: str | None, barcode: str | None, exclude_id: int | None = None) -> None:
    if sku is not None:
        clash = session.scalar(select(Product.id).where(Product.sku == sku))
        if clash is not None and clash != exclude_id:
            raise Conflict(f"sku: ya existe un producto con SKU '{sku}'", code="sku_duplicado")
    if barcode is not None:
        clash = session.scalars(select(Product).where(Product.barcode == barcode)).first()
        if clash is not None and clash.id != exclude_id:
            raise Conflict(
                f"barcode: el código {barcode} ya es del producto '{clash.sku}'", code="codigo_barras_duplicado"
            )


@contextmanager
def _claiming_unique(session: Session, *, sku: str | None, barcode: str | None,
                     exclude_id: int | None = None) -> Iterator[None]:
    """Changes made inside are flushed in a savepoint; a twin that took the SKU or barcode first is a 409.

    The savepoint opens before the changes: `begin_nested()` flushes what is pending, and a
    unique violation there would abort the whole transaction (PostgreSQL) instead of the savepoint.
    """
    session.flush()
    try:
        with session.begin_nested():
            yield
            session.flush()
    except IntegrityError as exc:
        # The constraint waited for the twin's commit, so it is visible now: say what it took.
        _check_unique(session, sku=sku, barcode=barcode, exclude_id=exclude_id)
        raise Conflict("Otro pedido simultáneo registró el mismo SKU o código de barras; revisá y reintentá",
                       code="sku_duplicado") from exc


def create_product(session: Session, ctx: Context, *, data: ProductCreate) -> Product:
    """Register a product in the catalog (its opening stock is the stock area's job)."""
    _check_unique(session, sku=data.sku, barcode=data.barcode)
    fields = data.model_dump(exclude={"initial_stock", "location", "category", "supplier"})
    product = Product(**fields)
    product.category = category_by_name(session, data.category, create=True)
    product.supplier = supplier_by_ref(session, data.supplier)
    with _claiming_unique(session, sku=data.sku, barcode=data.barcode):
        session.add(product)
    record_audit(session, ctx, action="product.create", entity="producto", entity_id=product.sku,
                 after=snapshot(product))
    return product


def update_product(session: Session, ctx: Context, *, sku: str, changes: ProductUpdate) -> Product:
    """Change the fields sent; the stock is never edited here (use movements)."""
    product = find_product(session, sku, lock=True)
    before = snapshot(product)
    sent = changes.model_fields_set
    if "barcode" in sent:
        _check_unique(session, sku=None, barcode=changes.barcode, exclude_id=product.id)
    with _claiming_unique(session, sku=None, barcode=changes.barcode if "barcode" in sent else None,
                          exclude_id=product.id):
        for name in sent - {"category", "supplier"}:
            setattr(product, name, getattr(changes, name))
        if "category" in sent:
            product.category = category_by_name(session, changes.category, create=True)
        if "supplier" in sent:
            product.supplier = supplier_by_ref(session, changes.supplier)
        max_stock = product.max_stock
        if max_stock is not None and Decimal(max_stock) < Decimal(product.min_stock):
            raise InvalidInput("max_stock no puede ser menor que min_stock")
    after = snapshot(product)
    if after != before:
        record_audit(session, ctx, action="product.update", entity="producto", entity_id=product.sku,
                     before=before, after=after)
        # Every cost or price change leaves its row in precios_historial, whoever makes it.
        record_change(session, ctx, product_id=product.id, cost_before=before["cost"], cost_after=after["cost"],
                      price_before=before["price"], price_after=after["price"], reason="manual")
    return product


def deactivate_product(session: Session, ctx: Context, *, sku: str) -> Product:
    """Deactivate: the product leaves lists and sales, its history stays."""
    product = find_product(session, sku, lock=True)
    if product.active:
        product.active = False
        record_audit(session, ctx, action="product.deactivate", entity="producto", entity_id=product.sku,
                     before={"active": True}, after={"active": False})
    return product
