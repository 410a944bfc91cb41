"""Sales below the shelf price: how far below any seller may go, who may go further, and the audit of each.

The store setting `ventas.descuento_maximo` (percent, default 0) is how far below the shelf
price a line may be sold by any role that records sales; beyond it only `encargado` and
`admin` may sell (a `deposito` key that charged $ 0,00 for a $ 1.550 item was the reason).
Every line sold below the shelf price, allowed or not by the setting, leaves an audit row
with who sold it, the product, the shelf price and the price charged.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_UP, Decimal

from sqlalchemy.orm import Session

from minimarket import store_settings
from minimarket.accounts.audit import Context, record_audit
from minimarket.accounts.permissions import SELL_BELOW_LIMIT
from minimarket.ar.money import format_ars
from minimarket.catalog.models import Product
from minimarket.errors import Forbidden, InvalidInput
from minimarket.plain_input import plain_decimal

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Discount:
    line: int
    product: Product
    shelf_price: Decimal
    unit_price: Decimal
    quantity: Decimal

    @property
    def percent(self) -> Decimal:
        # Rounded up: a line just past the limit never reads as exactly the limit.
        return ((self.shelf_price - self.unit_price) * HUNDRED / self.shelf_price).quantize(Decimal("0.01"), ROUND_UP)


def parse_percent(text: str) -> Decimal:
    """A discount limit as the operator writes it ("5", "12.5"): 0 to 100, two decimals at most."""
    try:
        value = plain_decimal(text.strip())
    except ValueError as exc:
        raise InvalidInput(f"descuento máximo: '{text}' no es un número; usá un porcentaje de 0 a 100 (ej. 5)") from exc
    if not 0 <= value <= HUNDRED or value != value.quantize(Decimal("0.01")):
        raise InvalidInput(f"descuento máximo: {text} debe ser un porcentaje de 0 a 100 con hasta 2 decimales")
    return value


def max_discount(session: Session) -> Decimal:
    """The store's limit in percent; unset (or unreadable) is 0: no discount without an encargado."""
    text = store_settings.read_value(session, store_settings.SALE_MAX_DISCOUNT)
    try:
        return Decimal(0) if text is None else parse_percent(text)
    except InvalidInput:
        return Decimal(0)


def set_max_discount(session: Session, percent: Decimal) -> None:
    store_settings.write_value(session, store_settings.SALE_MAX_DISCOUNT, format(percent, "f"))


def _pct(value: Decimal) -> str:
    return format(value.normalize(), "f").replace(".", ",") + " %"


def check_discounts(session: Session, ctx: Context, discounts: list[Discount]) -> None:
    """Refuse (403) the first line below the store's limit unless the caller's role may sell there."""
    if not discounts or ctx.role in SELL_BELOW_LIMIT:
        return
    limit = max_discount(session)
    for d in discounts:
        if (d.shelf_price - d.unit_price) * HUNDRED > limit * d.shelf_price:
            field = f"lines[{d.line}].unit_price"
            raise Forbidden(
                f"{field}: '{d.product.sku}' a {format_ars(d.unit_price)} queda "
                f"{format(d.percent, '.2f').replace('.', ',')} % por debajo del "
                f"precio de góndola ({format_ars(d.shelf_price)}); la tienda permite hasta {_pct(limit)} sin "
                f"autorización: la venta la tiene que registrar un encargado o admin",
                code="descuento_no_autorizado",
                details={"field": field, "sku": d.product.sku, "shelf_price": str(d.shelf_price),
                         "unit_price": str(d.unit_price), "discount_percent": str(d.percent),
                         "max_discount_percent": str(limit), "roles": sorted(SELL_BELOW_LIMIT)})


def audit_discounts(session: Session, ctx: Context, *, ticket_id: str, discounts: list[Discount]) -> None:
    """One audit row per line sold below the shelf price: who, which product, shelf price, price charged."""
    for d in discounts:
        record_audit(session, ctx, action="stock.sale.discount", entity="venta", entity_id=ticket_id,
                     before={"sku": d.product.sku, "shelf_price": d.shelf_price},
                     after={"sku": d.product.sku, "line": d.line, "shelf_price": d.shelf_price,
                            "unit_price": d.unit_price, "quantity": d.quantity, "discount_percent": d.percent,
                            "role": ctx.role})
