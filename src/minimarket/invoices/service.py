"""Supplier invoice drafts: create (lines matched to products), read, list, correct and match lines."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Select, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from minimarket.accounts.audit import Context, record_audit
from minimarket.ar.afip_qr import QrError, decode_afip_qr
from minimarket.ar.cuit import format_cuit
from minimarket.ar.dates import STORE_TZ
from minimarket.ar.invoices import LineAmount, Totals, format_invoice_number, line_net, totals_problems
from minimarket.catalog.models import Product
from minimarket.catalog.service import find_product
from minimarket.errors import Conflict, DomainError, InvalidInput, NotFound
from minimarket.invoices.models import Invoice, InvoiceLine
from minimarket.invoices.schemas import (InvoiceIn, InvoiceOut, InvoicePage, InvoicePatch, LineIn, LineOut, QrOut,
                                        SupplierRef)
from minimarket.stock.models import Location
from minimarket.suppliers.models import Supplier, SupplierCode
from minimarket.suppliers.service import resolve_supplier

# header column attribute per IVA rate
NET_FIELDS = {"0": "net_0", "10.5": "net_105", "21": "net_21", "27": "net_27"}
VAT_FIELDS = {"10.5": "vat_105", "21": "vat_21", "27": "vat_27"}


def display_number(invoice: Invoice) -> str:
    return format_invoice_number(invoice.point_of_sale, invoice.number)


def find_invoice(session: Session, invoice_id: int, *, lock: bool = False) -> Invoice:
    stmt = select(Invoice).where(Invoice.id == invoice_id)
    if lock:
        stmt = stmt.with_for_update(of=Invoice).execution_options(populate_existing=True)
    invoice = session.scalars(stmt).first()
    if invoice is None:
        raise NotFound(f"La factura {invoice_id} no existe", details={"id": invoice_id})
    return invoice


def mark_goods_received(invoice: Invoice, reference: str | None) -> None:
    """Record on a draft that another document (`pedido:12`) brought its goods in, or clear it (None).

    For the areas above (purchasing) that link their documents to an invoice: confirming a marked invoice
    records its costs only. A confirmed or annulled invoice keeps what it has."""
    if invoice.state == "borrador":
        invoice.goods_received_by = reference


def invoice_out(session: Session, invoice: Invoice) -> InvoiceOut:
    supplier = session.get(Supplier, invoice.supplier_id)
    # The lines' SKUs through the lines themselves: one cached statement (an IN of a hundred ids is compiled
    # again on every call, ~0.6 ms of CPU for a 100-line invoice).
    skus = dict(session.execute(select(Product.id, Product.sku).join(InvoiceLine, InvoiceLine.product_id == Product.id)
                                .where(InvoiceLine.invoice_id == invoice.id)).all()) \
        if any(line.product_id is not None for line in invoice.lines) else {}
    location = session.get(Location, invoice.location_id) if invoice.location_id else None
    return InvoiceOut(
        id=invoice.id, supplier=SupplierRef(id=supplier.id, name=supplier.name), type=invoice.type,
        point_of_sale=invoice.point_of_sale, number=invoice.number, number_display=display_number(invoice),
        date=invoice.issued_on, issuer_cuit=format_cuit(invoice.issuer_cuit),
        net={rate: getattr(invoice, f) for rate, f in NET_FIELDS.items() if getattr(invoice, f)},
        vat={rate: getattr(invoice, f) for rate, f in VAT_FIELDS.items() if getattr(invoice, f)},
        perception_iibb=invoice.perception_iibb, perception_vat=invoice.perception_vat, total=invoice.total,
        cae=invoice.cae, cae_due=invoice.cae_due, state=invoice.state, location=location.code if location else None,
        goods_received_by=invoice.goods_received_by,
        notes=invoice.notes, unmatched_lines=sum(1 for line in invoice.lines if line.product_id is None),
        lines=[LineOut(line=line.line_no, barcode=line.barcode, sku=line.sku, supplier_code=line.supplier_code,
                       description=line.description, product=skus.get(line.product_id), quantity=line.quantity,
                       unit_cost=line.unit_cost, vat_rate=line.vat_rate, discount_pct=line.discount_pct,
                       net=line.net) for line in invoice.lines],
        created_by=invoice.created_by, created_at=invoice.created_at, confirmed_by=invoice.confirmed_by,
        confirmed_at=invoice.confirmed_at, annulled_by=invoice.annulled_by, annulled_at=invoice.annulled_at,
        annul_reason=invoice.annul_reason)


def match_product(session: Session, supplier_id: int, line: LineIn) -> Product | None:
    """The product of a line: by barcode, then SKU, then the supplier's own code as remembered."""
    if line.barcode:
        found = session.scalars(select(Product).where(Product.barcode == line.barcode)).first()
        if found is not None:
            return found
    if line.sku:
        found = session.scalars(select(Product).where(Product.sku == line.sku.upper())).first()
        if found is not None:
            return found
    if line.supplier_code:
        product_id = session.scalar(select(SupplierCode.product_id).where(
            SupplierCode.supplier_id == supplier_id, SupplierCode.code == line.supplier_code))
        if product_id is not None:
            return session.get(Product, product_id)
    return None


def _supplier_of(session: Session, data: InvoiceIn) -> tuple[Supplier, str]:
    if data.supplier:
        supplier = resolve_supplier(session, data.supplier)
    elif data.issuer_cuit:
        supplier = resolve_supplier(session, data.issuer_cuit, field="issuer_cuit")
    else:
        raise InvalidInput("supplier: indicá el proveedor (id, CUIT o nombre) o el issuer_cuit de la factura")
    cuit = data.issuer_cuit or supplier.cuit
    if cuit is None:
        raise InvalidInput(f"issuer_cuit: el proveedor '{supplier.name}' no tiene CUIT cargado; indicá el CUIT del "
                           "emisor o completá el proveedor")
    if supplier.cuit and cuit != supplier.cuit:
        raise InvalidInput(f"issuer_cuit: {format_cuit(cuit)} no es el CUIT de '{supplier.name}' "
                           f"({format_cuit(supplier.cuit)})")
    return supplier, cuit


MONEY_MAX = Decimal("999999999999.99")  # NUMERIC(14,2)


def check_totals(data: InvoiceIn) -> None:
    """422 `totales_no_cuadran` naming each field that does not add up and by how much."""
    for i, line in enumerate(data.lines):  # checked before anything is written: each line's net must fit its column
        net = line_net(line.quantity, line.unit_cost, line.discount_pct)
        if net > MONEY_MAX:
            raise InvalidInput(f"lines[{i}].quantity: cantidad × costo da {net}, más que el máximo de {MONEY_MAX}",
                               details=[{"field": f"lines[{i}].quantity", "problem": "importe demasiado grande"}])
    totals = Totals(invoice_type=data.type, net={Decimal(k): v for k, v in data.net.items()},
                    vat={Decimal(k): v for k, v in data.vat.items()}, perception_iibb=data.perception_iibb,
                    perception_vat=data.perception_vat, total=data.total)
    lines = [LineAmount(line.quantity, line.unit_cost, line.vat_rate, line.discount_pct) for line in data.lines]
    problems = totals_problems(totals, lines)
    if problems:
        details = [{"field": p.split(":", 1)[0], "problem": p.split(": ", 1)[1]} for p in problems]
        raise InvalidInput("Los importes de la factura no cuadran — " + "; ".join(problems), code="totales_no_cuadran",
                           details=details)


def _existing(session: Session, cuit: str, data: InvoiceIn) -> int | None:
    return session.scalar(select(Invoice.id).where(Invoice.issuer_cuit == cuit, Invoice.type == data.type,
                                                   Invoice.point_of_sale == data.point_of_sale,
                                                   Invoice.number == data.number))


def _duplicate(existing_id: int, data: InvoiceIn, cuit: str) -> Conflict:
    shown = format_invoice_number(data.point_of_sale, data.number)
    return Conflict(f"La factura {data.type} {shown} de {format_cuit(cuit)} ya está cargada (id {existing_id})",
                    code="factura_duplicada", details={"existing_id": existing_id})


def _insert_once(session: Session, values: dict) -> int | None:
    """Insert the header unless its natural key exists: one atomic statement, so of two concurrent
    posts of the same invoice exactly one gets an id (no failed flush to recover from)."""
    table = Invoice.__table__
    row = {Invoice.__mapper__.attrs[k].columns[0].name: v for k, v in values.items()}
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = insert(table).values(**row).on_conflict_do_nothing(
        index_elements=["cuit_emisor", "tipo", "punto_venta", "numero"]).returning(table.c.id)
    return session.execute(stmt).scalar()


def _check_dates(data: InvoiceIn) -> None:
    today = datetime.now(STORE_TZ).date()
    if data.date > today + timedelta(days=1):
        raise InvalidInput(f"date: la fecha {data.date.isoformat()} está en el futuro; revisá la factura")
    if data.date < date(2000, 1, 1):
        raise InvalidInput("date: la fecha es anterior al año 2000; revisá la factura")
    if data.cae_due is not None and data.cae_due < data.date:
        raise InvalidInput("cae_due: el vencimiento del CAE no puede ser anterior a la fecha de la factura")


def create_invoice(session: Session, ctx: Context, *, data: InvoiceIn) -> Invoice:
    """Load a draft (borrador): header checked to the cent, lines matched to products where possible."""
    supplier, cuit = _supplier_of(session, data)
    _check_dates(data)
    check_totals(data)
    if (existing := _existing(session, cuit, data)) is not None:
        raise _duplicate(existing, data, cuit)
    values = {"supplier_id": supplier.id, "type": data.type, "point_of_sale": data.point_of_sale,
              "number": data.number, "issued_on": data.date, "issuer_cuit": cuit, "perception_iibb": data.perception_iibb,
              "perception_vat": data.perception_vat, "total": data.total, "cae": data.cae, "cae_due": data.cae_due,
              "notes": data.notes, "state": "borrador", "created_by": ctx.actor}
    values |= {NET_FIELDS[rate]: amount for rate, amount in data.net.items()}
    values |= {VAT_FIELDS[rate]: amount for rate, amount in data.vat.items()}
    invoice_id = _insert_once(session, values)
    if invoice_id is None:  # a concurrent twin loaded the same invoice first (it waited for its commit)
        raise _duplicate(_existing(session, cuit, data), data, cuit)
    invoice = session.get(Invoice, invoice_id)
    for n, line in enumerate(data.lines, 1):
        product = match_product(session, supplier.id, line)
        invoice.lines.append(InvoiceLine(
            line_no=n, barcode=line.barcode, sku=line.sku, supplier_code=line.supplier_code,
            description=line.description, product_id=product.id if product else None, quantity=line.quantity,
            unit_cost=line.unit_cost, vat_rate=line.vat_rate, discount_pct=line.discount_pct,
            net=line_net(line.quantity, line.unit_cost, line.discount_pct)))
    session.flush()
    record_audit(session, ctx, action="invoice.create", entity="factura", entity_id=str(invoice.id),
                 after={"supplier": supplier.name, "type": data.type, "number": display_number(invoice),
                        "total": data.total, "lines": len(data.lines),
                        "unmatched": sum(1 for line in invoice.lines if line.product_id is None)})
    return invoice


def _editable(invoice: Invoice) -> None:
    if invoice.state != "borrador":
        raise Conflict(f"La factura {display_number(invoice)} está {invoice.state}: sólo un borrador se corrige",
                       code="factura_no_editable")


def update_invoice(session: Session, ctx: Context, *, invoice_id: int, changes: InvoicePatch) -> Invoice:
    """Correct a draft's date, CAE or notes and match lines to products (remembering supplier codes)."""
    invoice = find_invoice(session, invoice_id, lock=True)
    _editable(invoice)
    before = {"date": invoice.issued_on, "cae": invoice.cae, "cae_due": invoice.cae_due, "notes": invoice.notes}
    sent = changes.model_fields_set
    if "date" in sent:
        if changes.date is None:
            raise InvalidInput("date: la fecha no puede quedar vacía")
        invoice.issued_on = changes.date
    for field, attr in (("cae", "cae"), ("cae_due", "cae_due"), ("notes", "notes")):
        if field in sent:
            setattr(invoice, attr, getattr(changes, field))
    matched = [_match_line(session, invoice, i, m) for i, m in enumerate(changes.matches)]
    session.flush()
    record_audit(session, ctx, action="invoice.update", entity="factura", entity_id=str(invoice.id), before=before,
                 after={"date": invoice.issued_on, "cae": invoice.cae, "cae_due": invoice.cae_due,
                        "notes": invoice.notes, "matches": matched})
    return invoice


def _match_line(session: Session, invoice: Invoice, i: int, match) -> dict:  # noqa: ANN001
    line = next((line for line in invoice.lines if line.line_no == match.line), None)
    if line is None:
        raise InvalidInput(f"matches[{i}].line: la factura no tiene línea {match.line} (tiene {len(invoice.lines)})")
    try:
        product = find_product(session, match.product)
    except NotFound as exc:
        raise InvalidInput(f"matches[{i}].product: {exc.message}") from exc
    line.product_id = product.id
    if line.supplier_code:
        remember_code(session, invoice.supplier_id, line.supplier_code, product, pack_size=match.pack_size)
        for other in invoice.lines:  # the same code on other lines of this invoice is the same product
            if other.supplier_code == line.supplier_code and other.product_id is None:
                other.product_id = product.id
    return {"line": line.line_no, "product": product.sku, "supplier_code": line.supplier_code}


def remember_code(session: Session, supplier_id: int, code: str, product: Product, *,
                  pack_size: int | None = None) -> None:
    """The supplier's code now means this product on its next invoices."""
    row = session.scalars(select(SupplierCode).where(SupplierCode.supplier_id == supplier_id,
                                                     SupplierCode.code == code)).first()
    if row is None:
        session.add(SupplierCode(supplier_id=supplier_id, code=code, product_id=product.id, pack_size=pack_size))
    else:
        row.product_id = product.id
        if pack_size is not None:
            row.pack_size = pack_size


def list_invoices(session: Session, *, supplier: str | None = None, state: str | None = None,
                  date_from: date | None = None, date_to: date | None = None, limit: int = 50,
                  cursor: int | None = None) -> InvoicePage:
    """Newest first (by id), filtered by supplier (id, CUIT or name), state and invoice date (inclusive)."""
    stmt = _filtered(session, select(Invoice), supplier=supplier, state=state, date_from=date_from, date_to=date_to,
                     cursor=cursor)
    rows = session.scalars(stmt.order_by(Invoice.id.desc()).limit(limit + 1)).all()
    items = [invoice_out(session, inv) for inv in rows[:limit]]
    return InvoicePage(items=items, next_cursor=str(items[-1].id) if len(rows) > limit else None)


def _filtered(session: Session, stmt: Select, *, supplier: str | None, state: str | None, date_from: date | None,
              date_to: date | None, cursor: int | None) -> Select:
    if supplier:
        stmt = stmt.where(Invoice.supplier_id == resolve_supplier(session, supplier, active_only=False).id)
    if state:
        stmt = stmt.where(Invoice.state == state)
    if date_from:
        stmt = stmt.where(Invoice.issued_on >= date_from)
    if date_to:
        stmt = stmt.where(Invoice.issued_on <= date_to)
    if cursor is not None:
        stmt = stmt.where(Invoice.id < cursor)
    return stmt


@dataclass(frozen=True)
class InvoiceRow:
    """What a list of invoices shows of each (the dashboard's Facturas), without its lines."""

    id: int
    supplier: SupplierRef
    type: str
    number_display: str
    date: date
    total: Decimal
    state: str
    unmatched_lines: int


def list_invoice_rows(session: Session, *, supplier: str | None = None, state: str | None = None,
                      limit: int = 50, cursor: int | None = None) -> tuple[list[InvoiceRow], str | None]:
    """list_invoices' page (the same filters and order) as InvoiceRow, in one statement: the lines are only
    counted (those without a product), not read."""
    unmatched = (select(func.count()).where(InvoiceLine.invoice_id == Invoice.id, InvoiceLine.product_id.is_(None))
                 .correlate(Invoice).scalar_subquery())
    stmt = _filtered(session, select(Invoice.id, Invoice.supplier_id, Supplier.name, Invoice.type,
                                     Invoice.point_of_sale, Invoice.number, Invoice.issued_on, Invoice.total,
                                     Invoice.state, unmatched.label("unmatched"))
                     .join(Supplier, Supplier.id == Invoice.supplier_id),
                     supplier=supplier, state=state, date_from=None, date_to=None, cursor=cursor)
    rows = session.execute(stmt.order_by(Invoice.id.desc()).limit(limit + 1)).all()
    items = [InvoiceRow(id=r.id, supplier=SupplierRef(id=r.supplier_id, name=r.name), type=r.type,
                        number_display=format_invoice_number(r.point_of_sale, r.number), date=r.issued_on,
                        total=r.total, state=r.state, unmatched_lines=r.unmatched) for r in rows[:limit]]
    return items, (str(items[-1].id) if len(rows) > limit else None)



def create_imported(session: Session, ctx: Context, *, parsed: list) -> list[Invoice]:  # list[ParsedInvoice]
    """Every draft of an imported file in the caller's unit of work (all or nothing); an error names its row."""
    created = []
    for item in parsed:
        try:
            created.append(create_invoice(session, ctx, data=item.payload))
        except DomainError as exc:
            exc.message = (f"fila {item.first_row} (factura {item.payload.type} "
                           f"{format_invoice_number(item.payload.point_of_sale, item.payload.number)}): {exc.message}")
            raise
    return created


def read_afip_qr(session: Session, url: str) -> QrOut:
    """The header an AFIP invoice QR carries, its supplier if on file and the invoice's id if already loaded."""
    try:
        qr = decode_afip_qr(url)
    except QrError as exc:
        raise InvalidInput(str(exc), code="qr_invalido") from exc
    supplier = session.scalars(select(Supplier).where(Supplier.cuit == qr.issuer_cuit)).first()
    existing = session.scalar(select(Invoice.id).where(
        Invoice.issuer_cuit == qr.issuer_cuit, Invoice.type == qr.type, Invoice.point_of_sale == qr.point_of_sale,
        Invoice.number == qr.number))
    return QrOut(type=qr.type, point_of_sale=qr.point_of_sale, number=qr.number,
                 number_display=format_invoice_number(qr.point_of_sale, qr.number), date=qr.issued_on,
                 issuer_cuit=qr.issuer_cuit, total=qr.total, currency=qr.currency, exchange_rate=qr.exchange_rate,
                 cae=qr.authorization, supplier=SupplierRef(id=supplier.id, name=supplier.name) if supplier else None,
                 existing_id=existing)
