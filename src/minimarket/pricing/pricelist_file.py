"""Reading a supplier's price list (CSV or XLSX): columns `codigo` and `costo`, limits checked before parsing.

Pure of the database: it returns (line, code, cost) rows or raises InvalidInput naming every
bad line and field, so a bad file changes nothing.
"""

from __future__ import annotations

import csv
import io
import unicodedata
import zipfile
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from minimarket.errors import InvalidInput
from minimarket.pricing.rules import MONEY_MAX
from minimarket.plain_input import plain_decimal

MAX_FILE_BYTES = 1_048_576  # the same 1 MiB as a request body
MAX_ROWS = 20_000
MAX_XLSX_UNPACKED = 32 * 1_048_576  # a zip bomb is refused before openpyxl opens it
MAX_ERRORS_SHOWN = 20
REQUIRED = ("codigo", "costo")
IGNORED = ("descripcion", "nombre", "producto", "marca", "unidad")


def _plain(name: object) -> str:
    text = unicodedata.normalize("NFKD", str(name or "")).encode("ascii", "ignore").decode().strip().lower()
    return text.replace(" ", "_")


def parse_cost(raw: object) -> Decimal:
    """'1.234,56', '1234,56', '1234.56', '$ 1234' or a number → Decimal half-up to cents (ValueError if not)."""
    if isinstance(raw, (int, float, Decimal)) and not isinstance(raw, bool):
        value = Decimal(str(raw))
    else:
        text = str(raw or "").replace("$", "").replace(" ", "").strip()
        if "," in text:
            text = text.replace(".", "").replace(",", ".")
        try:
            value = plain_decimal(text)  # refuses 1_000, Arabic-Indic digits, exponents, NaN
        except (ValueError, InvalidOperation):
            raise ValueError("no es un importe escrito con dígitos 0-9 (ej. 1234,56)") from None
    if not value.is_finite():
        raise ValueError("no es un importe (ej. 1234,56)")
    value = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if value <= 0:
        raise ValueError("debe ser mayor que 0")
    if value > MONEY_MAX:
        raise ValueError(f"supera el máximo {MONEY_MAX}")
    return value


def _header(cells: list[object]) -> dict[str, int]:
    names = [_plain(c) for c in cells]
    unknown = [str(c) for c, n in zip(cells, names, strict=True) if n and n not in REQUIRED + IGNORED]
    missing = [r for r in REQUIRED if r not in names]
    if unknown or missing:
        parts = ([f"faltan las columnas {', '.join(missing)}"] if missing else []) + \
                ([f"columnas desconocidas: {', '.join(unknown)}"] if unknown else [])
        raise InvalidInput(f"línea 1: {'; '.join(parts)}. El archivo lleva las columnas codigo (código del "
                           "proveedor, código de barras o SKU) y costo (neto de IVA)",
                           details={"line": 1, "missing": missing, "unknown": unknown})
    return {name: names.index(name) for name in REQUIRED}


def _rows_from_csv(content: bytes) -> list[list[object]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = content.decode("latin-1")  # spreadsheets on Windows still save CSV in ANSI
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    try:  # universal newlines: a stray carriage return ends a row instead of breaking the reader
        return [row for row in csv.reader(io.StringIO(text, newline=None), delimiter=delimiter)]
    except csv.Error as exc:  # a NUL: what a spreadsheet never writes
        raise InvalidInput("file: el CSV no se puede leer (tiene caracteres NUL o no es texto); guardalo de nuevo "
                           "como CSV o XLSX", details={"field": "file"}) from exc


def _rows_from_xlsx(content: bytes) -> list[list[object]]:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise InvalidInput("file: no es un archivo XLSX válido; guardalo como .xlsx o .csv",
                           details={"field": "file"}) from None
    if unpacked > MAX_XLSX_UNPACKED:
        raise InvalidInput(f"file: el XLSX descomprimido ocupa {unpacked // 1_048_576} MB; el máximo es "
                           f"{MAX_XLSX_UNPACKED // 1_048_576} MB", details={"field": "file"})
    from openpyxl import load_workbook  # imported on use: only imports need it

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many types for a damaged file
        raise InvalidInput(f"file: no se pudo leer el XLSX ({type(exc).__name__}); guardalo de nuevo o usá CSV",
                           details={"field": "file"}) from None
    try:
        rows = []
        for row in book.worksheets[0].iter_rows(values_only=True):
            rows.append(list(row))
            if len(rows) > MAX_ROWS + 1:
                break
        return rows
    finally:
        book.close()


def read_price_list(content: bytes, filename: str) -> list[tuple[int, str, Decimal]]:
    """(line, code, cost) per data row; InvalidInput naming each bad line and field (nothing is half-read)."""
    if len(content) > MAX_FILE_BYTES:
        raise InvalidInput(f"file: el archivo pesa {len(content)} bytes; el máximo es {MAX_FILE_BYTES} (1 MiB). "
                           "Partilo en varios", details={"field": "file"})
    if not content:
        raise InvalidInput("file: el archivo está vacío", details={"field": "file"})
    xlsx = filename.lower().endswith(".xlsx") or content[:2] == b"PK"
    rows = _rows_from_xlsx(content) if xlsx else _rows_from_csv(content)
    rows = [r for r in rows if any(str(c or "").strip() for c in r)]
    if not rows:
        raise InvalidInput("file: el archivo no tiene filas", details={"field": "file"})
    if len(rows) - 1 > MAX_ROWS:
        raise InvalidInput(f"file: más de {MAX_ROWS} filas; partí la lista en varios archivos",
                           details={"field": "file"})
    columns = _header(rows[0])
    parsed, errors, seen = [], [], {}
    for line, row in enumerate(rows[1:], start=2):
        cells = list(row) + [None] * (max(columns.values()) + 1 - len(row))
        code = str(cells[columns["codigo"]] or "").strip()
        if isinstance(cells[columns["codigo"]], float) and cells[columns["codigo"]].is_integer():
            code = str(int(cells[columns["codigo"]]))  # a barcode typed into a spreadsheet cell
        if not code or len(code) > 60:
            errors.append({"line": line, "field": "codigo", "problem": "vacío" if not code else "más de 60 caracteres"})
            continue
        try:
            cost = parse_cost(cells[columns["costo"]])
        except ValueError as exc:
            errors.append({"line": line, "field": "costo", "problem": str(exc)})
            continue
        if code.upper() in seen:
            errors.append({"line": line, "field": "codigo", "problem": f"repetido (ya está en la línea {seen[code.upper()]})"})
            continue
        seen[code.upper()] = line
        parsed.append((line, code, cost))
    if errors:
        shown = "; ".join(f"línea {e['line']}, {e['field']}: {e['problem']}" for e in errors[:MAX_ERRORS_SHOWN])
        more = f" (y {len(errors) - MAX_ERRORS_SHOWN} más)" if len(errors) > MAX_ERRORS_SHOWN else ""
        raise InvalidInput(f"La lista tiene {len(errors)} línea(s) con errores y no se aplicó nada: {shown}{more}",
                           details={"errors": errors[:100]})
    return parsed
