"""Stock use cases: movements, batches, stocktake, transfers, POS sales, the movements log.

Each takes the caller's session (one unit of work) and returns API shapes.
"""

from __future__ import annotations

from dataclasses import replace

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, lazyload

from minimarket.ar.dates import STORE_TZ
from minimarket.accounts.audit import Context, record_audit
from minimarket.ar.money import to_money, to_qty
from minimarket.catalog.models import Product
from minimarket.catalog import service as catalog_service
from minimarket.catalog.schemas import ProductCreate, ProductUpdate
from minimarket.catalog.service import find_product
from minimarket.config import Settings
from minimarket.errors import Conflict, InvalidInput, NotFound
from minimarket.stock.ledger import (
    Leg,
    current_balance,
    ensure_balance_row,
    new_operation_id,
    note_sale,
    post_legs,
)
from minimarket.stock.locations import active_location_id, location_key, resolve_location
from minimarket.stock.totals import open_totals, refresh_low
from minimarket.stock.models import Balance, Location, Movement
from minimarket.stock.policy import StockPolicy, load_stock_policy, negative_stock_setting, policy_from
from minimarket.stock.sale_prices import Discount, audit_discounts, check_discounts
from minimarket.stock.rules import check_unit_quantity, signed_quantity
from minimarket.stock.schemas import (
    BatchIn,
    BatchLine,
    BatchOut,
    CountResult,
    MovementOut,
    MovementPage,
    SaleIn,
    SaleOut,
    StocktakeIn,
    StocktakeOut,
    TransferIn,
)



# A till that was offline sends its queue later; a date older than this is a wrong clock.
MAX_SALE_DELAY = timedelta(days=90)


@cache
def _start_statement():  # noqa: ANN202
    """Built once (each movement sends only its parameters): the products named in `skus`, the stored
    negative-stock setting and the id of the active location `location_code`. Without the product's category
    and supplier (joined by default; a movement shows neither, and they load if something asks)."""
    return (select(Product, negative_stock_setting(), active_location_id())
            .where(Product.sku.in_(bindparam("skus", expanding=True)))
            .options(lazyload(Product.category), lazyload(Product.supplier)))


def sku_key(ref: str) -> str | None:
    """The SKU a reference is looked up as in `_start_statement` (None: not ASCII, so only `find_product`)."""
    ref = ref.strip()
    return ref.upper() if ref.isascii() else None


def start_parameters(skus: list[str], location: str) -> dict:
    """`_start_statement`'s parameters: the SKUs (`sku_key`) and the location's code as sent (or the default)."""
    return {"skus": skus, "location_code": location_key(location.strip())}


def start_statement():  # noqa: ANN201
    """`_start_statement` (the product, the stock policy as stored, the active location's id), for a caller that
    sends it itself (stock.movement_on_loop)."""
    return _start_statement()


class _Lookup:
    """Products and locations resolved once per operation."""

    def __init__(self, session: Session, default_location: str):
        self.session = session
        self.default_location = default_location
        self._products: dict[str, Product] = {}
        self._locations: dict[str, Location] = {}

    def product(self, ref: str, *, field: str) -> Product:
        ref_text = ref.strip()
        key = ref_text.upper() if ref_text.isascii() else ref_text  # never fold a look-alike (ß) into a SKU
        if key not in self._products:
            try:
                self._products[key] = find_product(self.session, ref)
            except NotFound as exc:
                raise NotFound(f"{field}: {exc.message}", details=exc.details) from exc
        return self._products[key]

    def prefetch(self, refs: Iterable[str]) -> None:
        """Load the products named by SKU in one query (a 100-line invoice: one SELECT, not 100)."""
        for chunk in self._chunks(refs):
            for product in self.session.scalars(select(Product).where(Product.sku.in_(chunk))):
                self._products[product.sku] = product

    def _chunks(self, refs: Iterable[str]) -> list[list[str]]:
        skus = {key for key in map(sku_key, refs) if key is not None} - self._products.keys()
        return [sorted(skus)[i:i + 500] for i in range(0, len(skus), 500)]

    def start(self, refs: Iterable[str], location: str | None, settings: Settings) -> StockPolicy:
        """`prefetch`, the stock policy and the location `location` (or the default) in one statement for a
        movement of up to 500 products (a later chunk, a barcode or a bad location: their own queries)."""
        chunks = self._chunks(refs)
        stored, found = None, False
        if chunks:
            params = start_parameters(chunks[0], location or self.default_location)
            key = params["location_code"]
            rows = self.session.execute(_start_statement(), params).all()
            for product, stored, location_id in rows:
                self._products[product.sku] = product
                found = True
            if found and location_id is not None:
                self._locations[key] = Location(id=location_id, code=key, active=True)
            self.prefetch(ref for chunk in chunks[1:] for ref in chunk)
        return policy_from(stored, settings) if found else load_stock_policy(self.session, settings)

    def location(self, code: str | None) -> Location:
        raw = (code or self.default_location).strip()
        key = location_key(raw)  # never fold a look-alike into a real code
        if key not in self._locations:
            self._locations[key] = resolve_location(self.session, raw)
        return self._locations[key]


def movement_out(movement: Movement, sku: str, location_code: str) -> MovementOut:
    return MovementOut(
        id=movement.id, sku=sku, location=location_code, type=movement.type, quantity=to_qty(movement.quantity),
        balance_after=to_qty(movement.balance_after),
        unit_cost=None if movement.unit_cost is None else to_money(movement.unit_cost),
        unit_price=None if movement.unit_price is None else to_money(movement.unit_price),
        reason=movement.reason, reference=movement.reference, actor=movement.actor,
        operation_id=movement.operation_id, created_at=movement.created_at,
    )


def _post_operation(session: Session, ctx: Context, legs: list[Leg], *, allow_negative: bool, idempotency_key: str | None,
          occurred_at: datetime | None = None) -> tuple[str, list[MovementOut]]:
    operation_id = new_operation_id()
    movements = post_legs(session, ctx, legs, allow_negative=allow_negative, operation_id=operation_id,
                          idempotency_key=idempotency_key, occurred_at=occurred_at)
    return operation_id, [movement_out(m, leg.product.sku, leg.location.code) for m, leg in zip(movements, legs, strict=True)]


def register_movements(session: Session, ctx: Context, *, batch: BatchIn, settings: Settings,
                       idempotency_key: str | None = None, refuse_negative: bool = False) -> BatchOut:
    """Record a batch of movements; all are applied or none.

    `refuse_negative` refuses any line that would leave stock below zero whatever the store's
    policy (taking back goods that came in: they must still be there).
    """
    return _record_lines(session, ctx, batch.lines, settings, refuse_negative=refuse_negative,
                         idempotency_key=idempotency_key, prefix=lambda i: f"lines[{i}].")


def register_movement(session: Session, ctx: Context, *, line: BatchLine, settings: Settings,
                      idempotency_key: str | None = None) -> MovementOut:
    """Record one movement of one product (the product named in the URL: errors name `sku`, `quantity`)."""
    result = _record_lines(session, ctx, [line], settings, idempotency_key=idempotency_key, prefix=lambda _i: "")
    return result.movements[0]


def _record_lines(session: Session, ctx: Context, lines: list[BatchLine], settings: Settings, *,
                  idempotency_key: str | None, prefix: Callable[[int], str], refuse_negative: bool = False) -> BatchOut:
    lookup = _Lookup(session, settings.default_location)
    # The products, the policy and the first line's location: one statement, not three.
    policy = lookup.start((line.sku for line in lines), lines[0].location if lines else None, settings)
    if refuse_negative:
        policy = replace(policy, allow_negative=False)
    legs = []
    for i, line in enumerate(lines):
        field = prefix(i)
        product = lookup.product(line.sku, field=f"{field}sku")
        legs.append(plan_line(line, product, field, lambda line=line: lookup.location(line.location)))
    operation_id, movements = _post_operation(session, ctx, legs, allow_negative=policy.allow_negative,
                                    idempotency_key=idempotency_key)
    record_audit(session, ctx, action=MOVEMENTS_ACTION, entity="operacion", entity_id=operation_id,
                 after=movements_audit(movements))
    return BatchOut(operation_id=operation_id, movements=movements)


MOVEMENTS_ACTION = "stock.movements"  # the audit action of a movement or a batch of them


def plan_line(line: BatchLine, product: Product, field: str, locate: Callable[[], Location]) -> Leg:
    """One line of a movement (or batch) as the leg the ledger applies: its sign, the product's unit, a sale of a
    deactivated product refused. `locate` finds the line's location, after those checks (they are reported
    first); `field` prefixes the fields errors name ("" or "lines[3].")."""
    delta = _signed(line.type, line.quantity, field)
    check_unit_quantity(product.unit, abs(delta), sku=product.sku)
    if line.type == "venta" and not product.active:
        raise Conflict(f"{field}sku: '{product.sku}' está desactivado y no se puede vender")
    return Leg(product=product, location=locate(), type=line.type, delta=delta,
               unit_cost=line.unit_cost, unit_price=product.price if line.type == "venta" else None,
               reason=line.reason, reference=line.reference, field=f"{field}quantity")


def movements_audit(movements: list[MovementOut]) -> dict:
    """The audit row's `after` of recorded movements."""
    return {"lines": [m.model_dump(mode="json", include={"sku", "location", "type", "quantity", "balance_after"})
                      for m in movements]}


def _signed(movement_type: str, quantity: Decimal, field: str) -> Decimal:
    try:
        return signed_quantity(movement_type, quantity)
    except InvalidInput as exc:
        exc.message = f"{field}{exc.message}"
        raise


def take_stocktake(session: Session, ctx: Context, *, count: StocktakeIn, settings: Settings,
                   idempotency_key: str | None = None) -> StocktakeOut:
    """Counted quantities become `ajuste` movements of the difference against the locked balance."""
    lookup = _Lookup(session, load_stock_policy(session, settings).default_location)
    location = lookup.location(count.location)
    products = [lookup.product(line.sku, field=f"lines[{i}].sku") for i, line in enumerate(count.lines)]
    first_line: dict[int, int] = {}
    for i, product in enumerate(products):
        if product.id in first_line:
            raise InvalidInput(f"lines[{i}].sku: '{count.lines[i].sku}' es el mismo producto que la línea "
                               f"{first_line[product.id]} ({product.sku}); contalo una sola vez")
        first_line[product.id] = i
    for product, line in zip(products, count.lines, strict=True):
        check_unit_quantity(product.unit, line.counted, sku=product.sku)
    # Lock every counted balance (in a fixed order) before reading it: sales that land
    # during the count wait, so the adjustment is computed against the true balance.
    previous: dict[int, Decimal] = {}
    for product in sorted(products, key=lambda p: p.id):
        ensure_balance_row(session, product.id, location.id)
        previous[product.id] = current_balance(session, product.id, location.id, lock=True)
    reason = count.reason or "Recuento de inventario"
    legs, results = [], []
    for i, (product, line) in enumerate(zip(products, count.lines, strict=True)):
        difference = line.counted - previous[product.id]
        results.append(CountResult(sku=product.sku, previous=previous[product.id], counted=to_qty(line.counted),
                                   difference=to_qty(difference), movement_id=None))
        if difference != 0:
            legs.append(Leg(product=product, location=location, type="ajuste", delta=difference, reason=reason,
                            reference="recuento", field=f"lines[{i}].counted"))
    operation_id, movements = _post_operation(session, ctx, legs, allow_negative=True, idempotency_key=idempotency_key)
    by_sku = {m.sku: m.id for m in movements}
    for result in results:
        result.movement_id = by_sku.get(result.sku)
    record_audit(session, ctx, action="stock.stocktake", entity="operacion", entity_id=operation_id,
                 after={"location": location.code, "lines": [r.model_dump(mode="json") for r in results]})
    return StocktakeOut(operation_id=operation_id, location=location.code, lines=results)


def transfer_stock(session: Session, ctx: Context, *, transfer: TransferIn, settings: Settings,
                   idempotency_key: str | None = None) -> BatchOut:
    """Move goods between locations: an outgoing and an incoming row per line, one transaction."""
    policy = load_stock_policy(session, settings)
    lookup = _Lookup(session, transfer.from_location)
    origin = lookup.location(transfer.from_location)
    destination = lookup.location(transfer.to_location)
    legs = []
    for i, line in enumerate(transfer.lines):
        product = lookup.product(line.sku, field=f"lines[{i}].sku")
        check_unit_quantity(product.unit, line.quantity, sku=product.sku)
        reason = transfer.reason or f"Transferencia {origin.code} → {destination.code}"
        legs.append(Leg(product=product, location=origin, type="transferencia", delta=-line.quantity, reason=reason,
                        reference=destination.code, field=f"lines[{i}].quantity"))
        legs.append(Leg(product=product, location=destination, type="transferencia", delta=line.quantity,
                        reason=reason, reference=origin.code, field=f"lines[{i}].quantity"))
    operation_id, movements = _post_operation(session, ctx, legs, allow_negative=policy.allow_negative,
                                    idempotency_key=idempotency_key)
    record_audit(session, ctx, action="stock.transfer", entity="operacion", entity_id=operation_id,
                 after={"from": origin.code, "to": destination.code,
                        "lines": [line.model_dump(mode="json") for line in transfer.lines]})
    return BatchOut(operation_id=operation_id, movements=movements)


def record_sale(session: Session, ctx: Context, *, sale: SaleIn, settings: Settings) -> SaleOut:
    """A POS ticket: one `venta` row per line, at the price charged."""
    if sale.sold_at is not None:
        now = datetime.now(STORE_TZ)
        if sale.sold_at > now + timedelta(minutes=5):
            raise InvalidInput("sold_at: la hora de venta está en el futuro; revisá el reloj de la caja")
        if sale.sold_at < now - MAX_SALE_DELAY:
            raise InvalidInput(f"sold_at: la venta tiene más de {MAX_SALE_DELAY.days} días; revisá el reloj de la caja "
                               "(las ventas viejas se cargan como movimientos con motivo)")
    policy = load_stock_policy(session, settings)
    lookup = _Lookup(session, policy.default_location)
    location = lookup.location(sale.location)
    legs, discounts = [], []
    total = Decimal("0")
    for i, line in enumerate(sale.lines):
        product = lookup.product(line.sku, field=f"lines[{i}].sku")
        if not product.active:
            raise Conflict(f"lines[{i}].sku: '{product.sku}' está desactivado y no se puede vender")
        check_unit_quantity(product.unit, line.quantity, sku=product.sku)
        price = line.unit_price if line.unit_price is not None else product.price
        if price < product.price:
            discounts.append(Discount(line=i, product=product, shelf_price=to_money(product.price),
                                      unit_price=to_money(price), quantity=to_qty(line.quantity)))
        total += to_money(price * line.quantity)
        legs.append(Leg(product=product, location=location, type="venta", delta=-line.quantity, unit_price=price,
                        reference=f"ticket:{sale.ticket_id}"[:100], field=f"lines[{i}].quantity"))
    check_discounts(session, ctx, discounts)
    operation_id, movements = _post_operation(session, ctx, legs, allow_negative=policy.allow_negative,
                                    idempotency_key=f"ticket:{sale.ticket_id}", occurred_at=sale.sold_at)
    note_sale(session, total)
    audit_discounts(session, ctx, ticket_id=sale.ticket_id, discounts=discounts)
    record_audit(session, ctx, action="stock.sale", entity="venta", entity_id=sale.ticket_id,
                 after={"location": location.code, "total": str(total), "lines": len(legs)})
    return SaleOut(ticket_id=sale.ticket_id, operation_id=operation_id, total=total, movements=movements)


def parse_period(value: str | None, *, field: str, end: bool) -> datetime | None:
    """`2026-11-27` (a store-local day; as an end it includes the whole day) or an ISO date-time."""
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            moment = datetime.combine(day + timedelta(days=1) if end else day, time(0), STORE_TZ)
        else:
            moment = datetime.fromisoformat(value)
            moment = moment if moment.tzinfo else moment.replace(tzinfo=STORE_TZ)
        moment.astimezone(UTC)  # compared in UTC: the first and last days of the calendar overflow
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(f"{field}: fecha inválida o fuera de rango '{value}'; usá AAAA-MM-DD o fecha y hora "
                           "ISO 8601") from exc
    return moment


def list_movements(session: Session, *, sku: str | None = None, movement_type: str | None = None,
                   date_from: str | None = None, date_to: str | None = None, actor: str | None = None,
                   location: str | None = None, reference: str | None = None, limit: int = 100,
                   cursor: str | None = None, product_id: int | None = None) -> MovementPage:
    """The ledger, newest first, keyset-paginated by id. `product_id`: one product already looked up (as `sku`
    without reading the product again)."""
    stmt = (select(Movement, Product.sku, Location.code)
            .join(Product, Product.id == Movement.product_id)
            .join(Location, Location.id == Movement.location_id))
    if sku:
        stmt = stmt.where(Movement.product_id == find_product(session, sku).id)
    if product_id is not None:
        stmt = stmt.where(Movement.product_id == product_id)
    if movement_type:
        stmt = stmt.where(Movement.type == movement_type)
    start, finish = parse_period(date_from, field="from", end=False), parse_period(date_to, field="to", end=True)
    if start:
        stmt = stmt.where(Movement.created_at >= start)
    if finish:
        stmt = stmt.where(Movement.created_at < finish)
    if actor:
        stmt = stmt.where(Movement.actor == actor)
    if location:
        stmt = stmt.where(Movement.location_id == resolve_location(session, location).id)
    if reference:
        stmt = stmt.where(Movement.reference == reference)
    if cursor:
        if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 18):  # ids fit in BIGINT
            raise InvalidInput("cursor: valor inválido; usá el next_cursor de la respuesta anterior")
        stmt = stmt.where(Movement.id < int(cursor))
    rows = session.execute(stmt.order_by(Movement.id.desc()).limit(limit + 1)).all()
    items = [movement_out(m, s, c) for m, s, c in rows[:limit]]
    return MovementPage(items=items, next_cursor=str(items[-1].id) if len(rows) > limit else None)


def register_product(session: Session, ctx: Context, *, data: ProductCreate, settings: Settings) -> Product:
    """Add a product to the catalog; its opening stock is an `entrada` in the same transaction."""
    product = catalog_service.create_product(session, ctx, data=data)
    open_totals(session, product.id)
    if data.initial_stock:
        policy = load_stock_policy(session, settings)
        check_unit_quantity(product.unit, data.initial_stock, sku=product.sku)
        location = resolve_location(session, data.location or policy.default_location)
        post_legs(session, ctx, [Leg(product=product, location=location, type="entrada", delta=data.initial_stock,
                                     reason="Stock inicial", reference="alta", field="initial_stock")],
                  allow_negative=policy.allow_negative, operation_id=new_operation_id())
    return product


def change_product(session: Session, ctx: Context, *, sku: str, changes: ProductUpdate) -> Product:
    """Edit a product; a product with fractional stock cannot become sold by the unit."""
    product = catalog_service.update_product(session, ctx, sku=sku, changes=changes)
    if "min_stock" in changes.model_fields_set:
        session.flush()
        refresh_low(session, product.id)  # after the product's UPDATE: see stock.totals on the lock order
    if "unit" in changes.model_fields_set and product.unit == "u":
        quantities = session.scalars(select(Balance.quantity).where(Balance.product_id == product.id)).all()
        if any(Decimal(q) != Decimal(q).to_integral_value() for q in quantities):
            raise InvalidInput(f"unit: '{product.sku}' tiene stock fraccionado; no puede pasar a unidades enteras")
    return product
