"""One error shape for every response, with Spanish messages and dotted field paths.

No database: the translation functions are called directly, and the handlers are
mounted on a tiny in-process FastAPI app.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, ValidationError

from minimarket.catalog.schemas import ProductCreate
from minimarket.errors import InsufficientStock, InvalidInput, NotFound
from minimarket.platform.errors import _field_path, error_body, install_error_handlers, validation_response
from minimarket.stock.schemas import BatchIn, SaleIn, StocktakeIn, TransferIn

ENGLISH = ("Input should", "Field required", "Extra inputs", "Value error", "String should", "List should",
           "Decimal input", "valid", "permitted", " or ")


def body_of(response) -> dict[str, Any]:  # noqa: ANN001
    return json.loads(response.body)


def request_errors(model: type[BaseModel], data: Any) -> list[dict[str, Any]]:
    """The errors as FastAPI hands them over for a JSON body: loc starts with "body"."""
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return [{**e, "loc": ("body", *e["loc"])} for e in info.value.errors()]


def assert_error_shape(payload: dict[str, Any]) -> dict[str, Any]:
    assert set(payload) == {"error"}
    error = payload["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    return error


# ---------------------------------------------------------------- field paths


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        (("body", "lines", 2, "quantity"), "lines[2].quantity"),
        (("body", "lines", 0, "sku"), "lines[0].sku"),
        (("body", "price"), "price"),
        (("body",), "cuerpo"),
        ((), "cuerpo"),
        (("query", "limit"), "limit"),
        (("path", "sku"), "sku"),
        (("header", "idempotency-key"), "idempotency-key"),
        (("body", "lines", 1, "lines", 3), "lines[1].lines[3]"),
    ],
)
def test_field_paths_are_dotted_with_indexes(loc: tuple, path: str) -> None:
    assert _field_path(loc) == path


# ---------------------------------------------------------------- validation_response


def test_batch_errors_name_the_line_and_field() -> None:
    errors = request_errors(BatchIn, {"lines": [{"sku": "A", "type": "venta", "quantity": 1},
                                                {"sku": "A", "type": "venta", "quantity": 1},
                                                {"sku": "A", "type": "venta", "quantity": "1.0001"}]})
    response = validation_response(errors)
    assert response.status_code == 422
    error = assert_error_shape(body_of(response))
    assert error["code"] == "datos_invalidos"
    assert error["details"] == [{"field": "lines[2].quantity", "problem": "tiene demasiados decimales (máximo 3)"}]
    assert error["message"] == "Datos inválidos — lines[2].quantity: tiene demasiados decimales (máximo 3)"


def test_value_errors_keep_our_spanish_message_without_the_pydantic_prefix() -> None:
    response = validation_response(request_errors(ProductCreate, {"sku": "A", "name": "x",
                                                                  "barcode": "7790387000017"}))
    error = assert_error_shape(body_of(response))
    assert error["details"] == [{"field": "barcode",
                                 "problem": "dígito verificador inválido: termina en 7, debería ser 6"}]


def test_message_lists_at_most_five_problems_but_details_has_all() -> None:
    lines = [{"sku": "A", "type": "venta", "quantity": "x"} for _ in range(7)]
    error = assert_error_shape(body_of(validation_response(request_errors(BatchIn, {"lines": lines}))))
    assert len(error["details"]) == 7
    assert [d["field"] for d in error["details"]] == [f"lines[{i}].quantity" for i in range(7)]
    assert error["message"].count("lines[") == 5


CASES: list[tuple[str, type[BaseModel], Any, str]] = [
    ("missing", BatchIn, {}, "lines"),
    ("extra", ProductCreate, {"sku": "A", "name": "x", "precio": 1}, "precio"),
    ("decimal-parsing", ProductCreate, {"sku": "A", "name": "x", "price": "mil"}, "price"),
    ("decimal-places", ProductCreate, {"sku": "A", "name": "x", "price": "1.001"}, "price"),
    ("ge", ProductCreate, {"sku": "A", "name": "x", "price": "-1"}, "price"),
    ("gt", TransferIn, {"from_location": "DEP", "to_location": "SAL", "lines": [{"sku": "A", "quantity": 0}]},
     "lines[0].quantity"),
    ("too-long", ProductCreate, {"sku": "A", "name": "x" * 201}, "name"),
    ("empty-string", ProductCreate, {"sku": "A", "name": ""}, "name"),
    ("empty-list", BatchIn, {"lines": []}, "lines"),
    ("list-type", BatchIn, {"lines": "A"}, "lines"),
    ("bool", ProductCreate, {"sku": "A", "name": "x", "active": "quizás"}, "active"),
    ("unit-literal", ProductCreate, {"sku": "A", "name": "x", "unit": "g"}, "unit"),
    ("type-literal", BatchIn, {"lines": [{"sku": "A", "type": "vendido", "quantity": 1}]}, "lines[0].type"),
    ("nan", BatchIn, {"lines": [{"sku": "A", "type": "venta", "quantity": "NaN"}]}, "lines[0].quantity"),
    ("naive-sold-at", SaleIn, {"ticket_id": "T-1", "sold_at": "2026-11-27T10:30:00",
                               "lines": [{"sku": "A", "quantity": 1}]}, "sold_at"),
    ("bad-sold-at", SaleIn, {"ticket_id": "T-1", "sold_at": "ayer", "lines": [{"sku": "A", "quantity": 1}]},
     "sold_at"),
]


@pytest.mark.parametrize(("model", "data", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_validation_problems_are_explained_in_spanish(model: type[BaseModel], data: Any, field: str) -> None:
    response = validation_response(request_errors(model, data))
    assert response.status_code == 422
    error = assert_error_shape(body_of(response))
    assert error["code"] == "datos_invalidos"
    assert error["message"].startswith("Datos inválidos — ")
    assert field in [d["field"] for d in error["details"]]
    for detail in error["details"]:
        assert set(detail) == {"field", "problem"}
        for english in ENGLISH:
            assert english not in detail["problem"], f"{detail['field']}: {detail['problem']!r} is not Spanish"


@pytest.mark.parametrize(
    ("model", "data", "field"),
    [
        (StocktakeIn, {"lines": [{"sku": "a", "counted": 1}, {"sku": "A", "counted": 2}]}, "lines[1].sku"),
        (TransferIn, {"from_location": "DEP", "to_location": "dep", "lines": [{"sku": "A", "quantity": 1}]},
         "to_location"),
    ],
    ids=["stocktake-duplicate", "transfer-same-place"],
)
def test_whole_body_rules_still_point_at_the_field(model: type[BaseModel], data: Any, field: str) -> None:
    # These rules run on the whole body (pydantic loc is empty) but their message names the
    # field; the details must carry that field so a client can highlight it.
    error = assert_error_shape(body_of(validation_response(request_errors(model, data))))
    assert [d["field"] for d in error["details"]] == [field]
    assert not error["details"][0]["problem"].startswith(field)


def test_invalid_json_is_a_400_not_a_422() -> None:
    errors = [{"type": "json_invalid", "loc": ("body", 17), "msg": "JSON decode error",
               "input": {}, "ctx": {"error": "Expecting ',' delimiter"}}]
    response = validation_response(errors)
    assert response.status_code == 400
    error = assert_error_shape(body_of(response))
    assert error["code"] == "json_invalido"
    assert "JSON" in error["message"] and "comas" in error["message"]
    assert error["details"] is None


def test_error_body_shape() -> None:
    assert error_body("conflicto", "Ya existe", {"sku": "A"}) == {
        "error": {"code": "conflicto", "message": "Ya existe", "details": {"sku": "A"}}}
    assert error_body("x", "y") == {"error": {"code": "x", "message": "y", "details": None}}


# ---------------------------------------------------------------- handlers on a tiny app


@pytest.fixture(scope="module")
def tiny() -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/batch")
    def batch(body: BatchIn) -> dict:
        return {"lines": len(body.lines)}

    @app.get("/short")
    def short() -> dict:
        raise InsufficientStock("Stock insuficiente de 'A' en SAL: hay 1, se pidieron 2",
                                details={"sku": "A", "location": "SAL", "available": "1.000", "requested": "2"})

    @app.get("/missing")
    def missing() -> dict:
        raise NotFound("El producto 'X' no existe")

    @app.get("/invalid")
    def invalid() -> dict:
        raise InvalidInput("location: la ubicación 'Z' no existe")

    @app.get("/boom")
    def boom() -> dict:
        raise RuntimeError("secret internals")

    return TestClient(app, raise_server_exceptions=False)


def test_domain_errors_keep_status_code_and_details(tiny: TestClient) -> None:
    r = tiny.get("/short")
    assert r.status_code == 409
    error = assert_error_shape(r.json())
    assert error["code"] == "stock_insuficiente"
    assert error["details"] == {"sku": "A", "location": "SAL", "available": "1.000", "requested": "2"}
    assert tiny.get("/missing").status_code == 404 and tiny.get("/missing").json()["error"]["code"] == "no_encontrado"
    assert tiny.get("/invalid").status_code == 422 and tiny.get("/invalid").json()["error"]["code"] == "datos_invalidos"


def test_request_validation_goes_through_the_same_translation(tiny: TestClient) -> None:
    r = tiny.post("/batch", json={"lines": [{"sku": "A", "type": "venta", "quantity": 1},
                                            {"sku": "A", "type": "venta", "quantity": 1},
                                            {"sku": "A", "type": "venta", "quantity": -2, "foo": 1}]})
    assert r.status_code == 422
    error = assert_error_shape(r.json())
    assert {d["field"] for d in error["details"]} == {"lines[2].foo"}
    assert tiny.post("/batch", json={"lines": [{"sku": "A", "type": "venta", "quantity": 1}]}).json() == {"lines": 1}


@pytest.mark.parametrize("payload", [[1, 2], "lines", 7])
def test_a_body_that_is_not_an_object_is_explained(tiny: TestClient, payload: Any) -> None:
    r = tiny.post("/batch", json=payload)
    assert r.status_code == 422
    error = assert_error_shape(r.json())
    assert error["details"] == [{"field": "cuerpo", "problem": "debe ser un objeto JSON"}]


def test_malformed_json_body_is_400(tiny: TestClient) -> None:
    r = tiny.post("/batch", content=b'{"lines": [', headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert assert_error_shape(r.json())["code"] == "json_invalido"


def test_unknown_routes_and_methods_use_the_shape(tiny: TestClient) -> None:
    r = tiny.get("/nope")
    assert r.status_code == 404
    error = assert_error_shape(r.json())
    assert error["code"] == "ruta_inexistente" and "/nope" in error["message"]
    r = tiny.delete("/batch")
    assert r.status_code == 405
    assert assert_error_shape(r.json())["code"] == "metodo_no_permitido"


def test_unexpected_errors_hide_internals(tiny: TestClient) -> None:
    r = tiny.get("/boom")
    assert r.status_code == 500
    error = assert_error_shape(r.json())
    assert error["code"] == "error_interno"
    assert "secret" not in r.text
