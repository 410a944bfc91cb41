"""AFIP's invoice QR (RG 4892/20): `https://www.afip.gob.ar/fe/qr/?p=<base64 JSON>`, decoded without I/O."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qs, urlsplit

from minimarket.ar.cuit import cuit_problem
from minimarket.ar.invoices import INVOICE_TYPES, invoice_number_problem

QR_HOSTS = ("www.afip.gob.ar", "afip.gob.ar", "serviciosweb.afip.gob.ar", "www.arca.gob.ar", "arca.gob.ar")
QR_PATH = "/fe/qr/"
MAX_QR_LENGTH = 2000
_TYPE_BY_CODE = {code: letter for letter, code in INVOICE_TYPES.items()}


@dataclass(frozen=True)
class QrInvoice:
    """The header fields the QR carries."""

    issued_on: date
    issuer_cuit: str
    point_of_sale: int
    type: str
    number: int
    total: Decimal
    currency: str
    exchange_rate: Decimal
    authorization: str  # CAE (or CAEA) — 14 digits
    authorization_kind: str  # "E" CAE, "A" CAEA


class QrError(ValueError):
    """The payload is not a usable AFIP invoice QR; the message says why, in Spanish."""


def decode_afip_qr(url: str) -> QrInvoice:
    """Decode the URL a phone reads from the QR printed on an electronic invoice."""
    if not url or len(url) > MAX_QR_LENGTH:
        raise QrError(f"url: el contenido del QR está vacío o supera {MAX_QR_LENGTH} caracteres")
    parts = urlsplit(url.strip())
    if parts.hostname not in QR_HOSTS or not parts.path.startswith(QR_PATH):
        raise QrError("url: no es un QR de factura de AFIP (se espera https://www.afip.gob.ar/fe/qr/?p=…)")
    # parse_qs reads "+" as a space; in base64 it is a "+".
    payload = (parse_qs(parts.query).get("p") or [""])[0].replace(" ", "+")
    try:
        padded = payload + "=" * (-len(payload) % 4)
        raw = base64.urlsafe_b64decode(padded) if "-" in payload or "_" in payload else base64.b64decode(padded)
        data = json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise QrError("url: el parámetro p del QR no es JSON en base64 válido") from exc
    if not isinstance(data, dict):
        raise QrError("url: el QR no contiene un objeto JSON")
    return _fields(data)


def _fields(data: dict) -> QrInvoice:
    code = _int(data, "tipoCmp")
    if code not in _TYPE_BY_CODE:
        raise QrError(f"tipoCmp: el comprobante {code} no es una factura A, B, C o M (códigos 1, 6, 11, 51)")
    cuit = str(_int(data, "cuit"))
    if problem := cuit_problem(cuit):
        raise QrError(f"cuit: {problem}")
    point_of_sale, number = _int(data, "ptoVta"), _int(data, "nroCmp")
    if problem := invoice_number_problem(point_of_sale, number):
        raise QrError(problem)
    try:
        issued_on = date.fromisoformat(str(data.get("fecha", "")))
    except ValueError as exc:
        raise QrError("fecha: el QR no trae una fecha AAAA-MM-DD válida") from exc
    authorization = str(data.get("codAut", "")).strip()
    if not (authorization.isdigit() and len(authorization) == 14):
        raise QrError("codAut: el CAE del QR debe tener 14 dígitos")
    return QrInvoice(issued_on=issued_on, issuer_cuit=cuit, point_of_sale=point_of_sale, type=_TYPE_BY_CODE[code],
                     number=number, total=_decimal(data, "importe"), currency=str(data.get("moneda") or "PES"),
                     exchange_rate=_decimal(data, "ctz", default="1"),
                     authorization=authorization, authorization_kind=str(data.get("tipoCodAut") or "E"))


def _int(data: dict, name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        raise QrError(f"{name}: el QR no trae un número entero válido")
    return int(value)


def _decimal(data: dict, name: str, default: str | None = None) -> Decimal:
    value = data.get(name, default)
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise QrError(f"{name}: el QR no trae un importe válido") from exc
    if not number.is_finite() or number < 0:
        raise QrError(f"{name}: el QR no trae un importe válido")
    return number.quantize(Decimal("0.01")) if name == "importe" else number
