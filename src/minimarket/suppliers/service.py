"""Supplier use cases: the supplier file, lookups by CUIT or name, deactivation and merges."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from minimarket.accounts.audit import Context, record_audit
from minimarket.ar.cuit import normalise_cuit
from minimarket.errors import Conflict, InvalidInput, NotFound
from minimarket.suppliers.models import AssignmentRule, Supplier, SupplierCode
from minimarket.suppliers.references import count_references, count_references_each, move_references
from minimarket.suppliers.schemas import SupplierCreate, SupplierOut, SupplierPage, SupplierUpdate
from minimarket.search import contains_text
from minimarket.unique_names import find_or_create

_DIGITS = re.compile(r"[0-9]+")

EDITABLE = ("code", "name", "cuit", "phone", "email", "address", "order_days", "lead_time_days", "min_order",
            "notes", "active")
# Blank fields of a merge's survivor are filled from the merged supplier.
_FILLABLE = ("code", "cuit", "phone", "email", "address", "order_days", "lead_time_days", "min_order", "notes")


def _followed(session: Session, supplier: Supplier) -> Supplier:
    """A merged supplier stands for its survivor (products typed with the old name keep working)."""
    seen = {supplier.id}
    while supplier.merged_into_id is not None and supplier.merged_into_id not in seen:
        supplier = session.get(Supplier, supplier.merged_into_id)
        seen.add(supplier.id)
    return supplier


def supplier_by_ref(session: Session, ref: str | None) -> Supplier | None:
    """A supplier by CUIT or name. An unknown name is registered (without CUIT, listed as
    'a completar') so that a product can name its supplier before the supplier's file is complete."""
    if ref is None or not ref.strip():
        return None
    ref = ref.strip()
    cuit = normalise_cuit(ref)
    if cuit.isdigit() and len(cuit) == 11:
        found = session.scalars(select(Supplier).where(Supplier.cuit == cuit)).first()
        if found is None:
            raise NotFound(f"supplier: no hay un proveedor con CUIT {ref}; cargalo primero o usá su nombre")
        return _followed(session, found)
    # Race-free: concurrent products naming the same new supplier share one row.
    found = find_or_create(session, Supplier, match=func.lower(Supplier.name) == ref.lower(), name=ref,
                           values={"nombre": ref})
    return _followed(session, found)


def supplier_matches(ref: str) -> ColumnElement[bool]:
    """SQL condition: the supplier named `ref` (any case) or whose CUIT is `ref` (with or without dashes)."""
    return or_(func.lower(Supplier.name) == ref.strip().lower(), Supplier.cuit == normalise_cuit(ref))


def find_supplier(session: Session, supplier_id: int, *, lock: bool = False) -> Supplier:
    stmt = select(Supplier).where(Supplier.id == supplier_id)
    if lock:
        stmt = stmt.with_for_update()
    supplier = session.scalars(stmt).first()
    if supplier is None:
        raise NotFound(f"El proveedor {supplier_id} no existe", details={"id": supplier_id})
    return supplier


def resolve_supplier(session: Session, ref: str | int, *, field: str = "supplier", active_only: bool = True) -> Supplier:
    """An existing (by default active) supplier by id, CUIT or exact name (never creates one)."""
    text = str(ref).strip()
    stmt = select(Supplier)
    if text.isdigit() and len(text) < 11:
        stmt = stmt.where(Supplier.id == int(text))
    else:
        stmt = stmt.where(supplier_matches(text))
    found = session.scalars(stmt).first()
    if found is None:
        raise InvalidInput(f"{field}: el proveedor '{text}' no existe; cargalo en /api/suppliers o usá su id o CUIT",
                           details={"field": field, "value": text})
    found = _followed(session, found)
    if active_only and not found.active:
        raise InvalidInput(f"{field}: el proveedor '{found.name}' está desactivado")
    return found


def supplier_out(session: Session, supplier: Supplier, products: int | None = None) -> SupplierOut:
    """The supplier as the API answers it; `products`: its product count when the caller already counted it."""
    if products is None:
        products = count_references(session, "products", supplier.id)
    return SupplierOut(
        id=supplier.id, code=supplier.code, name=supplier.name, cuit=SupplierOut.shown_cuit(supplier.cuit),
        phone=supplier.phone, email=supplier.email, address=supplier.address, order_days=supplier.order_days or [],
        lead_time_days=supplier.lead_time_days, min_order=supplier.min_order, notes=supplier.notes,
        active=supplier.active, incomplete=supplier.cuit is None, merged_into=supplier.merged_into_id,
        products=products or 0, created_at=supplier.created_at, updated_at=supplier.updated_at)


def cuit_digits(q: str) -> str | None:
    """A whole or partial CUIT as typed (`30-7123`, `712345`, `30-71234567-1`): its digits, when it is at least
    three ASCII digits with only dashes, spaces or dots between them; else None (a name or a code)."""
    digits = normalise_cuit(q.strip())
    return digits if len(digits) >= 3 and _DIGITS.fullmatch(digits) else None


def list_suppliers(session: Session, *, q: str | None = None, active: bool | None = True,
                   incomplete: bool | None = None, limit: int = 100, cursor: int | None = None) -> SupplierPage:
    """Suppliers by id; `incomplete=true` lists those 'a completar' (no CUIT yet)."""
    stmt = select(Supplier)
    if q:
        found = [contains_text(Supplier.name, q), contains_text(Supplier.code, q)]
        if digits := cuit_digits(q):
            found.append(Supplier.cuit.contains(digits))
        stmt = stmt.where(or_(*found))
    if active is not None:
        stmt = stmt.where(Supplier.active.is_(active))
    if incomplete is not None:
        stmt = stmt.where(Supplier.cuit.is_(None) if incomplete else Supplier.cuit.is_not(None))
    if cursor is not None:
        stmt = stmt.where(Supplier.id > cursor)
    rows = session.scalars(stmt.order_by(Supplier.id).limit(limit + 1)).all()
    counts = count_references_each(session, "products", [s.id for s in rows[:limit]])
    items = [supplier_out(session, s, counts[s.id]) for s in rows[:limit]]
    return SupplierPage(items=items, next_cursor=str(items[-1].id) if len(rows) > limit else None)


def snapshot(supplier: Supplier) -> dict[str, Any]:
    return {f: getattr(supplier, f) for f in EDITABLE} | {"merged_into": supplier.merged_into_id}


def _check_unique(session: Session, supplier_id: int | None, **values: str | None) -> None:
    labels = {"name": ("nombre", Supplier.name), "cuit": ("CUIT", Supplier.cuit), "code": ("código", Supplier.code)}
    for field, value in values.items():
        if value is None:
            continue
        label, column = labels[field]
        column_value = func.lower(column) if field == "name" else column
        clash = session.scalars(select(Supplier).where(column_value == (value.lower() if field == "name" else value),
                                                      Supplier.id != (supplier_id or 0))).first()
        if clash is not None:
            raise Conflict(f"{field}: ya existe el proveedor {clash.id} ('{clash.name}') con ese {label}",
                           code="proveedor_duplicado", details={"field": field, "existing_id": clash.id})


def _saved(session: Session, apply: Callable[[], None]) -> None:
    """Apply changes inside a savepoint opened first: begin_nested() flushes whatever is pending, so a
    name, CUIT or code a concurrent twin took must be written after it opens, and then only the
    savepoint is lost (409), not the transaction (500)."""
    try:
        with session.begin_nested():
            apply()
            session.flush()
    except IntegrityError as exc:  # a concurrent twin took the same name, CUIT or code
        raise Conflict("Ya existe un proveedor con ese nombre, CUIT o código", code="proveedor_duplicado") from exc


def create_supplier(session: Session, ctx: Context, *, data: SupplierCreate) -> Supplier:
    """Add a supplier to the file."""
    _check_unique(session, None, name=data.name, cuit=data.cuit, code=data.code)
    supplier = Supplier(**data.model_dump())
    _saved(session, lambda: session.add(supplier))
    record_audit(session, ctx, action="supplier.create", entity="proveedor", entity_id=str(supplier.id),
                 after=snapshot(supplier))
    return supplier


def update_supplier(session: Session, ctx: Context, *, supplier_id: int, changes: SupplierUpdate) -> Supplier:
    """Change the fields sent (null clears an optional one)."""
    supplier = find_supplier(session, supplier_id, lock=True)
    sent = changes.model_fields_set
    if "name" in sent and changes.name is None:
        raise InvalidInput("name: el nombre no puede quedar vacío")
    if "active" in sent and changes.active is None:
        raise InvalidInput("active: debe ser true o false")
    if changes.active and supplier.merged_into_id is not None:
        raise Conflict(f"active: el proveedor se fusionó en el {supplier.merged_into_id}; no se puede reactivar")
    _check_unique(session, supplier.id, **{f: getattr(changes, f) for f in ("name", "cuit", "code") if f in sent})
    before = snapshot(supplier)

    def apply() -> None:
        for name in sent:
            setattr(supplier, name, getattr(changes, name))

    _saved(session, apply)
    after = snapshot(supplier)
    if after != before:
        record_audit(session, ctx, action="supplier.update", entity="proveedor", entity_id=str(supplier.id),
                     before=before, after=after)
    return supplier


def deactivate_supplier(session: Session, ctx: Context, *, supplier_id: int) -> Supplier:
    """Deactivate: it leaves lists and new invoices; its products, invoices and history stay."""
    supplier = find_supplier(session, supplier_id, lock=True)
    if supplier.active:
        supplier.active = False
        record_audit(session, ctx, action="supplier.deactivate", entity="proveedor", entity_id=str(supplier.id),
                     before={"active": True}, after={"active": False})
    return supplier


def merge_suppliers(session: Session, ctx: Context, *, supplier_id: int, into: int) -> tuple[Supplier, Supplier,
                                                                                              dict[str, int]]:
    """Move products, invoices, codes and rules of `supplier_id` to `into`, fill the survivor's blanks,
    and leave the merged one inactive pointing at the survivor. Audited with both states."""
    if supplier_id == into:
        raise InvalidInput("into: un proveedor no se puede fusionar consigo mismo")
    # Lock both rows in id order so that two crossed merges cannot deadlock.
    first, second = sorted((supplier_id, into))
    locked = {first: find_supplier(session, first, lock=True), second: find_supplier(session, second, lock=True)}
    merged, survivor = locked[supplier_id], locked[into]
    for s in (merged, survivor):
        if s.merged_into_id is not None:
            raise Conflict(f"El proveedor {s.id} ('{s.name}') ya se fusionó en el {s.merged_into_id}",
                           code="proveedor_fusionado")
    before = {"merged": snapshot(merged), "survivor": snapshot(survivor)}
    moved = _move_history(session, merged.id, survivor.id)
    taken = {f: getattr(merged, f) for f in _FILLABLE if getattr(survivor, f) in (None, [], "")
             and getattr(merged, f) not in (None, [], "")}

    def apply() -> None:
        for unique in ("cuit", "code"):  # free the unique values before the survivor takes them
            if unique in taken:
                setattr(merged, unique, None)
        session.flush()
        for name, value in taken.items():
            setattr(survivor, name, value)
        merged.active, merged.merged_into_id = False, survivor.id

    _saved(session, apply)
    record_audit(session, ctx, action="supplier.merge", entity="proveedor", entity_id=str(merged.id), before=before,
                 after={"merged": snapshot(merged), "survivor": snapshot(survivor), "moved": moved})
    return survivor, merged, moved


def _move_history(session: Session, old: int, new: int) -> dict[str, int]:
    # Products and invoices (and whatever else registers in suppliers.references), then our own rows.
    moved = move_references(session, old, new)
    moved["rules"] = session.execute(update(AssignmentRule).where(AssignmentRule.supplier_id == old)
                                     .values(supplier_id=new)).rowcount or 0
    kept = set(session.scalars(select(SupplierCode.code).where(SupplierCode.supplier_id == new)))
    codes = session.scalars(select(SupplierCode).where(SupplierCode.supplier_id == old)).all()
    for code in codes:
        if code.code not in kept:  # the survivor's own mapping wins over a clash
            code.supplier_id = new
    moved["codes"] = sum(1 for c in codes if c.code not in kept)
    return moved
