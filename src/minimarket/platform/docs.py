"""API documentation served from the installed swagger-ui-bundle package: /docs works offline on the store LAN,
and an OpenAPI that documents the error answers the API really sends (one shape, every status it can take)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

ASSETS = "/docs/assets"


# The one error shape (platform/errors.py: error_body), in place of FastAPI's default `{"detail": [...]}`.
ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error", "type": "object", "required": ["error"], "additionalProperties": False,
    "properties": {"error": {
        "type": "object", "required": ["code", "message", "details"], "additionalProperties": False,
        "properties": {"code": {"type": "string", "description": "qué pasó, estable (p. ej. stock_insuficiente)"},
                       "message": {"type": "string", "description": "en español, nombra el campo y el arreglo"},
                       "details": {"description": "datos del error: campos, disponibles, request_id"}}}},
}
_ERRORS = {  # status -> (when, for which operations: "all" or "writes")
    "400": ("El cuerpo no es JSON (json_invalido)", "writes"),
    "401": ("Falta la clave o es inválida (no_autenticado)", "all"),
    "403": ("El rol no alcanza (sin_permiso)", "all"),
    "404": ("No existe lo que se nombra: SKU, id, ruta (no_encontrado)", "all"),
    "409": ("Conflicto con lo guardado: stock insuficiente, duplicado, idempotencia", "writes"),
    "413": ("Cuerpo de más de MAX_BODY_BYTES (cuerpo_demasiado_grande)", "writes"),
    "422": ("Datos inválidos; details lista {field, problem} (datos_invalidos)", "all"),
    "429": ("Límite de solicitudes; Retry-After dice cuánto esperar (demasiadas_solicitudes)", "all"),
    "503": ("La base no responde; reintentar (base_no_disponible)", "all"),
}


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Every /api operation lists the error answers it can give, all with ERROR_SCHEMA."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Error"] = ERROR_SCHEMA
    answer = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status, (when, scope) in _ERRORS.items():
                if scope == "all" or method != "get":
                    responses[status] = {"description": when, "content": answer}
    return schema


def install_docs(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )
