"""SKU normalisation and validation of the product, stocktake and transfer input shapes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from minimarket.catalog.schemas import ProductCreate, ProductUpdate, normalise_sku
from minimarket.stock.schemas import BatchIn, StocktakeIn, TransferIn


def errors_of(model: type[BaseModel], data: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return info.value.errors()


def only_error(model: type[BaseModel], data: dict[str, Any]) -> dict[str, Any]:
    errors = errors_of(model, data)
    assert len(errors) == 1, errors
    return errors[0]


def value_message(error: dict[str, Any]) -> str:
    assert error["type"] == "value_error", error
    return str(error["ctx"]["error"])


# ---------------------------------------------------------------- SKU


@pytest.mark.parametrize(
    ("raw", "sku"),
    [("alm-0001", "ALM-0001"), ("ALM-0001", "ALM-0001"), ("  beb.coca_225 ", "BEB.COCA_225"), ("x", "X"),
     ("a" * 40, "A" * 40), ("7790387000016", "7790387000016")],
)
def test_sku_is_case_insensitive_and_stored_upper(raw: str, sku: str) -> None:
    assert normalise_sku(raw) == sku


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "alm 0001", "ALM/0001", "a" * 41, "ñandú", "alm-0001!", "A\nB", "café", "ALM#1", "ALM\t1"],
)
def test_bad_skus_are_refused_in_spanish(raw: str) -> None:
    with pytest.raises(ValueError, match="el SKU debe tener de 1 a 40 caracteres"):
        normalise_sku(raw)


@given(st.from_regex(r"[A-Za-z0-9._-]{1,40}", fullmatch=True))
def test_any_allowed_sku_normalises_to_its_upper_case(raw: str) -> None:
    assert normalise_sku(raw) == raw.upper()
    assert normalise_sku(raw.lower()) == normalise_sku(raw.upper())


@given(
    st.from_regex(r"[A-Za-z0-9]{1,15}", fullmatch=True),
    st.sampled_from([" ", "/", "#", "ñ", "@", ",", "+", "á"]),
    st.from_regex(r"[A-Za-z0-9]{1,15}", fullmatch=True),
)
def test_any_forbidden_character_inside_is_refused(left: str, bad: str, right: str) -> None:
    with pytest.raises(ValueError):
        normalise_sku(left + bad + right)


# ---------------------------------------------------------------- ProductCreate

BASE = {"sku": "alm-0001", "name": "Yerba mate 1 kg"}


def test_minimal_product_gets_the_store_defaults() -> None:
    product = ProductCreate.model_validate(BASE)
    assert product.sku == "ALM-0001"
    assert product.unit == "u"
    assert product.vat_rate == Decimal("21")
    assert product.price == 0 and product.cost == 0
    assert product.barcode is None and product.max_stock is None


def test_product_sku_is_normalised_and_refused_with_spaces() -> None:
    assert ProductCreate.model_validate({**BASE, "sku": " yer-1 "}).sku == "YER-1"
    error = only_error(ProductCreate, {**BASE, "sku": "yer 1"})
    assert error["loc"] == ("sku",)
    assert "el SKU debe tener" in value_message(error)


@pytest.mark.parametrize("field", ["price", "cost"])
def test_negative_amounts_are_refused(field: str) -> None:
    error = only_error(ProductCreate, {**BASE, field: "-0.01"})
    assert error["loc"] == (field,)
    assert error["type"] == "greater_than_equal"


def test_price_with_more_than_two_decimals_is_refused() -> None:
    error = only_error(ProductCreate, {**BASE, "price": "10.005"})
    assert error["loc"] == ("price",) and "demasiados decimales (máximo 2)" in error["msg"]


@pytest.mark.parametrize("rate", ["0", "10.5", "10.50", "21", "21.0", "27", 0, 21, 10.5])
def test_argentine_vat_rates_are_accepted(rate: object) -> None:
    product = ProductCreate.model_validate({**BASE, "vat_rate": rate})
    assert product.vat_rate in {Decimal("0"), Decimal("10.5"), Decimal("21"), Decimal("27")}
    assert product.vat_rate == Decimal(str(rate))


@pytest.mark.parametrize("rate", ["5", "10", "22", "-21", "105", "2.5", "0.21"])
def test_other_vat_rates_are_refused(rate: str) -> None:
    error = only_error(ProductCreate, {**BASE, "vat_rate": rate})
    assert error["loc"] == ("vat_rate",)
    assert value_message(error) == "la alícuota de IVA debe ser 0, 10.5, 21 o 27"


def test_max_stock_below_min_stock_is_refused() -> None:
    error = only_error(ProductCreate, {**BASE, "min_stock": "10", "max_stock": "5"})
    assert value_message(error) == "max_stock no puede ser menor que min_stock"


def test_max_stock_equal_or_above_min_stock_is_accepted() -> None:
    assert ProductCreate.model_validate({**BASE, "min_stock": "5", "max_stock": "5"}).max_stock == 5
    assert ProductCreate.model_validate({**BASE, "min_stock": "5", "max_stock": "50"}).max_stock == 50


def test_negative_stock_bounds_are_refused() -> None:
    assert only_error(ProductCreate, {**BASE, "min_stock": "-1"})["loc"] == ("min_stock",)
    assert only_error(ProductCreate, {**BASE, "initial_stock": "-1"})["loc"] == ("initial_stock",)


@pytest.mark.parametrize("field", ["stock", "precio", "Price", "sku_code"])
def test_unknown_fields_are_refused(field: str) -> None:
    error = only_error(ProductCreate, {**BASE, field: 1})
    assert error["type"] == "extra_forbidden" and error["loc"] == (field,)


def test_barcode_with_wrong_check_digit_is_refused_naming_the_digit() -> None:
    error = only_error(ProductCreate, {**BASE, "barcode": "7790387000017"})
    assert error["loc"] == ("barcode",)
    message = value_message(error)
    assert message == "dígito verificador inválido: termina en 7, debería ser 6"


@pytest.mark.parametrize(("raw", "stored"), [("7790387000016", "7790387000016"), (" 7790387000016 ", "7790387000016"),
                                             ("", None), ("   ", None), (None, None), ("96385074", "96385074")])
def test_barcode_is_trimmed_and_blank_means_none(raw: str | None, stored: str | None) -> None:
    assert ProductCreate.model_validate({**BASE, "barcode": raw}).barcode == stored


@pytest.mark.parametrize("raw", ["77903870000A6", "77903870000", "12345"])
def test_barcode_with_letters_or_bad_length_is_refused(raw: str) -> None:
    error = only_error(ProductCreate, {**BASE, "barcode": raw})
    assert error["loc"] == ("barcode",)
    assert "código de barras" in value_message(error)


def test_unit_must_be_u_kg_or_l() -> None:
    assert ProductCreate.model_validate({**BASE, "unit": "kg"}).unit == "kg"
    error = only_error(ProductCreate, {**BASE, "unit": "g"})
    assert error["type"] == "literal_error" and error["loc"] == ("unit",)


# ---------------------------------------------------------------- ProductUpdate


def test_update_knows_which_fields_were_sent() -> None:
    changes = ProductUpdate.model_validate({"price": "4500"})
    assert changes.model_fields_set == {"price"}
    assert changes.price == Decimal("4500")


def test_update_may_clear_the_barcode_but_not_the_name() -> None:
    cleared = ProductUpdate.model_validate({"barcode": None})
    assert cleared.barcode is None and "barcode" in cleared.model_fields_set
    assert value_message(only_error(ProductUpdate, {"name": None})) == "name no puede ser null"
    assert value_message(only_error(ProductUpdate, {"price": None})) == "price no puede ser null"


def test_update_validates_like_create() -> None:
    assert only_error(ProductUpdate, {"price": "-1"})["type"] == "greater_than_equal"
    assert value_message(only_error(ProductUpdate, {"vat_rate": "22"})) == "la alícuota de IVA debe ser 0, 10.5, 21 o 27"
    assert "debería ser 6" in value_message(only_error(ProductUpdate, {"barcode": "7790387000010"}))
    assert only_error(ProductUpdate, {"stock": 5})["type"] == "extra_forbidden"
    assert only_error(ProductUpdate, {"sku": "NEW"})["type"] == "extra_forbidden"  # SKUs are not renamed


# ---------------------------------------------------------------- stock inputs


def test_stocktake_refuses_the_same_sku_twice_in_any_case() -> None:
    error = only_error(StocktakeIn, {"lines": [{"sku": "alm-1", "counted": 3}, {"sku": "beb-2", "counted": 1},
                                               {"sku": "ALM-1", "counted": 2}]})
    message = value_message(error)
    assert "lines[2].sku" in message and "aparece dos veces" in message


def test_stocktake_accepts_distinct_skus_and_zero_counts() -> None:
    count = StocktakeIn.model_validate({"location": "DEP", "lines": [{"sku": "alm-1", "counted": 0},
                                                                     {"sku": "beb-2", "counted": "1.250"}]})
    assert [line.counted for line in count.lines] == [Decimal("0"), Decimal("1.250")]


def test_stocktake_refuses_negative_counts_and_empty_lists() -> None:
    error = only_error(StocktakeIn, {"lines": [{"sku": "alm-1", "counted": -1}]})
    assert error["loc"] == ("lines", 0, "counted")
    assert only_error(StocktakeIn, {"lines": []})["type"] == "too_short"


@pytest.mark.parametrize(("origin", "destination"), [("DEP", "DEP"), ("dep", "DEP"), ("SAL", " sal ")])
def test_transfer_to_the_same_location_is_refused(origin: str, destination: str) -> None:
    error = only_error(TransferIn, {"from_location": origin, "to_location": destination,
                                    "lines": [{"sku": "alm-1", "quantity": 1}]})
    assert "debe ser distinta de from_location" in value_message(error)


def test_transfer_between_two_locations_is_accepted_and_quantities_must_be_positive() -> None:
    transfer = TransferIn.model_validate({"from_location": "DEP", "to_location": "SAL",
                                          "lines": [{"sku": "alm-1", "quantity": "2"}]})
    assert transfer.lines[0].quantity == 2
    for bad in ("0", "-1"):
        error = only_error(TransferIn, {"from_location": "DEP", "to_location": "SAL",
                                        "lines": [{"sku": "alm-1", "quantity": bad}]})
        assert error["loc"] == ("lines", 0, "quantity") and error["type"] == "greater_than"


def test_batch_lines_refuse_unknown_types_and_fields_with_their_position() -> None:
    errors = errors_of(BatchIn, {"lines": [{"sku": "a", "type": "venta", "quantity": 1},
                                           {"sku": "a", "type": "transferencia", "quantity": 1},
                                           {"sku": "a", "type": "venta", "quantity": 1, "precio": 5}]})
    by_loc = {e["loc"]: e["type"] for e in errors}
    assert by_loc == {("lines", 1, "type"): "literal_error", ("lines", 2, "precio"): "extra_forbidden"}
