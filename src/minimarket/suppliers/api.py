"""Routes for /api/suppliers: the supplier file, assignment rules, suggestions and merges."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from minimarket.accounts.audit import Context
from minimarket.api.deps import get_db, require
from minimarket.accounts.permissions import CATALOG_WRITE, READ
from minimarket.db import Database
from minimarket.platform.json_numbers import PlainNumbersRoute
from minimarket.suppliers import assignment, service
from minimarket.suppliers.schemas import (
    AssignIn,
    AssignOut,
    MergeIn,
    MergeOut,
    RuleIn,
    RuleOut,
    SupplierCreate,
    SupplierOut,
    SupplierPage,
    SupplierUpdate,
)

router = APIRouter(prefix="/api/suppliers", tags=["proveedores"], route_class=PlainNumbersRoute)
SupplierId = Annotated[int, Path(ge=1, le=2_147_483_647, description="Id del proveedor")]


@router.get("", response_model=SupplierPage, summary="Listar proveedores")
def list_suppliers(
    q: Annotated[str | None, Query(max_length=200, description="Nombre, código o CUIT (entero o una parte de 3 "
                                                                 "dígitos o más, con o sin guiones)")] = None,
    active: Annotated[bool | None, Query(description="Por defecto sólo activos")] = True,
    incomplete: Annotated[bool | None, Query(description="true: sólo los 'a completar' (sin CUIT)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[int | None, Query(ge=0, le=2_147_483_647)] = None,
    _ctx: Context = Depends(require(READ)),
    db: Database = Depends(get_db),
) -> SupplierPage:
    with db.read() as session:
        return service.list_suppliers(session, q=q, active=active, incomplete=incomplete, limit=limit, cursor=cursor)


@router.post("", status_code=201, response_model=SupplierOut, summary="Dar de alta un proveedor")
def create_supplier(data: SupplierCreate, ctx: Context = Depends(require(CATALOG_WRITE)),
                    db: Database = Depends(get_db)) -> SupplierOut:
    with db.write() as session:
        return service.supplier_out(session, service.create_supplier(session, ctx, data=data))


@router.get("/rules", response_model=list[RuleOut], summary="Reglas de asignación de proveedor")
def list_rules(_ctx: Context = Depends(require(READ)), db: Database = Depends(get_db)) -> list[RuleOut]:
    with db.read() as session:
        return assignment.list_rules(session)


@router.post("/rules", status_code=201, response_model=RuleOut,
             summary="Crear una regla: marca, palabra o categoría → proveedor (o el predeterminado)")
def create_rule(data: RuleIn, ctx: Context = Depends(require(CATALOG_WRITE)),
                db: Database = Depends(get_db)) -> RuleOut:
    with db.write() as session:
        return assignment.create_rule(session, ctx, data=data)


@router.delete("/rules/{rule_id}", response_model=RuleOut, summary="Borrar una regla de asignación")
def delete_rule(rule_id: Annotated[int, Path(ge=1, le=2_147_483_647)], ctx: Context = Depends(require(CATALOG_WRITE)),
                db: Database = Depends(get_db)) -> RuleOut:
    with db.write() as session:
        return assignment.delete_rule(session, ctx, rule_id=rule_id)


@router.post("/assign", response_model=AssignOut,
             summary="Sugerir el proveedor de un producto por su nombre, marca y categoría (no cambia nada)")
def assign(data: AssignIn, _ctx: Context = Depends(require(READ)), db: Database = Depends(get_db)) -> AssignOut:
    with db.read() as session:
        return assignment.suggest_supplier(session, data=data)


@router.get("/{supplier_id}", response_model=SupplierOut, summary="Un proveedor")
def get_supplier(supplier_id: SupplierId, _ctx: Context = Depends(require(READ)),
                 db: Database = Depends(get_db)) -> SupplierOut:
    with db.read() as session:
        return service.supplier_out(session, service.find_supplier(session, supplier_id))


@router.patch("/{supplier_id}", response_model=SupplierOut, summary="Modificar datos de un proveedor")
def update_supplier(supplier_id: SupplierId, changes: SupplierUpdate, ctx: Context = Depends(require(CATALOG_WRITE)),
                    db: Database = Depends(get_db)) -> SupplierOut:
    with db.write() as session:
        supplier = service.update_supplier(session, ctx, supplier_id=supplier_id, changes=changes)
        return service.supplier_out(session, supplier)


@router.delete("/{supplier_id}", response_model=SupplierOut,
               summary="Desactivar un proveedor (sus productos, facturas e historia quedan)")
def deactivate_supplier(supplier_id: SupplierId, ctx: Context = Depends(require(CATALOG_WRITE)),
                        db: Database = Depends(get_db)) -> SupplierOut:
    with db.write() as session:
        return service.supplier_out(session, service.deactivate_supplier(session, ctx, supplier_id=supplier_id))


@router.post("/{supplier_id}/merge", response_model=MergeOut,
             summary="Fusionar este proveedor en otro: productos, facturas, códigos y reglas pasan al que queda")
def merge_supplier(supplier_id: SupplierId, data: MergeIn, ctx: Context = Depends(require(CATALOG_WRITE)),
                   db: Database = Depends(get_db)) -> MergeOut:
    with db.write() as session:
        survivor, merged, moved = service.merge_suppliers(session, ctx, supplier_id=supplier_id, into=data.into)
        return MergeOut(survivor=service.supplier_out(session, survivor), merged=service.supplier_out(session, merged),
                        moved=moved)
