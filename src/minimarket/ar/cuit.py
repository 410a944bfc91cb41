"""CUIT/CUIL: 11 digits, type prefix, mod-11 check digit (AFIP)."""

from __future__ import annotations

_WEIGHTS = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
VALID_PREFIXES = {"20", "23", "24", "25", "26", "27", "30", "33", "34"}


def normalise_cuit(raw: str) -> str:
    return raw.replace("-", "").replace(" ", "").replace(".", "")


def cuit_check_digit(first10: str) -> int | None:
    """The check digit for the first ten digits; None when no digit fits (AFIP re-prefixes those)."""
    total = sum(int(d) * w for d, w in zip(first10, _WEIGHTS, strict=True))
    digit = 11 - total % 11
    if digit == 11:
        return 0
    if digit == 10:
        return None
    return digit


def cuit_problem(raw: str) -> str | None:
    """Why `raw` is not a valid CUIT, in Spanish; None when it is valid."""
    cuit = normalise_cuit(raw)
    if not (cuit.isascii() and cuit.isdigit()) or len(cuit) != 11:
        return "el CUIT debe tener 11 dígitos (ej. 30-71234567-1)"
    if cuit[:2] not in VALID_PREFIXES:
        return f"el CUIT empieza con {cuit[:2]}, que no es un tipo válido"
    expected = cuit_check_digit(cuit[:10])
    if expected is None or int(cuit[10]) != expected:
        return "dígito verificador del CUIT inválido"
    return None


def format_cuit(raw: str) -> str:
    c = normalise_cuit(raw)
    return f"{c[:2]}-{c[2:10]}-{c[10]}"
