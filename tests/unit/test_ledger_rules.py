"""Pure ledger rules: signs per movement type, unit quantities and the no-negative-stock rule."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minimarket.errors import Conflict, InsufficientStock, InvalidInput
from minimarket.stock.rules import CLIENT_TYPES, check_unit_quantity, insufficient, signed_quantity

D = Decimal


@pytest.mark.parametrize(
    ("movement_type", "quantity", "delta"),
    [
        ("entrada", D("5"), D("5")),
        ("devolucion", D("1"), D("1")),
        ("venta", D("3"), D("-3")),
        ("salida", D("2"), D("-2")),
        ("merma", D("0.250"), D("-0.250")),
        ("ajuste", D("4"), D("4")),
        ("ajuste", D("-4"), D("-4")),
        ("ajuste", D("-0.001"), D("-0.001")),
    ],
)
def test_signed_quantity_per_type(movement_type: str, quantity: Decimal, delta: Decimal) -> None:
    assert signed_quantity(movement_type, quantity) == delta


def test_every_client_type_has_a_direction() -> None:
    for movement_type in CLIENT_TYPES:
        assert signed_quantity(movement_type, D("1")) in (D("1"), D("-1"))
    assert {t for t in CLIENT_TYPES if signed_quantity(t, D("1")) < 0} == {"venta", "salida", "merma"}


def test_ajuste_of_zero_is_refused() -> None:
    with pytest.raises(InvalidInput) as info:
        signed_quantity("ajuste", D("0"))
    assert info.value.message.startswith("quantity:")
    assert info.value.status_code == 422 and info.value.code == "datos_invalidos"


@pytest.mark.parametrize("movement_type", ["entrada", "devolucion", "venta", "salida", "merma"])
@pytest.mark.parametrize("quantity", [D("0"), D("-1"), D("-0.001")])
def test_non_positive_quantities_are_refused(movement_type: str, quantity: Decimal) -> None:
    with pytest.raises(InvalidInput) as info:
        signed_quantity(movement_type, quantity)
    assert info.value.message.startswith("quantity:")
    assert "mayor que 0" in info.value.message


@pytest.mark.parametrize("movement_type", ["transferencia", "VENTA", "compra", ""])
def test_unknown_types_are_refused_listing_the_valid_ones(movement_type: str) -> None:
    with pytest.raises(InvalidInput) as info:
        signed_quantity(movement_type, D("1"))
    assert info.value.message.startswith("type:")
    for known in CLIENT_TYPES:
        assert known in info.value.message


@given(st.sampled_from(["entrada", "devolucion", "venta", "salida", "merma"]),
       st.decimals(min_value=D("0.001"), max_value=D("1e6"), places=3))
def test_sign_is_the_only_thing_a_type_changes(movement_type: str, quantity: Decimal) -> None:
    delta = signed_quantity(movement_type, quantity)
    assert abs(delta) == quantity


# ---------------------------------------------------------------- units


@pytest.mark.parametrize("quantity", [D("1"), D("3"), D("3.000"), D("120")])
def test_whole_units_are_accepted_for_u(quantity: Decimal) -> None:
    assert check_unit_quantity("u", quantity, sku="BEB-1") is None


@pytest.mark.parametrize("quantity", [D("2.5"), D("0.001"), D("1.999")])
def test_fractions_are_refused_for_u(quantity: Decimal) -> None:
    with pytest.raises(InvalidInput) as info:
        check_unit_quantity("u", quantity, sku="BEB-1")
    assert "'BEB-1'" in info.value.message and "entera" in info.value.message
    assert info.value.message.startswith("quantity:")


@pytest.mark.parametrize("unit", ["kg", "l"])
@pytest.mark.parametrize("quantity", [D("0.125"), D("1.5"), D("0.001"), D("2"), D("12.345")])
def test_up_to_three_decimals_are_accepted_by_weight_or_volume(unit: str, quantity: Decimal) -> None:
    assert check_unit_quantity(unit, quantity, sku="FIAMB-1") is None


# ---------------------------------------------------------------- the no-negative rule


def test_insufficient_stock_names_available_and_requested() -> None:
    # The ledger's conditional UPDATE refuses; this is the error it raises (stock/ledger.py).
    exc = insufficient(sku="ALM-1", location="SAL", available=D("3"), requested=D("4"))
    assert isinstance(exc, InsufficientStock) and isinstance(exc, Conflict)
    assert exc.status_code == 409 and exc.code == "stock_insuficiente"
    assert exc.details["sku"] == "ALM-1" and exc.details["location"] == "SAL"
    assert D(exc.details["available"]) == D("3")
    assert D(exc.details["requested"]) == D("4")
    assert "Stock insuficiente de 'ALM-1' en SAL" in exc.message
    assert "hay 3" in exc.message and "se pidieron 4" in exc.message
