"""Supplier price lists (CSV and XLSX): preview, apply as a batch, undo; a bad file changes nothing."""

from __future__ import annotations

import io
import zipfile

from openpyxl import Workbook
from sqlalchemy import func, select

from minimarket.catalog.price_history import PriceChange
from minimarket.pricing.models import PriceBatch
from tests.integration.helpers import create_product, error_of

BARCODE = "7790387000016"


def _store(client, admin) -> None:  # noqa: ANN001
    create_product(client, admin, "YERBA-1", barcode=BARCODE, cost="1000", price="1640", supplier="Distribuidora Sur")
    create_product(client, admin, "ARROZ-1", cost="500", price="820", supplier="Distribuidora Sur")
    create_product(client, admin, "FIDEO-1", cost="400", price="660")


def _prices(client, admin) -> dict[str, tuple[str, str]]:  # noqa: ANN001
    return {p["sku"]: (p["cost"], p["price"]) for p in client.get("/api/inventory", headers=admin).json()["items"]}


def _xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _post(client, admin, path: str, content: bytes, name: str = "lista.csv", **form):  # noqa: ANN001, ANN003, ANN202
    return client.post(path, headers=admin, files={"file": (name, content)}, data=form)


def test_csv_list_previews_applies_and_undoes(client, admin, app):
    _store(client, admin)
    original = _prices(client, admin)
    content = (f"Código;Costo;Descripción\n{BARCODE};1.150,50;Yerba 1 kg\narroz-1;550;Arroz\n"
               "NO-EXISTE;10;Otro\n").encode("latin-1")
    preview = _post(client, admin, "/api/prices/price-list/preview", content)
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert (body["batch_id"], body["matched"], body["unchanged"]) == (None, 2, 0)
    assert body["unknown"] == [{"line": 4, "code": "NO-EXISTE"}]
    items = {i["sku"]: i for i in body["items"]}
    assert (items["YERBA-1"]["line"], items["YERBA-1"]["cost_after"], items["YERBA-1"]["price_after"]) == (
        2, "1150.50", "1640.00")
    assert items["YERBA-1"]["below_target"] is True  # the cost rose, the price did not
    assert _prices(client, admin) == original

    applied = _post(client, admin, "/api/prices/price-list", content, update_prices="true")
    assert applied.status_code == 201, applied.text
    batch_id = applied.json()["batch_id"]
    after = _prices(client, admin)
    # 1150.50 × 1.35 × 1.21 = 1879.34 → 1880; 550 × 1.35 × 1.21 = 898.43 → 900
    assert after["YERBA-1"] == ("1150.50", "1880.00") and after["ARROZ-1"] == ("550.00", "900.00")
    assert after["FIDEO-1"] == original["FIDEO-1"]
    change = client.get("/api/prices/YERBA-1/history", headers=admin).json()["changes"][0]
    assert (change["reason"], change["batch_id"]) == ("lista_proveedor", batch_id)
    assert client.post(f"/api/prices/batches/{batch_id}/undo", headers=admin).status_code == 201
    assert _prices(client, admin) == original


def test_xlsx_list_with_the_suppliers_own_codes(client, admin, app):
    _store(client, admin)
    from minimarket.suppliers.models import Supplier, SupplierCode
    from minimarket.catalog.models import Product

    with app.state.db.write() as session:
        supplier = session.scalar(select(Supplier).where(Supplier.name == "Distribuidora Sur"))
        product_id = session.scalar(select(Product.id).where(Product.sku == "ARROZ-1"))
        session.add(SupplierCode(supplier_id=supplier.id, code="DS-778", product_id=product_id))
    content = _xlsx([["codigo", "costo"], ["ds-778", 612.345], [int(BARCODE), 1200]])
    body = _post(client, admin, "/api/prices/price-list/preview", content, name="lista.xlsx").json()
    assert body["unknown"] == [{"line": 2, "code": "ds-778"}]  # without the supplier its codes are unknown
    body = _post(client, admin, "/api/prices/price-list", content, name="lista.xlsx",
                 supplier="Distribuidora Sur").json()
    assert body["unknown"] == [] and body["matched"] == 2
    assert _prices(client, admin)["ARROZ-1"] == ("612.35", "820.00")  # half-up to cents; price kept


BAD_FILES = [
    (b"codigo;costo\nYERBA-1;1200\nARROZ-1;abc\n", ("línea 3", "costo")),
    (b"codigo;costo\nYERBA-1;1200\n;50\n", ("línea 3", "codigo")),
    (b"codigo;costo\nYERBA-1;1200\nARROZ-1;-5\n", ("línea 3", "mayor que 0")),
    (b"codigo;costo\nYERBA-1;1200\nyerba-1;1300\n", ("línea 3", "repetido")),
    ("codigo;costo\nYERBA-1;1_200\n".encode(), ("línea 2", "costo", "0-9")),
    (b"codigo;precio\nYERBA-1;1200\n", ("línea 1", "costo", "precio")),
    (b"sku,costo,color\nYERBA-1,1200,rojo\n", ("línea 1", "codigo", "color")),
    (b"", ("file", "vacío")),
    (b"PK\x03\x04 no es un zip", ("file", "XLSX")),
]


def test_a_bad_file_changes_nothing(client, admin, app):
    _store(client, admin)
    before = _prices(client, admin)
    for content, mentions in BAD_FILES:  # one store: nothing may change, so every file meets the same one
        for path in ("/api/prices/price-list/preview", "/api/prices/price-list"):
            error_of(_post(client, admin, path, content), 422, mentions=mentions)
    assert _prices(client, admin) == before
    with app.state.db.read() as session:
        assert session.scalar(select(func.count()).select_from(PriceBatch)) == 0
        assert session.scalar(select(func.count()).select_from(PriceChange)) == 0


def test_limits_are_checked_before_parsing(client, admin, app):
    _store(client, admin)
    big = b"codigo;costo\n" + b"X;1\n" * 300_000  # 1.2 MB
    response = _post(client, admin, "/api/prices/price-list", big)
    assert response.status_code == 413, response.text  # the body limit answers before the route
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"0" * (40 * 1_048_576))
    error_of(_post(client, admin, "/api/prices/price-list", bomb.getvalue(), name="l.xlsx"), 422,
             mentions=("file", "descomprimido"))
    error_of(_post(client, admin, "/api/prices/price-list", b"codigo;costo\nYERBA-1;1200\n",
                   supplier="Nadie SA"), 422, mentions="Nadie SA")
    error_of(client.post("/api/prices/price-list", headers=admin, data={"supplier": "x"}), 422, mentions="file")
    with app.state.db.read() as session:
        assert session.scalar(select(func.count()).select_from(PriceBatch)) == 0
