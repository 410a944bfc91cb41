"""Ledger rules as pure functions: signs by movement type, units, the no-negative rule."""

from __future__ import annotations

from decimal import Decimal

from minimarket.errors import InsufficientStock, InvalidInput

# Direction of each type when the client sends a positive quantity.
# `ajuste` carries its own sign; `transferencia` is written as a pair by the transfer use case.
SIGN = {"entrada": 1, "devolucion": 1, "venta": -1, "salida": -1, "merma": -1}
CLIENT_TYPES = ("entrada", "venta", "salida", "ajuste", "merma", "devolucion")


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


def next_balance(current: Decimal, delta: Decimal, *, allow_negative: bool, sku: str = "", location: str = "") -> Decimal:
    """The balance after `delta`, or InsufficientStock when it would go below zero."""
    after = current + delta
    if delta < 0 and after < 0 and not allow_negative:  # goods coming in are never refused
        raise insufficient(sku=sku, location=location, available=current, requested=-delta)
    return after


def insufficient(*, sku: str, location: str, available: Decimal, requested: Decimal) -> InsufficientStock:
    return InsufficientStock(
        f"Stock insuficiente de '{sku}' en {location}: hay {_fmt(available)}, se pidieron {_fmt(requested)}",
        details={"sku": sku, "location": location, "available": str(available), "requested": str(requested)},
    )


def _fmt(q: Decimal) -> str:
    return format(q.normalize(), "f") if q == q.to_integral_value() else format(q, "f")
