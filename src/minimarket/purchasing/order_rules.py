"""Purchase order rules, pure (no database): which state may follow which, units from packs, what a
delivery may bring. Errors are ValueError with the Spanish message; the service adds the field."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

STATE_LABELS = {"borrador": "Borrador", "enviado": "Enviado", "recibido_parcial": "Recibido en parte",
                "recibido": "Recibido", "cancelado": "Cancelado"}
# What may follow each state. Receiving again from recibido_parcial is the next delivery.
TRANSITIONS: dict[str, frozenset[str]] = {
    "borrador": frozenset({"enviado", "cancelado"}),
    "enviado": frozenset({"recibido_parcial", "recibido", "cancelado"}),
    "recibido_parcial": frozenset({"recibido_parcial", "recibido", "cancelado"}),
    "recibido": frozenset(),
    "cancelado": frozenset(),
}
# Orders whose unreceived units count as stock on order (a draft is not ordered yet).
OPEN_STATES = ("enviado", "recibido_parcial")
ACTIONS = {"enviado": "enviar", "recibido_parcial": "recibir", "recibido": "recibir", "cancelado": "cancelar"}


def can_move(current: str, target: str) -> bool:
    return target in TRANSITIONS[current]


def transition_problem(current: str, target: str) -> str | None:
    """Why `current` → `target` is not allowed, in Spanish; None when it is."""
    if can_move(current, target):
        return None
    action = ACTIONS.get(target, target)
    if current == "borrador" and target in ("recibido", "recibido_parcial"):
        return "el pedido todavía es un borrador: envialo (POST …/send) antes de recibir mercadería"
    if current in ("recibido", "cancelado"):
        return f"el pedido está {STATE_LABELS[current].lower()}; ya no se puede {action}"
    return f"un pedido {STATE_LABELS[current].lower()} no se puede {action}"


def units_ordered(*, quantity: Decimal | None, packs: int | None, pack_size: int | None) -> Decimal:
    """Units for a line given in units or in packs; units must fill whole packs when the pack size is known
    (`pack_size` 1 or empty: loose units)."""
    if quantity is None and packs is None:
        raise ValueError("quantity: indicá la cantidad en unidades (quantity) o en bultos (packs)")
    if packs is not None:
        if not pack_size:
            raise ValueError("pack_size: para pedir por bultos indicá cuántas unidades trae cada bulto")
        units = Decimal(packs * pack_size)
        if quantity is not None and quantity != units:
            raise ValueError(f"quantity: {packs} bultos de {pack_size} son {units} unidades, no {_n(quantity)}; "
                             "mandá sólo una de las dos")
        return units
    assert quantity is not None
    if quantity <= 0:
        raise ValueError("quantity: la cantidad debe ser mayor que cero")
    if pack_size and pack_size > 1 and quantity % pack_size != 0:
        below = quantity // pack_size * pack_size
        above = below + pack_size
        options = f"{_n(below)} o {_n(above)}" if below > 0 else _n(above)
        raise ValueError(f"quantity: se compra en bultos de {pack_size}; pedí {options} unidades "
                         "(o mandá pack_size: 1 si el proveedor vende sueltas)")
    return quantity


def packs_of(quantity: Decimal, pack_size: int | None) -> Decimal | None:
    """Whole packs a quantity makes (None without a pack size)."""
    if not pack_size or pack_size <= 1:
        return None
    return quantity / pack_size


@dataclass(frozen=True)
class LineState:
    ordered: Decimal
    received: Decimal

    @property
    def pending(self) -> Decimal:
        return max(self.ordered - self.received, Decimal(0))


def delivery_problem(line: LineState, arriving: Decimal, *, allow_over: bool) -> str | None:
    """Why a delivery of `arriving` units for this line is refused (None: it may come in)."""
    if arriving <= 0:
        return "quantity: la cantidad recibida debe ser mayor que cero"
    if arriving > line.pending and not allow_over:
        return (f"quantity: se pidieron {_n(line.ordered)}, ya se recibieron {_n(line.received)}: quedan "
                f"{_n(line.pending)}, llegaron {_n(arriving)}. Para recibir de más mandá allow_over: true")
    return None


def state_after_delivery(lines: list[LineState], *, close: bool) -> str:
    """recibido when every line is complete (or the store closes the order), else recibido_parcial."""
    if close or all(line.pending == 0 for line in lines):
        return "recibido"
    return "recibido_parcial"


def _n(value: Decimal) -> str:
    """A quantity as written in the store: 24, 2,5 (no trailing zeros)."""
    return format(value.normalize(), "f").replace(".", ",")
