"""Receiving a purchase order: what arrived comes in as `entrada` movements, costs are updated.

One unit of work: the order row is locked first (two deliveries of one order queue), the goods
go through the stock service (`stock.service.register_movements`, the ledger's one writer), costs
through `pricing.service.record_cost_changes` (one call per delivery: cost, `precios_historial` row
with motivo `pedido`, suggested price), and the received quantities and state are written, or
nothing is. Retries with the same Idempotency-Key get the first answer (`api.writes.write_once`).
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from minimarket.accounts.audit import Context, record_audit
from minimarket.accounts.permissions import CATALOG_WRITE
from minimarket.ar.money import to_money, to_qty
from minimarket.catalog.models import Product
from minimarket.config import Settings
from minimarket.errors import Conflict, Forbidden, InvalidInput
from minimarket.invoices.models import Invoice
from minimarket.pricing.service import record_cost_changes
from minimarket.purchasing import order_rules as rules
from minimarket.purchasing.models import PurchaseOrder, PurchaseOrderLine
from minimarket.purchasing.order_schemas import ReceiptCost, ReceiveIn, ReceiveOut
from minimarket.purchasing.orders import (
    ENTITY,
    check_transition,
    find_order,
    link_invoice,
    mark_invoice_received,
    order_out,
)
from minimarket.stock import service as stock_service
from minimarket.stock.locations import resolve_location
from minimarket.stock.policy import load_stock_policy
from minimarket.stock.schemas import BatchIn, BatchLine
from minimarket.suppliers.models import Supplier
from minimarket.types import utcnow


def _arrivals(order: PurchaseOrder, products: dict[int, Product], data: ReceiveIn, ctx: Context
              ) -> list[tuple[PurchaseOrderLine, Decimal, Decimal]]:
    """(order line, units arriving, unit cost) for each line of the delivery; everything pending if none given."""
    if not data.lines:
        due = [(line, line.quantity - line.received, line.unit_cost) for line in order.lines
               if line.quantity > line.received]
        if not due:
            raise InvalidInput("lines: no queda nada por recibir en este pedido; indicá las líneas que llegaron de más "
                               "con allow_over: true", details={"field": "lines"})
        return due
    by_ref = {}
    for line in order.lines:
        product = products[line.product_id]
        by_ref[product.sku] = line
        if product.barcode:
            by_ref[product.barcode] = line
    arrivals, seen = [], {}
    for i, item in enumerate(data.lines):
        ref = item.sku.strip()
        line = by_ref.get(ref.upper() if ref.isascii() else ref) or by_ref.get(ref)
        if line is None:
            raise InvalidInput(f"lines[{i}].sku: '{item.sku}' no está en el pedido {order.id}; lo que llegó sin "
                               "pedir se registra como entrada en Movimientos", details={"field": f"lines[{i}].sku"})
        if line.line_no in seen:
            raise InvalidInput(f"lines[{i}].sku: '{item.sku}' ya está en la línea {seen[line.line_no]}",
                               details={"field": f"lines[{i}].sku"})
        seen[line.line_no] = i
        if item.unit_cost is not None and ctx.role is not None and ctx.role not in CATALOG_WRITE:
            raise Forbidden(f"lines[{i}].unit_cost: el rol '{ctx.role}' recibe mercadería pero no cambia costos; "
                            "dejá el costo del pedido o pedíselo a un encargado")
        problem = rules.delivery_problem(rules.LineState(line.quantity, line.received), item.quantity,
                                         allow_over=data.allow_over)
        if problem:
            raise InvalidInput(f"lines[{i}].{problem}", details={"field": f"lines[{i}].quantity"})
        arrivals.append((line, item.quantity, item.unit_cost if item.unit_cost is not None else line.unit_cost))
    return arrivals


def _check_invoice_open(session: Session, order: PurchaseOrder) -> None:
    """A confirmed invoice already brought its goods in: receiving its order would bring them in twice.
    The invoice row is locked (its confirmation waits for this delivery, then records costs only)."""
    if order.invoice_id is None:
        return
    invoice = session.scalars(select(Invoice).where(Invoice.id == order.invoice_id).with_for_update(of=Invoice)
                              .execution_options(populate_existing=True)).first()
    if invoice.state == "confirmada" and invoice.goods_received_by is None:
        raise Conflict(f"Pedido {order.id}: la factura {invoice.id} vinculada ya está confirmada y su mercadería ya "
                       "ingresó al stock; recibir el pedido la ingresaría otra vez. Si no falta nada, cancelá el "
                       "pedido con ese motivo", code="mercaderia_ya_ingresada",
                       details={"id": order.id, "invoice_id": invoice.id})


def receive_order(session: Session, ctx: Context, *, order_id: int, data: ReceiveIn, settings: Settings,
                  idempotency_key: str | None = None) -> ReceiveOut:
    """A delivery of a sent order: `entrada` per arriving line, costs updated, state recibido(_parcial)."""
    order = find_order(session, order_id, lock=True)
    check_transition(order, "recibido")
    if data.invoice_id is not None:
        link_invoice(session, order, data.invoice_id)
    _check_invoice_open(session, order)
    products = {p.id: p for p in session.scalars(select(Product).where(
        Product.id.in_({x.product_id for x in order.lines})))}
    arrivals = _arrivals(order, products, data, ctx)
    target = resolve_location(session, data.location or load_stock_policy(session, settings).default_location)
    supplier = session.get(Supplier, order.supplier_id)
    reason = f"Pedido {order.id} de {supplier.name}"[:500]
    batch = stock_service.register_movements(session, ctx, batch=BatchIn(lines=[
        BatchLine(sku=products[line.product_id].sku, type="entrada", quantity=units, unit_cost=cost,
                  location=target.code, reason=reason, reference=f"pedido:{order.id}")
        for line, units, cost in arrivals]), settings=settings, idempotency_key=idempotency_key)
    for line, units, _ in arrivals:
        line.received = to_qty(line.received + units)
    # One pricing call for every line whose cost moves (products locked once, by id).
    new_costs = {line.product_id: to_money(cost) for line, _, cost in arrivals
                 if to_money(cost) != products[line.product_id].cost}
    changes = [ReceiptCost(sku=r.product.sku, cost_before=r.cost_before, cost_after=r.product.cost,
                           suggested_price=r.suggested_price)
               for r in (record_cost_changes(session, ctx, new_costs=new_costs, reason="pedido",
                                             reference=f"Pedido {order.id}") if new_costs else [])]
    previous = order.state
    order.state = rules.state_after_delivery([rules.LineState(x.quantity, x.received) for x in order.lines],
                                             close=data.close)
    order.received_at = order.updated_at = utcnow()
    order.receipt_operations = [*(order.receipt_operations or []), batch.operation_id]
    mark_invoice_received(session, order)
    session.flush()
    received = {products[line.product_id].sku: to_qty(units) for line, units, _ in arrivals}
    record_audit(session, ctx, action="purchase_order.receive", entity=ENTITY, entity_id=str(order.id),
                 before={"state": previous},
                 after={"state": order.state, "location": target.code, "operation_id": batch.operation_id,
                        "received": received, "closed": data.close})
    return ReceiveOut(order=order_out(session, order), operation_id=batch.operation_id, received=received,
                      cost_changes=changes)
