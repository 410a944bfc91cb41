"""One number rule for every dashboard form (web/forms.py's parse_decimal): `1.000` is a thousand, `1,5` one and a
half; exponents, `_` and other scripts' digits are refused with a 422 naming the field."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from tests.integration.helpers import create_product, movement_rows, stock_by_location
from tests.web.helpers import alerts, form_key, sign_in

REFUSED = ("1e3", "1_000", "١٢", "1.0.0,5")


@pytest.fixture
def bulk(client, admin, shop):  # noqa: ANN001, ANN201
    """QUESO-1: cheese sold by the kilo, nothing in stock (besides the shop's YERBA-1 with 100)."""
    create_product(client, admin, "QUESO-1", name="Queso cremoso", unit="kg", cost="5000", price="8000")
    return shop


def test_movement_form_reads_es_ar_thousands_and_decimal_comma(client, app, admin, bulk):
    csrf = sign_in(app, client, "deposito")
    base = {"csrf": csrf, "tipo": "entrada", "ubicacion": "DEP", "motivo": ""}
    thousand = client.post("/movimientos/nuevo", data={**base, "producto": "YERBA-1", "cantidad": "1.000",
                                                         "idempotency_key": form_key(client.get("/movimientos/nuevo").text)})
    assert thousand.status_code == 201, alerts(thousand.text)
    assert stock_by_location(client, admin, "YERBA-1")["DEP"] == Decimal(1100)  # 100 + a thousand, not + 1
    half = client.post("/movimientos/nuevo", data={**base, "producto": "QUESO-1", "cantidad": "1,5",
                                                     "idempotency_key": form_key(thousand.text)})
    assert half.status_code == 201, alerts(half.text)
    assert stock_by_location(client, admin, "QUESO-1")["DEP"] == Decimal("1.5")
    rows = movement_rows(app)
    for raw in REFUSED:
        bad = client.post("/movimientos/nuevo", data={**base, "producto": "QUESO-1", "cantidad": raw,
                                                        "idempotency_key": f"k-{len(raw)}-{raw.encode().hex()}"})
        assert bad.status_code == 422, raw
        assert alerts(bad.text)[0].startswith("Cantidad: ") and "no es un número" in alerts(bad.text)[0], raw
    assert movement_rows(app) == rows


def test_stocktake_reads_es_ar_numbers_from_the_scans_and_back_from_the_review(client, app, admin, bulk):
    csrf = sign_in(app, client, "deposito")
    review = client.post("/recuento/revisar", data={"csrf": csrf, "ubicacion": "DEP",
                                                    "escaneos": "YERBA-1 1.000\nQUESO-1 x 1,5\nQUESO-1 x 1,250"})
    assert review.status_code == 200, review.text
    # the review hands the counts back in the same es-AR form the confirmation reads
    assert re.findall(r'name="contado" value="([^"]+)"', review.text) == ["1.000", "2,75"]
    confirm = client.post("/recuento/confirmar", data={
        "csrf": csrf, "ubicacion": "DEP", "sku": ["YERBA-1", "QUESO-1"], "contado": ["1.000", "2,75"],
        "idempotency_key": form_key(review.text)})
    assert confirm.status_code == 201, alerts(confirm.text)
    assert stock_by_location(client, admin, "YERBA-1")["DEP"] == Decimal(1000)
    assert stock_by_location(client, admin, "QUESO-1")["DEP"] == Decimal("2.75")
    rows = movement_rows(app)
    for raw in REFUSED:
        scanned = client.post("/recuento/revisar", data={"csrf": csrf, "ubicacion": "DEP",
                                                         "escaneos": f"QUESO-1 {raw}"})
        assert scanned.status_code == 422 and alerts(scanned.text)[0].startswith("Línea 1: "), raw
        bad = client.post("/recuento/confirmar", data={"csrf": csrf, "ubicacion": "DEP", "sku": ["QUESO-1"],
                                                       "contado": [raw], "idempotency_key": f"r-{raw.encode().hex()}"})
        assert bad.status_code == 422, raw
        assert alerts(bad.text)[0].startswith("Cantidad: ") and "no es un número" in alerts(bad.text)[0], raw
    assert movement_rows(app) == rows
