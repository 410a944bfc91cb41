"""Products over HTTP on SQLite and PostgreSQL: create, list with filters and pages, read, edit, deactivate."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.integration.helpers import (
    assert_ledger_clean,
    create_product,
    error_of,
    movement_rows,
    stock_by_location,
)

YERBA_EAN = "7790387000016"
AZUCAR_EAN = "7790580000011"
COCA_EAN = "7790895000010"


@pytest.fixture(autouse=True)
def _ledger_stays_consistent(app):  # noqa: ANN001, ANN202
    yield
    assert_ledger_clean(app)


def skus(response) -> list[str]:  # noqa: ANN001
    assert response.status_code == 200, response.text
    return [item["sku"] for item in response.json()["items"]]


# --- create -----------------------------------------------------------------------------------------


def test_create_records_initial_stock_as_an_entrada_in_dep(client, admin):
    r = client.post("/api/inventory", headers=admin, json={
        "sku": "yer-001", "name": "Yerba Mate Suave 1 kg", "barcode": YERBA_EAN, "brand": "Playadito",
        "category": "Almacén", "supplier": "Distribuidora Sur", "cost": "2500.00", "price": "4200.50",
        "vat_rate": "21", "min_stock": 5, "initial_stock": 12,
    })
    assert r.status_code == 201, r.text
    product = r.json()
    assert product["sku"] == "YER-001"
    assert (product["barcode"], product["category"], product["supplier"]) == (YERBA_EAN, "Almacén", "Distribuidora Sur")
    assert (product["cost"], product["price"], product["stock"]) == ("2500.00", "4200.50", "12.000")
    assert product["active"] is True and product["low_stock"] is False
    assert product["locations"] == [{"location": "DEP", "name": "Depósito", "quantity": "12.000"}]

    ledger = client.get("/api/movements", params={"sku": "YER-001"}, headers=admin).json()["items"]
    assert len(ledger) == 1
    entry = ledger[0]
    assert (entry["type"], entry["location"], entry["quantity"], entry["balance_after"]) == (
        "entrada", "DEP", "12.000", "12.000")
    assert entry["actor"] == "apikey:test-admin"


def test_create_without_initial_stock_writes_no_movement(client, admin, app):
    product = create_product(client, admin, "SIN-STOCK", initial_stock=0)
    assert product["stock"] == "0.000" and product["locations"] == []
    assert product["low_stock"] is True  # 0 ≤ min_stock 0
    assert movement_rows(app) == 0


def test_initial_stock_can_go_to_another_location(client, admin):
    create_product(client, admin, "GOND-1", initial_stock=3, location="sal")
    assert stock_by_location(client, admin, "GOND-1") == {"SAL": Decimal(3)}


def test_sku_is_case_insensitive_and_unique(client, admin, app):
    create_product(client, admin, "alm-0001", initial_stock=4)
    for clash in ("ALM-0001", "Alm-0001", "  alm-0001 "):
        r = client.post("/api/inventory", json={"sku": clash, "name": "Otro"}, headers=admin)
        error_of(r, 409, code="sku_duplicado", mentions="ALM-0001")
    assert client.get("/api/inventory/alm-0001", headers=admin).json()["name"] == "Producto alm-0001"
    listed = client.get("/api/inventory", params={"q": "alm-0001"}, headers=admin).json()["items"]
    assert [p["sku"] for p in listed] == ["ALM-0001"]
    assert movement_rows(app) == 1  # the refused twins recorded no opening stock


def test_duplicate_barcode_is_refused_naming_the_owner(client, admin):
    create_product(client, admin, "YERBA-1", barcode=YERBA_EAN)
    r = client.post("/api/inventory", json={"sku": "YERBA-2", "name": "Otra yerba", "barcode": YERBA_EAN},
                    headers=admin)
    error_of(r, 409, code="codigo_barras_duplicado", mentions=("YERBA-1", YERBA_EAN))
    assert client.get("/api/inventory/YERBA-2", headers=admin).status_code == 404

    create_product(client, admin, "YERBA-2", barcode=AZUCAR_EAN)
    r = client.patch("/api/inventory/YERBA-2", json={"barcode": YERBA_EAN}, headers=admin)
    error_of(r, 409, code="codigo_barras_duplicado", mentions="YERBA-1")
    assert client.get("/api/inventory/YERBA-2", headers=admin).json()["barcode"] == AZUCAR_EAN


def test_category_and_supplier_are_created_by_name_once(client, admin):
    create_product(client, admin, "GAS-1", category="Bebidas", supplier="Coca-Cola FEMSA")
    create_product(client, admin, "GAS-2", category="bebidas ", supplier="coca-cola femsa")
    create_product(client, admin, "ARR-1", category="Almacén")
    create_product(client, admin, "ARR-2", category="ALMACÉN")  # accents fold too, on both backends
    categories = client.get("/api/categories", headers=admin).json()
    assert [(c["name"], c["products"]) for c in categories] == [("Almacén", 2), ("Bebidas", 2)]
    r = client.get("/api/inventory", params={"supplier": "COCA-COLA FEMSA"}, headers=admin)
    assert skus(r) == ["GAS-1", "GAS-2"]
    assert {p["supplier"] for p in r.json()["items"]} == {"Coca-Cola FEMSA"}
    assert {p["category"] for p in r.json()["items"]} == {"Bebidas"}


# --- list -------------------------------------------------------------------------------------------


@pytest.fixture
def shelf(client, admin):  # noqa: ANN001, ANN201
    """A small store: stock vs minimum chosen so each filter has a distinct answer."""
    create_product(client, admin, "YERBA-1", name="Yerba Mate Suave", brand="Playadito", barcode=YERBA_EAN,
                   category="Almacén", supplier="Distribuidora Sur", min_stock=2, initial_stock=10)
    create_product(client, admin, "AZUCAR-1", name="Azúcar Ledesma 1 kg", barcode=AZUCAR_EAN, category="Almacén",
                   supplier="Distribuidora Sur", min_stock=5, initial_stock=1)
    create_product(client, admin, "COCA-15", name="Coca-Cola 1.5 L", barcode=COCA_EAN, category="Bebidas",
                   supplier="Coca-Cola FEMSA", min_stock=0)
    create_product(client, admin, "VINO-1", name="Vino tinto Malbec", category="Bebidas", min_stock=3,
                   initial_stock=3)
    create_product(client, admin, "VIEJO-1", name="Yerba discontinuada", category="Almacén", initial_stock=2)
    assert client.delete("/api/inventory/VIEJO-1", headers=admin).status_code == 200


@pytest.mark.parametrize(("params", "expected"), [
    ({}, ["AZUCAR-1", "COCA-15", "VINO-1", "YERBA-1"]),
    ({"q": "yerba"}, ["YERBA-1"]),                       # name, any case; the deactivated yerba is hidden
    ({"q": "MATE"}, ["YERBA-1"]),
    ({"q": "AZÚCAR"}, ["AZUCAR-1"]),                     # non-ASCII letters fold too
    ({"q": "playadito"}, ["YERBA-1"]),                   # brand
    ({"q": "coca-1"}, ["COCA-15"]),                      # SKU fragment
    ({"q": AZUCAR_EAN}, ["AZUCAR-1"]),                   # exact barcode
    ({"category": "bebidas"}, ["COCA-15", "VINO-1"]),
    ({"supplier": "distribuidora sur"}, ["AZUCAR-1", "YERBA-1"]),
    ({"low_stock": "true"}, ["AZUCAR-1", "COCA-15", "VINO-1"]),  # stock ≤ min_stock, equality included
    ({"low_stock": "false"}, ["YERBA-1"]),
    ({"out_of_stock": "true"}, ["COCA-15"]),
    ({"out_of_stock": "false"}, ["AZUCAR-1", "VINO-1", "YERBA-1"]),
    ({"category": "ALMACÉN", "low_stock": "true"}, ["AZUCAR-1"]),
    ({"active": "false"}, ["VIEJO-1"]),
    ({"active": "false", "q": "yerba"}, ["VIEJO-1"]),
    ({"q": "no existe nada así"}, []),
])
def test_inventory_filters(client, admin, shelf, params, expected):
    r = client.get("/api/inventory", params=params, headers=admin)
    assert skus(r) == expected
    for item in r.json()["items"]:
        assert item["low_stock"] == (Decimal(item["stock"]) <= Decimal(item["min_stock"]))
        assert item["active"] == (params.get("active") != "false")


def test_list_reports_stock_totals(client, admin, shelf):
    client.post("/api/transfers", headers=admin, json={"from_location": "DEP", "to_location": "SAL",
                                                     "lines": [{"sku": "YERBA-1", "quantity": 4}]})
    items = {p["sku"]: p for p in client.get("/api/inventory", headers=admin).json()["items"]}
    assert items["YERBA-1"]["stock"] == "10.000"  # DEP 6 + SAL 4
    assert items["AZUCAR-1"]["stock"] == "1.000" and items["AZUCAR-1"]["low_stock"] is True


@pytest.mark.parametrize("limit", [0, -1, 501, 10_000])
def test_limit_outside_1_to_500_is_refused(client, admin, limit):
    error_of(client.get("/api/inventory", params={"limit": limit}, headers=admin), 422, mentions="limit")


def test_limit_500_is_accepted(client, admin, shelf):
    assert len(skus(client.get("/api/inventory", params={"limit": 500}, headers=admin))) == 4


def test_cursor_walks_every_page_without_duplicates_or_gaps(client, admin):
    created = [create_product(client, admin, f"P-{i:03d}", category="Almacén" if i % 3 else "Limpieza")["sku"]
               for i in range(23)]
    client.delete("/api/inventory/P-007", headers=admin)
    expected = sorted(set(created) - {"P-007"})

    def walk(params: dict) -> tuple[list[str], int]:
        seen, pages, cursor = [], 0, None
        while True:
            r = client.get("/api/inventory", params={**params, **({"cursor": cursor} if cursor else {})},
                           headers=admin)
            page = skus(r)
            pages += 1
            assert len(page) <= params["limit"]
            seen.extend(page)
            cursor = r.json()["next_cursor"]
            if cursor is None:
                return seen, pages
            assert page, "a page with a next_cursor cannot be empty"
            assert pages < 50, "pagination does not terminate"

    seen, pages = walk({"limit": 5})
    assert seen == expected and pages == 5
    seen, pages = walk({"limit": 11})  # 22 items: the last full page must not announce an empty next page
    assert seen == expected and pages == 2
    seen, _ = walk({"limit": 3, "category": "Limpieza"})
    assert seen == [s for s in expected if int(s[2:]) % 3 == 0]


# --- read -------------------------------------------------------------------------------------------


def test_get_by_sku_in_any_case_or_by_barcode_with_stock_per_location(client, admin):
    create_product(client, admin, "YERBA-1", barcode=YERBA_EAN, initial_stock=10)
    r = client.post("/api/transfers", headers=admin, json={"from_location": "DEP", "to_location": "SAL",
                                                         "lines": [{"sku": "yerba-1", "quantity": 4}]})
    assert r.status_code == 201, r.text
    bodies = [client.get(f"/api/inventory/{ref}", headers=admin) for ref in ("YERBA-1", "yerba-1", "Yerba-1",
                                                                             YERBA_EAN)]
    assert all(b.status_code == 200 for b in bodies), [b.text for b in bodies]
    first = bodies[0].json()
    assert all(b.json() == first for b in bodies)
    assert first["stock"] == "10.000"
    assert first["locations"] == [{"location": "DEP", "name": "Depósito", "quantity": "6.000"},
                                  {"location": "SAL", "name": "Salón de ventas", "quantity": "4.000"}]


def test_get_unknown_product_is_404_naming_it(client, admin):
    error_of(client.get("/api/inventory/NO-EXISTE", headers=admin), 404, code="no_encontrado", mentions="NO-EXISTE")


# --- edit -------------------------------------------------------------------------------------------


def test_patch_changes_only_the_fields_sent(client, admin):
    before = create_product(client, admin, "YERBA-1", name="Yerba Mate Suave", brand="Playadito", barcode=YERBA_EAN,
                            category="Almacén", supplier="Distribuidora Sur", cost="2500", price="4200",
                            min_stock=2, max_stock=40, initial_stock=10)
    r = client.patch("/api/inventory/yerba-1", json={"price": "4599.90"}, headers=admin)
    assert r.status_code == 200, r.text
    after = r.json()
    assert after["price"] == "4599.90"
    unchanged = {k: v for k, v in before.items() if k not in ("price", "updated_at")}
    assert {k: after[k] for k in unchanged} == unchanged

    r = client.patch("/api/inventory/YERBA-1", json={"category": "Infusiones", "brand": None}, headers=admin)
    assert r.status_code == 200, r.text
    assert (r.json()["category"], r.json()["brand"], r.json()["price"]) == ("Infusiones", None, "4599.90")
    assert r.json()["stock"] == "10.000"


@pytest.mark.parametrize("field", ["name", "unit", "cost", "price", "vat_rate", "min_stock", "active"])
def test_patch_null_for_a_required_field_is_422(client, admin, field):
    before = create_product(client, admin, "YERBA-1", price="100")
    error_of(client.patch("/api/inventory/YERBA-1", json={field: None}, headers=admin), 422, mentions=field)
    assert client.get("/api/inventory/YERBA-1", headers=admin).json() == before


def test_patch_cannot_edit_stock_or_break_bounds(client, admin):
    create_product(client, admin, "YERBA-1", min_stock=5, initial_stock=3)
    error_of(client.patch("/api/inventory/YERBA-1", json={"stock": 100}, headers=admin), 422, mentions="stock")
    error_of(client.patch("/api/inventory/YERBA-1", json={"max_stock": 2}, headers=admin), 422, mentions="max_stock")
    error_of(client.patch("/api/inventory/NO-EXISTE", json={"price": 1}, headers=admin), 404, mentions="NO-EXISTE")
    assert client.get("/api/inventory/YERBA-1", headers=admin).json()["stock"] == "3.000"


def test_unit_product_with_fractional_stock_cannot_become_unit(client, admin):
    create_product(client, admin, "QUESO-KG", unit="kg", initial_stock="1.250")
    error_of(client.patch("/api/inventory/QUESO-KG", json={"unit": "u"}, headers=admin), 422, mentions="unit")
    assert client.get("/api/inventory/QUESO-KG", headers=admin).json()["unit"] == "kg"


# --- deactivate -------------------------------------------------------------------------------------


def test_delete_deactivates_and_keeps_history(client, admin, app):
    create_product(client, admin, "YERBA-1", barcode=YERBA_EAN, initial_stock=10, price="100")
    client.post("/api/inventory/YERBA-1/movements", json={"type": "venta", "quantity": 2}, headers=admin)
    history = client.get("/api/movements", params={"sku": "YERBA-1"}, headers=admin).json()["items"]
    assert len(history) == 2

    r = client.delete("/api/inventory/yerba-1", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["active"] is False and r.json()["stock"] == "8.000"
    again = client.get("/api/inventory/YERBA-1", headers=admin)
    assert again.status_code == 200 and again.json()["active"] is False
    assert client.get(f"/api/inventory/{YERBA_EAN}", headers=admin).json()["sku"] == "YERBA-1"
    assert client.get("/api/movements", params={"sku": "YERBA-1"}, headers=admin).json()["items"] == history
    assert skus(client.get("/api/inventory", headers=admin)) == []
    assert skus(client.get("/api/inventory", params={"active": "false"}, headers=admin)) == ["YERBA-1"]

    rows = movement_rows(app)
    error_of(client.post("/api/inventory/YERBA-1/movements", json={"type": "venta", "quantity": 1}, headers=admin),
             409, mentions="YERBA-1")
    error_of(client.post("/api/sales", json={"ticket_id": "T-1", "lines": [{"sku": YERBA_EAN, "quantity": 1}]},
                         headers=admin), 409, mentions="YERBA-1")
    error_of(client.post("/api/movements", json={"lines": [{"sku": "YERBA-1", "type": "venta", "quantity": 1}]},
                         headers=admin), 409, mentions="YERBA-1")
    assert movement_rows(app) == rows
    assert client.get("/api/inventory/YERBA-1", headers=admin).json()["stock"] == "8.000"

    r = client.delete("/api/inventory/YERBA-1", headers=admin)  # deactivating twice is harmless
    assert r.status_code == 200 and r.json()["active"] is False


def test_deactivated_product_leaves_category_counts_and_can_be_reactivated(client, admin):
    create_product(client, admin, "GAS-1", category="Bebidas")
    create_product(client, admin, "GAS-2", category="Bebidas")
    client.delete("/api/inventory/GAS-2", headers=admin)
    assert client.get("/api/categories", headers=admin).json()[0]["products"] == 1
    r = client.patch("/api/inventory/GAS-2", json={"active": True}, headers=admin)
    assert r.status_code == 200 and r.json()["active"] is True
    assert client.get("/api/categories", headers=admin).json()[0]["products"] == 2
