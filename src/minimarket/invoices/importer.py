"""CSV and XLSX invoice files → invoice drafts. One row per line; the header columns repeat per row.

Parsing is pure (bytes in, `InvoiceIn` payloads out, errors naming row and column); the API
then creates every draft in one unit of work, so a file with one bad row changes nothing.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from pydantic import ValidationError

from minimarket.ar.invoices import RATES, LineAmount, breakdown_from_lines, parse_invoice_number, rate_label
from minimarket.errors import InvalidInput
from minimarket.invoices.schemas import InvoiceIn
from minimarket.platform.errors import spanish_message  # one translation of pydantic's errors
from minimarket.plain_input import plain_decimal

HEADER = ("proveedor", "cuit_emisor", "tipo", "punto_venta", "numero", "fecha", "cae", "cae_vencimiento",
          "neto_0", "neto_10_5", "neto_21", "neto_27", "iva_10_5", "iva_21", "iva_27", "percepcion_iibb",
          "percepcion_iva", "total")
LINE = ("codigo_barras", "sku", "codigo_proveedor", "descripcion", "cantidad", "costo_unitario", "iva", "descuento")
COLUMNS = HEADER + LINE
REQUIRED = ("tipo", "numero", "fecha", "total", "cantidad", "costo_unitario")
MAX_ROWS = 5000
RATE_COLUMNS = {"neto_0": ("net", "0"), "neto_10_5": ("net", "10.5"), "neto_21": ("net", "21"),
                "neto_27": ("net", "27"), "iva_10_5": ("vat", "10.5"), "iva_21": ("vat", "21"), "iva_27": ("vat", "27")}
# API field → file column, to name the column of a validation error.
FIELD_COLUMN = {"supplier": "proveedor", "issuer_cuit": "cuit_emisor", "type": "tipo", "point_of_sale": "punto_venta",
                "number": "numero", "date": "fecha", "cae": "cae", "cae_due": "cae_vencimiento",
                "perception_iibb": "percepcion_iibb", "perception_vat": "percepcion_iva", "total": "total",
                "barcode": "codigo_barras", "sku": "sku", "supplier_code": "codigo_proveedor",
                "description": "descripcion", "quantity": "cantidad", "unit_cost": "costo_unitario", "vat_rate": "iva",
                "discount_pct": "descuento"}
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True)
class ParsedInvoice:
    first_row: int
    payload: InvoiceIn


def _bad(row: int, column: str, problem: str) -> InvalidInput:
    return InvalidInput(f"fila {row}, columna {column}: {problem}", code="archivo_invalido",
                        details={"row": row, "column": column, "problem": problem})


def read_rows(body: bytes) -> list[dict[str, str]]:
    """The file's rows as dicts by column (XLSX by its zip signature, else CSV with ; or ,)."""
    if not body.strip():
        raise InvalidInput("archivo: el archivo está vacío; descargá la plantilla en /api/invoices/template.csv",
                           code="archivo_invalido")
    table = _xlsx_table(body) if body[:4] == b"PK\x03\x04" else _csv_table(body)
    if not table:
        raise InvalidInput("archivo: el archivo no tiene filas", code="archivo_invalido")
    names = [str(c or "").strip().lower() for c in table[0]]
    unknown = [n for n in names if n and n not in COLUMNS]
    if unknown:
        raise _bad(1, unknown[0], f"columna desconocida; las columnas válidas son: {', '.join(COLUMNS)}")
    missing = [c for c in REQUIRED if c not in names] + ([] if {"proveedor", "cuit_emisor"} & set(names)
                                                          else ["proveedor o cuit_emisor"])
    if missing:
        raise _bad(1, missing[0], "falta esta columna (descargá la plantilla en /api/invoices/template.csv)")
    if len(table) - 1 > MAX_ROWS:
        raise InvalidInput(f"archivo: tiene {len(table) - 1} filas; el máximo es {MAX_ROWS} por archivo",
                           code="archivo_invalido")
    rows = []
    for values in table[1:]:
        cells = [_text(v) for v in values]
        rows.append({name: cells[i] if i < len(cells) else "" for i, name in enumerate(names) if name})
    return rows


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return str(Decimal(repr(value)))
    return str(value).strip()


def _csv_table(body: bytes) -> list[list[str]]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = body.decode("cp1252", errors="replace")  # Excel in Spanish saves CSV this way
    if "\x00" in text:
        raise InvalidInput("archivo: no es un CSV de texto (tiene caracteres NUL)", code="archivo_invalido")
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    try:
        return [row for row in csv.reader(io.StringIO(text, newline=None), delimiter=delimiter)
                if any(c.strip() for c in row)]
    except csv.Error as exc:
        raise InvalidInput("archivo: el CSV no se puede leer (comillas o saltos de línea sueltos); "
                           "guardalo de nuevo como CSV", code="archivo_invalido") from exc


def _xlsx_table(body: bytes) -> list[list[object]]:
    from openpyxl import load_workbook  # only files that are spreadsheets pay for the import

    try:
        book = load_workbook(io.BytesIO(body), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError) as exc:
        raise InvalidInput("archivo: no es un XLSX válido; guardalo como libro de Excel (.xlsx) o como CSV",
                           code="archivo_invalido") from exc
    try:
        rows = []
        for values in book.worksheets[0].iter_rows(values_only=True, max_col=len(COLUMNS) + 5):
            if len(rows) > MAX_ROWS + 1:  # stop reading: the size check below reports it
                break
            if any(v not in (None, "") for v in values):
                rows.append(list(values))
        return rows
    finally:
        book.close()


def _decimal(raw: str, row: int, column: str) -> Decimal:
    text = raw.replace("$", "").replace(" ", "")
    if "," in text and "." in text:  # 1.234,56 (es-AR) or 1,234.56
        text = text.replace(".", "").replace(",", ".") if text.rfind(",") > text.rfind(".") else text.replace(",", "")
    elif "," in text:
        text = text.replace(",", ".")
    try:
        return plain_decimal(text)  # refuses 1_000, Arabic-Indic digits, exponents, NaN
    except (ValueError, InvalidOperation) as exc:
        raise _bad(row, column, f"'{raw}' no es un número escrito con dígitos 0-9 (ej. 1234,56)") from exc


def _date(raw: str, row: int, column: str) -> str:
    if "/" in raw:
        try:
            day, month, year = (int(p) for p in raw.split("/"))
            return date(year, month, day).isoformat()
        except ValueError as exc:
            raise _bad(row, column, f"'{raw}' no es una fecha (dd/mm/aaaa o aaaa-mm-dd)") from exc
    return raw


def parse_invoices(body: bytes) -> list[ParsedInvoice]:
    """Group rows into invoices and validate each; the first problem is raised naming row and column."""
    groups: dict[tuple[str, ...], list[tuple[int, dict[str, str]]]] = {}
    for n, row in enumerate(read_rows(body), 2):
        key = (row.get("proveedor", ""), row.get("cuit_emisor", ""), row.get("tipo", ""), row.get("punto_venta", ""),
               row.get("numero", ""))
        groups.setdefault(key, []).append((n, row))
    return [_invoice(rows) for rows in groups.values()]


def _header(rows: list[tuple[int, dict[str, str]]]) -> dict[str, str]:
    first_row, first = rows[0]
    for n, row in rows[1:]:
        for column in HEADER:
            if row.get(column) and first.get(column) and row[column] != first[column]:
                raise _bad(n, column, f"'{row[column]}' no coincide con '{first[column]}' de la fila {first_row} "
                                      "(misma factura)")
    return {c: next((row.get(c, "") for _, row in rows if row.get(c)), "") for c in HEADER}


def _invoice(rows: list[tuple[int, dict[str, str]]]) -> ParsedInvoice:
    first_row = rows[0][0]
    head = _header(rows)
    payload: dict = {"supplier": head["proveedor"] or None, "issuer_cuit": head["cuit_emisor"] or None,
                     "type": head["tipo"].upper(), "date": _date(head["fecha"], first_row, "fecha"),
                     "cae": head["cae"] or None, "total": _money(head, "total", first_row),
                     "cae_due": _date(head["cae_vencimiento"], first_row, "cae_vencimiento") or None}
    if "-" in head["numero"]:
        try:
            payload["point_of_sale"], payload["number"] = parse_invoice_number(head["numero"])
        except ValueError as exc:
            raise _bad(first_row, "numero", str(exc)) from exc
    else:
        payload["point_of_sale"], payload["number"] = head["punto_venta"], head["numero"]
    for column, field in (("percepcion_iibb", "perception_iibb"), ("percepcion_iva", "perception_vat")):
        if head[column]:
            payload[field] = _money(head, column, first_row)
    payload["lines"] = [_line(n, row) for n, row in rows]
    amounts = {c: _money(head, c, first_row) for c in RATE_COLUMNS if head[c]}
    if amounts:
        payload["net"] = {RATE_COLUMNS[c][1]: v for c, v in amounts.items() if RATE_COLUMNS[c][0] == "net"}
        payload["vat"] = {RATE_COLUMNS[c][1]: v for c, v in amounts.items() if RATE_COLUMNS[c][0] == "vat"}
    else:  # no per-rate columns: the breakdown is the lines' own
        _computed_breakdown(payload, rows)
    try:
        return ParsedInvoice(first_row=first_row, payload=InvoiceIn.model_validate(payload))
    except ValidationError as exc:
        raise _validation_error(exc, rows) from exc


def _money(head: dict[str, str], column: str, row: int) -> Decimal | str:
    return _decimal(head[column], row, column) if head[column] else ""


def _line(n: int, row: dict[str, str]) -> dict:
    if not any(row.get(c) for c in ("codigo_barras", "sku", "codigo_proveedor", "descripcion")):
        raise _bad(n, "codigo_barras", "la línea necesita código de barras, SKU, código del proveedor o descripción")
    line: dict = {field: row.get(column) or None for field, column in
                  (("barcode", "codigo_barras"), ("sku", "sku"), ("supplier_code", "codigo_proveedor"),
                   ("description", "descripcion"))}
    for field, column in (("quantity", "cantidad"), ("unit_cost", "costo_unitario"), ("vat_rate", "iva"),
                          ("discount_pct", "descuento")):
        if row.get(column):
            line[field] = _decimal(row[column], n, column)
    return line


def _computed_breakdown(payload: dict, rows: list[tuple[int, dict[str, str]]]) -> None:
    try:
        lines = [LineAmount(Decimal(line["quantity"]), Decimal(line["unit_cost"]),
                            Decimal(line.get("vat_rate", "21")), Decimal(line.get("discount_pct", "0")))
                 for line in payload["lines"]]
    except KeyError:
        return  # a missing amount: InvoiceIn names it with its row below
    if any(line.vat_rate not in RATES for line in lines):
        return  # an unknown rate: InvoiceIn names the line's iva column below
    nets, vats = breakdown_from_lines(payload["type"], lines)
    payload["net"] = {rate_label(r): v for r, v in nets.items()}
    payload["vat"] = {rate_label(r): v for r, v in vats.items()}


def _validation_error(exc: ValidationError, rows: list[tuple[int, dict[str, str]]]) -> InvalidInput:
    err = exc.errors()[0]
    loc = err.get("loc", ())
    row = rows[0][0]
    if len(loc) >= 3 and loc[0] == "lines" and isinstance(loc[1], int):
        row, field = rows[loc[1]][0], str(loc[2])
    else:
        field = str(loc[0]) if loc else "archivo"
    column = FIELD_COLUMN.get(field, {"net": "neto_*", "vat": "iva_*"}.get(field, field))
    message = str(err.get("msg", "valor inválido")).removeprefix("Value error, ")
    return _bad(row, column, message if err.get("type") == "value_error" else spanish_message(err))

