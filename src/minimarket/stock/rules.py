"""Ledger rules as pure functions: the movement types and their signs, units, the refusal message.

The no-negative rule itself is the conditional UPDATE in ledger.py (atomic in the database)."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from minimarket.errors import InsufficientStock, InvalidInput



class MovementType(StrEnum):
    """What a ledger row records (`movimientos_stock.tipo`): the one list of movement types."""

    ENTRADA = "entrada"
    VENTA = "venta"
    SALIDA = "salida"
    AJUSTE = "ajuste"
    MERMA = "merma"
    DEVOLUCION = "devolucion"
    TRANSFERENCIA = "transferencia"  # written as a pair by the transfer use case, never sent by a client


CLIENT_TYPES = tuple(t.value for t in MovementType if t is not MovementType.TRANSFERENCIA)
# Direction of each type when the client sends a positive quantity; `ajuste` carries its own sign.
SIGN = {MovementType.ENTRADA: 1, MovementType.DEVOLUCION: 1, MovementType.VENTA: -1, MovementType.SALIDA: -1,
        MovementType.MERMA: -1}


def signed_quantity(movement_type: str, quantity: Decimal) -> Decimal:
    """The ledger delta for a client's (type, quantity)."""
    if movement_type == "ajuste":
        if quantity == 0:
            raise InvalidInput("quantity: un ajuste no puede ser 0 (positivo suma, negativo resta)")
        return quantity
    if movement_type not in SIGN:
        raise InvalidInput(f"type: '{movement_type}' no es un tipo de movimiento; usá uno de: {', '.join(CLIENT_TYPES)}")
    if quantity <= 0:
        raise InvalidInput(f"quantity: para '{movement_type}' la cantidad debe ser mayor que 0")
    return SIGN[movement_type] * quantity


def check_unit_quantity(unit: str, quantity: Decimal, *, sku: str) -> None:
    """Products sold by the unit move in whole units; by weight or volume, up to 3 decimals."""
    if unit == "u" and quantity != quantity.to_integral_value():
        raise InvalidInput(f"quantity: '{sku}' se vende por unidad; la cantidad debe ser entera (se recibió {quantity})")


def insufficient(*, sku: str, location: str, available: Decimal, requested: Decimal) -> InsufficientStock:
    return InsufficientStock(
        f"Stock insuficiente de '{sku}' en {location}: hay {_fmt(available)}, se pidieron {_fmt(requested)}",
        details={"sku": sku, "location": location, "available": str(available), "requested": str(requested)},
    )


def _fmt(q: Decimal) -> str:
    return format(q.normalize(), "f") if q == q.to_integral_value() else format(q, "f")
