"""Purchase orders (pedidos): create by hand or from the reorder suggestions, edit while draft, send,
cancel, read. Receiving is in `receiving.py`; the PDF and WhatsApp text in `order_documents.py`."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from minimarket.accounts.audit import Context, record_audit
from minimarket.ar.dates import local
from minimarket.ar.money import to_money, to_qty
from minimarket.catalog.models import Product
from minimarket.catalog.service import find_product
from minimarket.errors import Conflict, InvalidInput, NotFound
from minimarket.invoices.models import Invoice
from minimarket.invoices.service import mark_goods_received
from minimarket.limits import QUANTITY, check_value
from minimarket.purchasing import order_rules as rules
from minimarket.purchasing.models import PurchaseOrder, PurchaseOrderLine
from minimarket.purchasing.order_schemas import (
    OrderIn,
    OrderLineIn,
    OrderLineOut,
    OrderOut,
    OrderPage,
    OrderPatch,
    OrderSummary,
)
from minimarket.purchasing.suggestions import DEFAULT_LEAD_DAYS
from minimarket.purchasing.suggestions import suggestions as suggest_lines
from minimarket.stock.rules import check_unit_quantity
from minimarket.suppliers.models import Supplier, SupplierCode
from minimarket.suppliers.service import resolve_supplier
from minimarket.types import utcnow

ENTITY = "pedido"


def find_order(session: Session, order_id: int, *, lock: bool = False) -> PurchaseOrder:
    stmt = select(PurchaseOrder).where(PurchaseOrder.id == order_id)
    if lock:
        stmt = stmt.with_for_update(of=PurchaseOrder).execution_options(populate_existing=True)
    order = session.scalars(stmt).first()
    if order is None:
        raise NotFound(f"El pedido {order_id} no existe", details={"id": order_id})
    return order


def check_transition(order: PurchaseOrder, target: str) -> None:
    problem = rules.transition_problem(order.state, target)
    if problem is not None:
        raise Conflict(f"Pedido {order.id}: {problem}", code="pedido_estado",
                       details={"id": order.id, "state": order.state})


def _pack_size(session: Session, supplier_id: int, product_id: int) -> int | None:
    return session.scalar(select(SupplierCode.pack_size).where(
        SupplierCode.supplier_id == supplier_id, SupplierCode.product_id == product_id,
        SupplierCode.pack_size.is_not(None)).order_by(SupplierCode.pack_size.desc()).limit(1))


def _product(session: Session, ref: str, field: str) -> Product:
    try:
        return find_product(session, ref)
    except NotFound as exc:
        raise InvalidInput(f"{field}: {exc.message}", details={"field": field, "value": ref}) from exc


def _line(session: Session, supplier: Supplier, data: OrderLineIn, field: str, line_no: int,
          reason: str | None = None) -> PurchaseOrderLine:
    product = _product(session, data.sku, f"{field}.sku")
    pack = data.pack_size if data.pack_size is not None else _pack_size(session, supplier.id, product.id)
    try:
        units = rules.units_ordered(quantity=data.quantity, packs=data.packs, pack_size=pack)
    except ValueError as exc:
        raise InvalidInput(f"{field}.{exc}", details={"field": field}) from exc
    check_value(units, QUANTITY, field=f"{field}.quantity")
    try:
        check_unit_quantity(product.unit, units, sku=product.sku)
    except InvalidInput as exc:
        exc.message = f"{field}.{exc.message}"
        raise
    cost = data.unit_cost if data.unit_cost is not None else product.cost
    return PurchaseOrderLine(line_no=line_no, product_id=product.id, quantity=to_qty(units),
                             pack_size=pack if pack and pack > 1 else None, unit_cost=to_money(cost),
                             received=Decimal(0), reason=reason)


def _lines(session: Session, supplier: Supplier, items: list[OrderLineIn],
           reasons: dict[str, str] | None = None) -> list[PurchaseOrderLine]:
    built, seen = [], {}
    for i, item in enumerate(items):
        line = _line(session, supplier, item, f"lines[{i}]", i + 1, (reasons or {}).get(item.sku))
        if line.product_id in seen:
            raise InvalidInput(f"lines[{i}].sku: '{item.sku}' ya está en la línea {seen[line.product_id]}; "
                               "sumá las cantidades en una sola línea", details={"field": f"lines[{i}].sku"})
        seen[line.product_id] = i
        built.append(line)
    return built


def _from_suggestions(session: Session, supplier: Supplier, data: OrderIn) -> tuple[list[OrderLineIn], dict]:
    """The supplier's suggested lines (all, or those in `skus`), with why each was suggested."""
    groups = suggest_lines(session, supplier=str(supplier.id), cover_days=data.cover_days)["suppliers"]
    lines = groups[0]["lines"] if groups else []
    by_sku = {line["sku"]: line for line in lines}
    chosen = [ref.strip().upper() for ref in data.skus] if data.skus is not None else list(by_sku)
    missing = [sku for sku in chosen if sku not in by_sku]
    if missing:
        raise InvalidInput(f"skus: {', '.join(missing)} no está entre lo que conviene pedir a {supplier.name} hoy; "
                           "agregalo a mano en lines", details={"field": "skus", "value": missing})
    if not chosen:
        raise InvalidInput(f"from_suggestions: hoy no hace falta pedirle nada a {supplier.name}; "
                           "armá el pedido a mano con lines", details={"field": "from_suggestions"})
    items = [OrderLineIn(sku=sku, quantity=Decimal(by_sku[sku]["quantity"]), pack_size=by_sku[sku]["pack_size"] or 1)
             for sku in chosen]
    return items, {sku: "; ".join(by_sku[sku]["why"]) for sku in chosen}


def create_order(session: Session, ctx: Context, *, data: OrderIn) -> PurchaseOrder:
    """A draft order to one supplier, from its suggestions or from the given lines."""
    supplier = resolve_supplier(session, data.supplier)
    items, reasons = _from_suggestions(session, supplier, data) if data.from_suggestions else (data.lines, {})
    order = PurchaseOrder(supplier_id=supplier.id, state="borrador", notes=data.notes, created_by=ctx.actor,
                          receipt_operations=[], lines=_lines(session, supplier, items, reasons))
    session.add(order)
    session.flush()
    record_audit(session, ctx, action="purchase_order.create", entity=ENTITY, entity_id=str(order.id),
                 after={"supplier": supplier.name, "from_suggestions": data.from_suggestions,
                        "lines": _audit_lines(session, order)})
    return order


def _audit_lines(session: Session, order: PurchaseOrder) -> list[dict]:
    skus = _skus(session, order)
    return [{"sku": skus[line.product_id], "quantity": line.quantity, "unit_cost": line.unit_cost}
            for line in order.lines]


def _skus(session: Session, order: PurchaseOrder) -> dict[int, str]:
    ids = {line.product_id for line in order.lines}
    return dict(session.execute(select(Product.id, Product.sku).where(Product.id.in_(ids))).all()) if ids else {}


def link_invoice(session: Session, order: PurchaseOrder, invoice_id: int, *, field: str = "invoice_id") -> None:
    """The supplier's invoice for this order's goods; locked, and marked if a delivery already brought them in."""
    invoice = session.scalars(select(Invoice).where(Invoice.id == invoice_id).with_for_update(of=Invoice)
                              .execution_options(populate_existing=True)).first()
    if invoice is None:
        raise InvalidInput(f"{field}: la factura {invoice_id} no existe", details={"field": field})
    if invoice.supplier_id != order.supplier_id:
        raise InvalidInput(f"{field}: la factura {invoice_id} es de otro proveedor", details={"field": field})
    if order.receipt_operations and invoice.state == "confirmada" and invoice.goods_received_by is None:
        raise Conflict(f"Pedido {order.id}: la factura {invoice.id} ya está confirmada y ingresó su mercadería, y "
                       "el pedido ya recibió la suya; vincularlas no deshace el doble ingreso. Corregí el stock con "
                       "un movimiento o anulá la factura", code="mercaderia_ya_ingresada",
                       details={"id": order.id, "invoice_id": invoice.id})
    if order.invoice_id not in (None, invoice.id):
        previous = session.get(Invoice, order.invoice_id)
        if previous is not None and previous.goods_received_by == _reference(order):
            mark_goods_received(previous, None)  # no longer this order's invoice
    order.invoice_id = invoice.id
    if order.receipt_operations:
        mark_goods_received(invoice, _reference(order))


def mark_invoice_received(session: Session, order: PurchaseOrder) -> None:
    """After a delivery: the linked draft invoice's goods came in with the order (it will confirm costs only)."""
    if order.invoice_id is not None:
        mark_goods_received(session.get(Invoice, order.invoice_id), _reference(order))


def _reference(order: PurchaseOrder) -> str:
    return f"pedido:{order.id}"


def update_order(session: Session, ctx: Context, *, order_id: int, changes: OrderPatch) -> PurchaseOrder:
    """Lines and notes while borrador; the supplier's invoice while not cancelled."""
    order = find_order(session, order_id, lock=True)
    before = {"notes": order.notes, "invoice_id": order.invoice_id, "lines": _audit_lines(session, order)}
    edits_draft = changes.lines is not None or "notes" in changes.model_fields_set
    if edits_draft and order.state != "borrador":
        raise Conflict(f"Pedido {order.id}: sólo se editan las líneas y las notas de un borrador; "
                       f"este está {rules.STATE_LABELS[order.state].lower()}", code="pedido_estado",
                       details={"id": order.id, "state": order.state})
    if changes.invoice_id is not None:
        if order.state == "cancelado":
            raise Conflict(f"Pedido {order.id}: está cancelado", code="pedido_estado", details={"id": order.id})
        link_invoice(session, order, changes.invoice_id)
    if "notes" in changes.model_fields_set:
        order.notes = changes.notes
    if changes.lines is not None:
        order.lines.clear()
        session.flush()  # the old lines go before the new ones take their numbers
        order.lines.extend(_lines(session, session.get(Supplier, order.supplier_id), changes.lines))
    order.updated_at = utcnow()
    session.flush()
    record_audit(session, ctx, action="purchase_order.update", entity=ENTITY, entity_id=str(order.id),
                 before=before, after={"notes": order.notes, "invoice_id": order.invoice_id,
                                       "lines": _audit_lines(session, order)})
    return order


def send_order(session: Session, ctx: Context, *, order_id: int, notes: str | None = None) -> PurchaseOrder:
    """borrador → enviado; the expected delivery is today + the supplier's lead time."""
    order = find_order(session, order_id, lock=True)
    check_transition(order, "enviado")
    supplier = session.get(Supplier, order.supplier_id)
    if notes is not None:
        order.notes = notes
    lead = supplier.lead_time_days if supplier.lead_time_days is not None else DEFAULT_LEAD_DAYS
    order.state, order.sent_by, order.sent_at = "enviado", ctx.actor, utcnow()
    order.expected_on = local(order.sent_at).date() + timedelta(days=lead)
    order.updated_at = order.sent_at
    session.flush()
    record_audit(session, ctx, action="purchase_order.send", entity=ENTITY, entity_id=str(order.id),
                 before={"state": "borrador"}, after={"state": "enviado", "expected_on": order.expected_on})
    return order


def cancel_order(session: Session, ctx: Context, *, order_id: int, reason: str) -> PurchaseOrder:
    """→ cancelado. What already came in stays; what did not is no longer on order."""
    order = find_order(session, order_id, lock=True)
    check_transition(order, "cancelado")
    previous = order.state
    order.state, order.cancelled_by, order.cancelled_at, order.cancel_reason = "cancelado", ctx.actor, utcnow(), reason
    order.updated_at = order.cancelled_at
    session.flush()
    record_audit(session, ctx, action="purchase_order.cancel", entity=ENTITY, entity_id=str(order.id),
                 before={"state": previous}, after={"state": "cancelado", "reason": reason})
    return order


def order_out(session: Session, order: PurchaseOrder) -> OrderOut:
    supplier = session.get(Supplier, order.supplier_id)
    ids = {line.product_id for line in order.lines}
    products = {p.id: p for p in session.scalars(select(Product).where(Product.id.in_(ids)))} if ids else {}
    lines = []
    for line in order.lines:
        product = products[line.product_id]
        state = rules.LineState(line.quantity, line.received)
        lines.append(OrderLineOut(
            line=line.line_no, sku=product.sku, name=product.name, unit=product.unit, quantity=to_qty(line.quantity),
            pack_size=line.pack_size, packs=rules.packs_of(line.quantity, line.pack_size),
            unit_cost=to_money(line.unit_cost), line_cost=to_money(line.quantity * line.unit_cost),
            received=to_qty(line.received), pending=to_qty(state.pending), reason=line.reason))
    return OrderOut(
        id=order.id, supplier_id=supplier.id, supplier=supplier.name, supplier_phone=supplier.phone,
        state=order.state, state_label=rules.STATE_LABELS[order.state], notes=order.notes, lines=lines,
        total_cost=sum((line.line_cost for line in lines), Decimal("0.00")),
        pending_units=_open_pending(order, sum((line.pending for line in lines), Decimal("0.000"))),
        created_by=order.created_by, created_at=order.created_at, sent_by=order.sent_by, sent_at=order.sent_at,
        expected_on=order.expected_on, received_at=order.received_at, cancelled_by=order.cancelled_by,
        cancelled_at=order.cancelled_at, cancel_reason=order.cancel_reason, invoice_id=order.invoice_id,
        receipt_operations=list(order.receipt_operations or []),
        pdf_url=f"/api/purchase-orders/{order.id}.pdf", whatsapp_url=f"/api/purchase-orders/{order.id}/whatsapp.txt")


def _open_pending(order: PurchaseOrder, pending: Decimal) -> Decimal:
    """What is still expected: nothing once the order is closed, cancelled or not sent yet."""
    return to_qty(pending) if order.state in rules.OPEN_STATES else Decimal("0.000")


def list_orders(session: Session, *, supplier: str | None = None, state: str | None = None, limit: int = 50,
                cursor: int | None = None) -> OrderPage:
    """Newest first, by supplier (id, CUIT or name) and state."""
    stmt = select(PurchaseOrder)
    if supplier:
        stmt = stmt.where(PurchaseOrder.supplier_id == resolve_supplier(session, supplier, active_only=False).id)
    if state:
        stmt = stmt.where(PurchaseOrder.state == state)
    if cursor is not None:
        stmt = stmt.where(PurchaseOrder.id < cursor)
    rows = session.scalars(stmt.order_by(PurchaseOrder.id.desc()).limit(limit + 1)).all()
    names = dict(session.execute(select(Supplier.id, Supplier.name).where(
        Supplier.id.in_({o.supplier_id for o in rows}))).all()) if rows else {}
    items = [_summary(order, names[order.supplier_id]) for order in rows[:limit]]
    return OrderPage(items=items, next_cursor=str(items[-1].id) if len(rows) > limit else None)


def _summary(order: PurchaseOrder, supplier: str) -> OrderSummary:
    pending = sum((rules.LineState(line.quantity, line.received).pending for line in order.lines), Decimal(0))
    return OrderSummary(
        id=order.id, supplier_id=order.supplier_id, supplier=supplier, state=order.state,
        state_label=rules.STATE_LABELS[order.state], lines=len(order.lines),
        total_cost=to_money(sum((line.quantity * line.unit_cost for line in order.lines), Decimal(0))),
        pending_units=_open_pending(order, pending), created_at=order.created_at, sent_at=order.sent_at,
        expected_on=order.expected_on)
