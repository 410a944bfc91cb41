"""One error shape for every response: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import re
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from minimarket.errors import DomainError

log = structlog.get_logger("minimarket.errors")

_PYDANTIC_ES = {
    "missing": "es obligatorio",
    "extra_forbidden": "no es un campo conocido; revisá el nombre",
    "string_type": "debe ser texto",
    "string_too_short": "no puede estar vacío",
    "string_too_long": "es demasiado largo (máximo {max_length} caracteres)",
    "string_pattern_mismatch": "tiene un formato inválido",
    "int_parsing": "debe ser un número entero",
    "int_type": "debe ser un número entero",
    "int_from_float": "debe ser un número entero",
    "float_parsing": "debe ser un número",
    "decimal_parsing": "debe ser un número (usá punto decimal, ej. 1234.50)",
    "decimal_type": "debe ser un número",
    "decimal_max_digits": "tiene demasiados dígitos",
    "decimal_max_places": "tiene demasiados decimales (máximo {decimal_places})",
    "decimal_whole_digits": "es demasiado grande",
    "greater_than": "debe ser mayor que {gt}",
    "greater_than_equal": "debe ser mayor o igual a {ge}",
    "less_than": "debe ser menor que {lt}",
    "less_than_equal": "debe ser menor o igual a {le}",
    "bool_parsing": "debe ser true o false",
    "bool_type": "debe ser true o false",
    "literal_error": "debe ser uno de: {expected}",
    "enum": "debe ser uno de: {expected}",
    "list_type": "debe ser una lista",
    "too_short": "debe tener al menos {min_length} elemento(s)",
    "too_long": "puede tener como máximo {max_length} elementos",
    "dict_type": "debe ser un objeto JSON",
    "model_attributes_type": "debe ser un objeto JSON",
    "datetime_parsing": "debe ser una fecha y hora ISO 8601 (ej. 2026-11-27T10:30:00-03:00)",
    "datetime_from_date_parsing": "debe ser una fecha ISO 8601 (ej. 2026-11-27)",
    "date_parsing": "debe ser una fecha ISO 8601 (ej. 2026-11-27)",
    "date_from_datetime_parsing": "debe ser una fecha ISO 8601 (ej. 2026-11-27)",
    "finite_number": "debe ser un número finito",
    "string_unicode": "no es texto válido (UTF-8)",
    "int_parsing_size": "es un número demasiado grande",
    "datetime_type": "debe ser una fecha y hora ISO 8601 (ej. 2026-11-27T10:30:00-03:00)",
    "datetime_object_invalid": "no es una fecha y hora válida",
    "date_type": "debe ser una fecha ISO 8601 (ej. 2026-11-27)",
    "timezone_offset": "tiene una zona horaria inválida",
    "model_type": "debe ser un objeto JSON",
    "json_type": "debe ser JSON válido",
    "timezone_aware": "debe indicar la zona horaria (ej. 2026-11-27T10:30:00-03:00)",
    "timezone_naive": "no debe indicar zona horaria",
}


def _field_path(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if item in ("body", "query", "path", "header") and not parts:
            continue
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "cuerpo"


def _spanish(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind == "value_error":
        # Our own validators raise ValueError with a Spanish message already.
        return str(ctx.get("error") or err.get("msg", "")).removeprefix("Value error, ")
    template = _PYDANTIC_ES.get(kind)
    if template is None:  # a pydantic error nobody translated yet: still Spanish, never its English text
        return "tiene un valor inválido"
    if "expected" in ctx:
        ctx = {**ctx, "expected": str(ctx["expected"]).replace(" or ", " o ")}
    try:
        return template.format(**ctx)
    except (KeyError, IndexError):
        return template


_NAMED_PROBLEM = re.compile(r"^([A-Za-z_][\w.\[\]]*): (.+)$", re.DOTALL)


def spanish_message(err: dict[str, Any]) -> str:
    """A pydantic error in Spanish, for callers that show it outside the JSON error shape (the dashboard)."""
    return _spanish(err)


def _detail(err: dict[str, Any]) -> dict[str, str]:
    field, problem = _field_path(tuple(err.get("loc", ()))), _spanish(err)
    # A rule over the whole body names its field itself ("to_location: debe ser distinta…").
    named = _NAMED_PROBLEM.match(problem) if field == "cuerpo" else None
    if named:
        field, problem = named.group(1), named.group(2)
    return {"field": field, "problem": problem}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def internal_error_body(request_id: str | None) -> dict[str, Any]:
    """The 500 answer: no internals, only the request id that finds the traceback in the logs."""
    return error_body("error_interno", "Error interno; informá este request_id al soporte", {"request_id": request_id})


def database_unavailable_body() -> dict[str, Any]:
    """The 503 answer while the database is unreachable: a dependency outage, not a bug."""
    return error_body("base_no_disponible",
                      "La base de datos no responde; reintentá en unos segundos. Si sigue, revisá /health")


def validation_response(errors: list[dict[str, Any]]) -> JSONResponse:
    if any(e.get("type") == "json_invalid" for e in errors):
        return JSONResponse(
            error_body("json_invalido", "El cuerpo de la solicitud no es JSON válido; revisá comas, comillas y llaves"),
            status_code=400,
        )
    details = [_detail(e) for e in errors]
    message = "; ".join(f"{d['field']}: {d['problem']}" for d in details[:5])
    return JSONResponse(error_body("datos_invalidos", f"Datos inválidos — {message}", details), status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        headers = {"WWW-Authenticate": getattr(exc, "challenge", "ApiKey")} if exc.status_code == 401 else None
        return JSONResponse(error_body(exc.code, exc.message, exc.details), exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(list(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        messages = {
            404: f"No existe la ruta {request.url.path}; consultá /docs",
            405: f"El método {request.method} no está permitido en {request.url.path}",
            # The JSON parser gave up (a number of thousands of digits, nesting too deep).
            400: "El cuerpo de la solicitud no se pudo leer como JSON; revisá números muy largos o anidamientos",
        }
        message = messages.get(exc.status_code, str(exc.detail))
        code = {400: "json_invalido", 413: "cuerpo_demasiado_grande", 404: "ruta_inexistente",
                405: "metodo_no_permitido"}.get(
            exc.status_code, "http_error"
        )
        return JSONResponse(error_body(code, message), exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # The database is unreachable or went away mid-request: a dependency outage, not a bug.
        log.error("database_unavailable", path=request.url.path, error=str(exc).splitlines()[0][:200])
        return JSONResponse(
            database_unavailable_body(),
            status_code=503,
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        request_id = request.scope.get("state", {}).get("request_id")
        log.exception("unhandled_error", path=request.url.path, error=type(exc).__name__)
        return JSONResponse(internal_error_body(request_id), status_code=500)
