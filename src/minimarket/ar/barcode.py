"""GTIN barcodes sold in Argentina: EAN-13 (779/778 prefixes), EAN-8 and UPC-A."""

from __future__ import annotations

GTIN_LENGTHS = {8: "EAN-8", 12: "UPC-A", 13: "EAN-13"}


def gtin_check_digit(body: str) -> int:
    """Check digit for the digits before it (GS1 mod-10, weights 3,1 from the right)."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        total += int(ch) * (3 if i % 2 == 0 else 1)
    return (10 - total % 10) % 10


def barcode_problem(code: str) -> str | None:
    """Why `code` is not a valid EAN-8/EAN-13/UPC-A, in Spanish; None when it is valid."""
    if not (code.isascii() and code.isdigit()):
        return "el código de barras sólo puede tener dígitos"
    if len(code) not in GTIN_LENGTHS:
        return "el código de barras debe tener 8 (EAN-8), 12 (UPC-A) o 13 (EAN-13) dígitos"
    expected = gtin_check_digit(code[:-1])
    if int(code[-1]) != expected:
        return f"dígito verificador inválido: termina en {code[-1]}, debería ser {expected}"
    return None


def is_valid_barcode(code: str) -> bool:
    return barcode_problem(code) is None


def make_ean13(body12: str) -> str:
    """Complete a 12-digit body with its check digit."""
    if len(body12) != 12 or not (body12.isascii() and body12.isdigit()):
        raise ValueError("an EAN-13 body has 12 digits")
    return body12 + str(gtin_check_digit(body12))
