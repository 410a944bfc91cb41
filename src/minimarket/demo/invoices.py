"""The demo store's suppliers' files and the supplier invoices behind its deliveries.

Every simulated delivery (`entrada` "Entrega de proveedor") becomes a confirmed Factura A of its
supplier, with one line per product at the cost of that day, its IVA per rate and its total
adding up as a real one would; the delivery's ledger rows then point at it (`factura:{id}`),
as a confirmation through the API leaves them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import insert

from minimarket.ar.dates import STORE_TZ
from minimarket.ar.invoices import LineAmount, breakdown_from_lines, line_net, rate_label
from minimarket.demo.bulk import bulk_insert
from minimarket.invoices.models import Invoice, InvoiceLine
from minimarket.invoices.service import NET_FIELDS, VAT_FIELDS

ACTOR = "demo"
DELIVERY = "Entrega de proveedor"
# When each kind of supplier takes orders: fresh goods every weekday, the rest twice a week.
ORDER_DAYS = {1: ["lunes", "martes", "miércoles", "jueves", "viernes", "sábado"], 2: ["lunes", "jueves"],
              3: ["martes"]}


def supplier_fields(key: str, lead_days: int) -> dict:
    """The file of a demo supplier: a code, the days it takes orders, its lead time, a minimum order."""
    return {"codigo": key.upper(), "dias_pedido": ORDER_DAYS.get(lead_days, ["lunes"]),
            "plazo_entrega_dias": lead_days, "pedido_minimo": Decimal(50_000 * lead_days)}


def write_invoices(session, rows: list[tuple], items: Sequence, product_ids: list[int],  # noqa: ANN001
                   supplier_ids: dict[str, int], cuits: dict[str, str], *, seed: int,
                   location_id: int) -> list[tuple]:
    """Insert one confirmed invoice per delivery; returns `rows` with those deliveries' references."""
    rng = random.Random(f"facturas-{seed}")
    deliveries: dict[str, list[tuple]] = {}
    for row in rows:
        # A supplier whose CUIT the operator had already given to another row gets no invoices.
        if row[4] == "entrada" and row[9] == DELIVERY and cuits.get(items[row[2]].supplier):
            deliveries.setdefault(row[11], []).append(row)
    if not deliveries:
        return rows
    headers, lines_of = [], []
    for operation, delivery in deliveries.items():
        supplier = items[delivery[0][2]].supplier
        number = int(delivery[0][10].rsplit("-", 1)[1])  # the remito number "demo:remito:0003-000xxxxx"
        headers.append(_header(rng, operation, delivery, items, supplier_ids[supplier], cuits[supplier], number,
                               location_id))
        lines_of.append(delivery)
    stmt = insert(Invoice.__table__).returning(Invoice.__table__.c.id, sort_by_parameter_order=True)
    ids = list(session.execute(stmt, headers).scalars())
    bulk_insert(session, InvoiceLine.__table__, ("factura_id", "linea", "codigo_barras", "sku", "codigo_proveedor",
                                                 "descripcion", "producto_id", "cantidad", "costo_unitario", "iva",
                                                 "descuento_pct", "neto"), (
        (invoice_id, n, items[r[2]].barcode, items[r[2]].sku, None, items[r[2]].name[:200], product_ids[r[2]], r[5],
         r[7], items[r[2]].iva, Decimal("0"), line_net(r[5], r[7]))
        for invoice_id, delivery in zip(ids, lines_of, strict=True) for n, r in enumerate(delivery, 1)))
    reference = {op: f"factura:{invoice_id}" for op, invoice_id in zip(deliveries, ids, strict=True)}
    return [r[:10] + (reference[r[11]],) + r[11:] if r[4] == "entrada" and r[11] in reference else r for r in rows]


def _header(rng: random.Random, operation: str, delivery: list[tuple], items: Sequence, supplier_id: int,
            cuit: str, number: int, location_id: int) -> dict:
    when = delivery[0][0]
    day = when.astimezone(STORE_TZ).date()
    nets, vats = breakdown_from_lines("A", [LineAmount(r[5], r[7], items[r[2]].iva) for r in delivery])
    amounts = {"neto_no_gravado": Decimal("0"), "neto_10_5": Decimal("0"), "neto_21": Decimal("0"),
               "neto_27": Decimal("0"), "iva_10_5": Decimal("0"), "iva_21": Decimal("0"), "iva_27": Decimal("0")}
    columns = {attr: Invoice.__mapper__.attrs[attr].columns[0].name for attr in (*NET_FIELDS.values(),
                                                                                   *VAT_FIELDS.values())}
    for rate, amount in nets.items():
        amounts[columns[NET_FIELDS[rate_label(rate)]]] = amount
    for rate, amount in vats.items():
        amounts[columns[VAT_FIELDS[rate_label(rate)]]] = amount
    total = sum(amounts.values(), Decimal("0"))
    return {"proveedor_id": supplier_id, "tipo": "A", "punto_venta": 3, "numero": number, "fecha": day,
            "cuit_emisor": cuit, **amounts, "percepcion_iibb": Decimal("0"), "percepcion_iva": Decimal("0"),
            "total": total, "cae": f"7{rng.randrange(10**13):013d}", "cae_vencimiento": day + timedelta(days=10),
            "estado": "confirmada", "ubicacion_id": location_id, "notas": None, "creada_por": ACTOR,
            "creado_en": when - timedelta(minutes=5), "confirmada_por": ACTOR, "confirmada_en": when,
            "anulada_por": None, "anulada_en": None, "motivo_anulacion": None, "operacion_ingreso": operation,
            "operacion_anulacion": None}
