"""Helpers for the supplier invoice tests: a store with a supplier and products, a valid invoice body."""

from __future__ import annotations

from decimal import Decimal

from tests.integration.helpers import create_product

CUIT = "30-71234567-1"
YERBA_BARCODE = "7790387000016"


def supplier_store(client, admin) -> int:  # noqa: ANN001
    """A supplier with CUIT and three products it sells; returns the supplier id."""
    response = client.post("/api/suppliers", json={"name": "Distribuidora Del Plata S.A.", "cuit": CUIT,
                                                   "lead_time_days": 2, "order_days": ["lunes", "jueves"]},
                           headers=admin)
    assert response.status_code == 201, response.text
    create_product(client, admin, "YERBA-1", name="Yerba mate 1 kg", barcode=YERBA_BARCODE, cost="1000.00",
                   price="1700.00", supplier=CUIT)
    create_product(client, admin, "AZUCAR-1", name="Azúcar 1 kg", cost="800.00", price="1300.00", vat_rate="10.5")
    create_product(client, admin, "FIDEOS-1", name="Fideos 500 g", cost="500.00", price="900.00")
    return response.json()["id"]


def invoice_body(number: int = 12345, **overrides) -> dict:  # noqa: ANN003
    """Factura A 0003-<number>: yerba by barcode, azúcar by SKU with 10 % off, fideos by the supplier's code."""
    lines = [
        {"barcode": YERBA_BARCODE, "description": "Yerba 1 kg", "quantity": "12", "unit_cost": "1033.33"},
        {"sku": "azucar-1", "quantity": "3", "unit_cost": "850.10", "vat_rate": "10.5", "discount_pct": "10"},
        {"supplier_code": "FID-500", "description": "Fideos", "quantity": "10", "unit_cost": "520.00"},
    ]
    body = {"supplier": CUIT, "type": "A", "point_of_sale": 3, "number": number, "date": "2026-11-20",
            "net": {"21": "17599.96", "10.5": "2295.27"}, "vat": {"21": "3695.99", "10.5": "241.00"},
            "perception_iibb": "100.00", "total": "23932.22", "cae": "76123456789012", "cae_due": "2026-11-30",
            "lines": lines}
    return {**body, **overrides}


def total_of(body: dict) -> Decimal:
    return sum((Decimal(v) for v in (*body["net"].values(), *body["vat"].values())), Decimal("0")) + \
        Decimal(body.get("perception_iibb", "0")) + Decimal(body.get("perception_vat", "0"))
