"""Business errors. Each carries an HTTP status, a stable code and a Spanish message."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code = 400
    code = "solicitud_invalida"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        if code:
            self.code = code


class NotFound(DomainError):
    status_code = 404
    code = "no_encontrado"


class Conflict(DomainError):
    status_code = 409
    code = "conflicto"


class InsufficientStock(Conflict):
    code = "stock_insuficiente"


class IdempotencyMismatch(Conflict):
    code = "idempotencia_conflicto"


class InvalidInput(DomainError):
    status_code = 422
    code = "datos_invalidos"


class Unauthorized(DomainError):
    status_code = 401
    code = "no_autenticado"


class Forbidden(DomainError):
    status_code = 403
    code = "sin_permiso"
