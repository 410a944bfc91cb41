"""Supplier price lists: match each line's code to a product, preview the new costs, apply them as a batch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from minimarket.accounts.audit import Context, record_audit
from minimarket.catalog.models import Category, Product
from minimarket.errors import InvalidInput
from minimarket.pricing.batches import Planned, open_batch, write_batch
from minimarket.pricing.bulk import PREVIEW_ITEMS, TARGET_COLUMNS, planned_out, plan_row
from minimarket.pricing.models import PriceBatch
from minimarket.pricing.pricelist_file import read_price_list
from minimarket.pricing.settings import load_pricing_settings
from minimarket.suppliers.models import SupplierCode
from minimarket.suppliers.service import resolve_supplier

CHUNK = 1000
_products, _categories = Product.__table__, Category.__table__


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), CHUNK):
        yield values[start:start + CHUNK]


def _product_rows(session: Session, key, values: list[str], extra=None) -> dict[str, Any]:  # noqa: ANN001
    """Active products whose `key` column is in `values`, keyed by that value (upper-case)."""
    found: dict[str, Any] = {}
    source = _products.outerjoin(_categories, _categories.c.id == _products.c.categoria_id)
    if extra is not None:
        source = source.join(extra[0], extra[1])
    for chunk in _chunks(values):
        stmt = select(*TARGET_COLUMNS, key.label("match_key")).select_from(source).where(
            _products.c.activo.is_(True), key.in_(chunk))
        if extra is not None:
            stmt = stmt.where(extra[2])
        found.update({str(r.match_key).upper(): r for r in session.execute(stmt).all()})
    return found


def match_codes(session: Session, codes: list[str], supplier_id: int | None) -> dict[str, Any]:
    """Code (upper-case) → product row: by barcode, then SKU, then the supplier's own code."""
    upper = sorted({c.upper() for c in codes})
    matched = _product_rows(session, _products.c.codigo_barras, sorted(set(codes)))
    left = [c for c in upper if c not in matched]
    matched.update(_product_rows(session, _products.c.sku, left))
    left = [c for c in upper if c not in matched]
    if supplier_id is not None and left:
        codes_table = SupplierCode.__table__
        matched.update(_product_rows(session, func.upper(codes_table.c.codigo), left, extra=(
            codes_table, codes_table.c.producto_id == _products.c.id, codes_table.c.proveedor_id == supplier_id)))
    return matched


def _plan(session: Session, *, content: bytes, filename: str, supplier: str | None,
          update_prices: bool) -> tuple[list[tuple[int, str, Planned]], int, list[dict], int | None]:
    lines = read_price_list(content, filename)
    supplier_id = resolve_supplier(session, supplier).id if supplier else None
    matched = match_codes(session, [code for _, code, _ in lines], supplier_id)
    settings = load_pricing_settings(session)
    planned, unknown, owner = [], [], {}
    for line, code, cost in lines:
        row = matched.get(code.upper())
        if row is None:
            unknown.append({"line": line, "code": code})
            continue
        if row.id in owner:
            raise InvalidInput(f"línea {line}, codigo: '{code}' es el mismo producto ({row.sku}) que la línea "
                               f"{owner[row.id]}; dejá una sola", details={"line": line, "field": "codigo"})
        owner[row.id] = line
        planned.append((line, code, plan_row(row, operation="lista_proveedor", percent=None,
                                             update_prices=update_prices, settings=settings, listed_cost=cost)))
    changed = [p for p in planned if p[2].changed]
    return changed, len(planned) - len(changed), unknown, supplier_id


def _items(changed: list[tuple[int, str, Planned]]) -> list[dict[str, Any]]:
    return [{"line": line, "code": code, **planned_out(plan)} for line, code, plan in changed[:PREVIEW_ITEMS]]


def preview_price_list(session: Session, *, content: bytes, filename: str, supplier: str | None,
                       update_prices: bool) -> dict[str, Any]:
    """What the list would change, and which codes are not ours; nothing is written."""
    changed, unchanged, unknown, _ = _plan(session, content=content, filename=filename, supplier=supplier,
                                           update_prices=update_prices)
    return {"batch_id": None, "matched": len(changed) + unchanged, "unchanged": unchanged, "unknown": unknown,
            "items": _items(changed)}


def apply_price_list(session: Session, ctx: Context, *, content: bytes, filename: str, supplier: str | None,
                     update_prices: bool) -> tuple[PriceBatch, dict[str, Any]]:
    """Apply the list's new costs (and prices, if asked) as one batch; unknown codes are reported, not applied."""
    changed, unchanged, unknown, supplier_id = _plan(session, content=content, filename=filename, supplier=supplier,
                                                     update_prices=update_prices)
    if not changed:
        raise InvalidInput("Ningún producto cambia con esta lista; no se creó ningún lote", code="sin_cambios",
                           details={"unknown": unknown[:100]})
    name = filename[-100:] or "lista"
    description = f"Lista de precios {name}" + (f" · proveedor {supplier}" if supplier else "")
    batch = open_batch(session, ctx, operation="lista_proveedor", reason="lista_proveedor",
                       description=description[:300],
                       filters={"file": name, "supplier_id": supplier_id, "update_prices": update_prices})
    write_batch(session, ctx, batch, [plan for _, _, plan in changed])
    record_audit(session, ctx, action="price.list.apply", entity="lote_precios", entity_id=str(batch.id),
                 after={"file": name, "supplier_id": supplier_id, "products": batch.products,
                        "unknown": len(unknown), "update_prices": update_prices})
    return batch, {"batch_id": batch.id, "matched": len(changed) + unchanged, "unchanged": unchanged,
                   "unknown": unknown, "items": _items(changed)}
