"""Confirming an invoice brings its goods in and updates costs; annulling takes them back out.

Both run in the caller's single unit of work. Stock moves only through the stock service
(`stock.service.register_movements`, which writes through the ledger), costs only through
`pricing.service.record_cost_changes`, one call for all the lines (cost, `precios_historial` row,
suggested price). The invoice row is locked first, so two concurrent confirmations of one
invoice bring the goods in once: the second waits for the lock and then finds it `confirmada`.
An invoice whose goods a purchase order's delivery already brought in (`goods_received_by`, set by
`purchasing` through `invoices.service.mark_goods_received` under the same row lock) is confirmed for
its costs only, and annulling it takes back only those costs.
"""

from __future__ import annotations

from decimal import Decimal

from prometheus_client import Counter
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from minimarket.accounts.audit import Context, record_audit
from minimarket.ar.invoices import VAT_DISCRIMINATED
from minimarket.ar.money import to_money
from minimarket.catalog.models import Product
from minimarket.config import Settings
from minimarket.errors import Conflict, InsufficientStock, InvalidInput
from minimarket.invoices.models import Invoice, InvoiceLine
from minimarket.limits import MONEY, check_value
from minimarket.invoices.schemas import ConfirmOut, CostChange
from minimarket.invoices.service import display_number, find_invoice, invoice_out
from minimarket.invoices.settings import deposito_can_confirm, tax_condition
from minimarket.catalog.price_history import PriceChange
from minimarket.pricing.service import record_cost_changes, revert_cost_changes
from minimarket.pricing.settings import load_pricing_settings
from minimarket.stock import service as stock_service
from minimarket.stock.locations import resolve_location
from minimarket.stock.models import Location
from minimarket.stock.policy import load_stock_policy
from minimarket.stock.schemas import BatchIn, BatchLine
from minimarket.suppliers.models import Supplier
from minimarket.types import utcnow

INVOICES_CONFIRMED = Counter("minimarket_invoices_confirmed_total", "Supplier invoices confirmed (committed)")


def may_confirm(session: Session, *, role: str | None) -> bool:
    """Whether `role` may confirm an invoice: the depósito only where the store allows it (invoices.settings);
    the API and the Facturas page both ask here, each after its own role check (STOCK_WRITE)."""
    return role != "deposito" or deposito_can_confirm(session)


def _reference(invoice: Invoice) -> str:
    return f"factura:{invoice.id}"


def _label(invoice: Invoice) -> str:
    return f"FC {invoice.type} {display_number(invoice)}"


def _not_draft(invoice: Invoice) -> Conflict:
    if invoice.state == "confirmada":
        return Conflict(f"La factura {display_number(invoice)} ya está confirmada (por {invoice.confirmed_by}); "
                        "su mercadería ya ingresó", code="factura_ya_confirmada",
                        details={"id": invoice.id, "state": invoice.state})
    return Conflict(f"La factura {display_number(invoice)} está anulada", code="factura_anulada",
                    details={"id": invoice.id, "state": invoice.state})


def _price_reference(invoice: Invoice) -> str:
    """What the invoice's cost changes carry in precios_historial: its id (annulment finds them) and number."""
    return f"{_reference(invoice)} {_label(invoice)}"


def _line_cost(line: InvoiceLine, *, vat_in_cost: bool) -> Decimal:
    """What the line's goods cost: their net after discount, plus the line's IVA when the store cannot credit it."""
    return line.net * (1 + line.vat_rate / 100) if vat_in_cost else line.net


def _vat_in_cost(session: Session, invoice: Invoice) -> bool:
    """An A or M invoice's IVA is a cost for a store that is not responsable inscripto (B and C already include it)."""
    return invoice.type in VAT_DISCRIMINATED and tax_condition(session) != "responsable_inscripto"


def _unit_cost(line: InvoiceLine, *, vat_in_cost: bool) -> Decimal:
    """What one unit really cost (after the line's discount); 422 naming the line if no column could hold it."""
    return check_value(to_money(_line_cost(line, vat_in_cost=vat_in_cost) / line.quantity), MONEY,
                       field=f"lines[{line.line_no - 1}].unit_cost")


def confirm_invoice(session: Session, ctx: Context, *, invoice_id: int, location: str | None, settings: Settings,
                    idempotency_key: str | None = None) -> ConfirmOut:
    """borrador → confirmada: an `entrada` per line, each product's cost updated, suggested prices. When a
    purchase order's delivery already brought the goods in (`goods_received_by`), the costs only."""
    invoice = find_invoice(session, invoice_id, lock=True)
    if invoice.state != "borrador":
        raise _not_draft(invoice)
    if not invoice.lines:
        raise InvalidInput("lines: la factura no tiene líneas; no hay mercadería que ingresar", code="factura_sin_lineas")
    unmatched = [line.line_no for line in invoice.lines if line.product_id is None]
    if unmatched:
        raise InvalidInput(f"lines: las líneas {', '.join(map(str, unmatched))} no tienen producto asociado; "
                           "asociálas con PATCH /api/invoices/{id} (matches) antes de confirmar",
                           code="lineas_sin_asociar", details={"lines": unmatched})
    vat_in_cost = _vat_in_cost(session, invoice)
    target, operation_id = None, None
    if invoice.goods_received_by is None:
        target = resolve_location(session, location or load_stock_policy(session, settings).default_location)
        operation_id = _bring_goods_in(session, ctx, invoice, target, vat_in_cost=vat_in_cost, settings=settings,
                                       idempotency_key=idempotency_key)
    changes = _update_costs(session, ctx, invoice, vat_in_cost=vat_in_cost)
    invoice.state, invoice.location_id = "confirmada", target.id if target else None
    invoice.confirmed_by, invoice.confirmed_at = ctx.actor, utcnow()
    invoice.receipt_operation = operation_id
    session.flush()
    record_audit(session, ctx, action="invoice.confirm", entity="factura", entity_id=str(invoice.id),
                 before={"state": "borrador"},
                 after={"state": "confirmada", "location": target.code if target else None,
                        "operation_id": operation_id, "goods_received_by": invoice.goods_received_by,
                        "costs": [c.model_dump(mode="json", include={"sku", "cost_before", "cost_after"})
                                  for c in changes]})
    session.info["invoices_confirmed"] = session.info.get("invoices_confirmed", 0) + 1
    return ConfirmOut(invoice=invoice_out(session, invoice), operation_id=operation_id, cost_changes=changes)


def _bring_goods_in(session: Session, ctx: Context, invoice: Invoice, target: Location, *, vat_in_cost: bool,
                    settings: Settings, idempotency_key: str | None) -> str:
    """An `entrada` per line at `target` through the stock service; the ledger operation's id."""
    supplier = session.get(Supplier, invoice.supplier_id)
    skus = dict(session.execute(select(Product.id, Product.sku).where(
        Product.id.in_({line.product_id for line in invoice.lines}))).all())
    reason = f"{_label(invoice)} de {supplier.name}"[:500]
    return stock_service.register_movements(
        session, ctx, batch=BatchIn(lines=[
            BatchLine(sku=skus[line.product_id], type="entrada", quantity=line.quantity,
                      unit_cost=_unit_cost(line, vat_in_cost=vat_in_cost), location=target.code, reason=reason,
                      reference=_reference(invoice))
            for line in invoice.lines]), settings=settings, idempotency_key=idempotency_key).operation_id


def _update_costs(session: Session, ctx: Context, invoice: Invoice, *, vat_in_cost: bool) -> list[CostChange]:
    """One cost per product: what its lines cost in total over how many units came in (one pricing call)."""
    nets: dict[int, Decimal] = {}
    quantities: dict[int, Decimal] = {}
    for line in invoice.lines:
        nets[line.product_id] = nets.get(line.product_id, Decimal("0")) + _line_cost(line, vat_in_cost=vat_in_cost)
        quantities[line.product_id] = quantities.get(line.product_id, Decimal("0")) + line.quantity
    applied = load_pricing_settings(session).apply_suggested_price
    results = record_cost_changes(session, ctx, new_costs={pid: to_money(nets[pid] / quantities[pid]) for pid in nets},
                                  reason="factura", reference=_price_reference(invoice))
    return [CostChange(sku=r.product.sku, cost_before=r.cost_before, cost_after=r.product.cost,
                       price=r.product.price, suggested_price=r.suggested_price, applied=applied) for r in results]


def annul_invoice(session: Session, ctx: Context, *, invoice_id: int, reason: str, settings: Settings) -> Invoice:
    """→ anulada. A confirmed invoice's goods go back out (`salida`), refused if they are already gone (not the
    goods a purchase order brought in: they stay, the order accounts for them), and the costs it set go back to what they were, unless a later change (invoice, list, manual) superseded them."""
    invoice = find_invoice(session, invoice_id, lock=True)
    if invoice.state == "anulada":
        raise _not_draft(invoice)
    previous, costs = invoice.state, {}
    if previous == "confirmada":
        if invoice.goods_received_by is None:  # not when an order's delivery brought the goods in
            invoice.reversal_operation = _take_goods_back(session, ctx, invoice, reason=reason, settings=settings)
        reverted, kept = revert_cost_changes(session, ctx, changes=_cost_changes_of(session, invoice),
                                             reference=f"Anulación de {_price_reference(invoice)}")
        costs = {"costs_reverted": reverted, "costs_kept": kept}
    invoice.state, invoice.annulled_by, invoice.annulled_at, invoice.annul_reason = "anulada", ctx.actor, utcnow(), reason
    session.flush()
    record_audit(session, ctx, action="invoice.annul", entity="factura", entity_id=str(invoice.id),
                 before={"state": previous}, after={"state": "anulada", "reason": reason,
                                                    "operation_id": invoice.reversal_operation, **costs})
    return invoice


def _take_goods_back(session: Session, ctx: Context, invoice: Invoice, *, reason: str, settings: Settings) -> str:
    """A `salida` per line from where the goods came in; Conflict if that stock is no longer there."""
    location = session.get(Location, invoice.location_id)
    skus = dict(session.execute(select(Product.id, Product.sku).where(
        Product.id.in_({line.product_id for line in invoice.lines}))).all())
    vat_in_cost = _vat_in_cost(session, invoice)
    try:
        batch = stock_service.register_movements(
            session, ctx, batch=BatchIn(lines=[
                BatchLine(sku=skus[line.product_id], type="salida", quantity=line.quantity,
                          unit_cost=_unit_cost(line, vat_in_cost=vat_in_cost), location=location.code,
                          reason=f"Anulación de {_label(invoice)}: {reason}"[:500], reference=_reference(invoice))
                for line in invoice.lines]), settings=settings, refuse_negative=True)
    except InsufficientStock as exc:
        raise Conflict(f"No se puede anular la factura {display_number(invoice)}: esa mercadería ya no está. "
                       f"{exc.message}. Registrá una devolución al proveedor o un ajuste", code="stock_insuficiente",
                       details=exc.details) from exc
    return batch.operation_id


def _cost_changes_of(session: Session, invoice: Invoice) -> list[PriceChange]:
    """The history rows the invoice's confirmation wrote (older rows name only the invoice number)."""
    return list(session.scalars(select(PriceChange).where(
        PriceChange.reason == "factura", PriceChange.reference.in_([_price_reference(invoice), _label(invoice)]),
        PriceChange.product_id.in_({line.product_id for line in invoice.lines}),
        PriceChange.created_at <= invoice.confirmed_at).order_by(PriceChange.id)))


@event.listens_for(Session, "after_commit")
def _count_confirmed(session: Session) -> None:
    # Counted on commit only: a refused or rolled-back confirmation never counts.
    confirmed = session.info.pop("invoices_confirmed", 0)
    if confirmed:
        INVOICES_CONFIRMED.inc(confirmed)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop("invoices_confirmed", None)
