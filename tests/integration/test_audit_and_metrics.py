"""Audit trail and Prometheus metrics over HTTP on both backends.

Every change leaves one `auditoria` row naming the API key, the action and the request id; refused,
replayed and read-only requests leave none. Metrics label requests by route template, never by raw
path, and count stock movements only once they are committed.
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from decimal import Decimal

import pytest
import structlog.testing
from sqlalchemy import select

from minimarket.accounts.models import AuditEntry
from tests.integration.helpers import assert_ledger_clean, create_product, error_of, metric_labels, metric_value

SERVICE = "all"


@pytest.fixture(autouse=True)
def _ledger_stays_consistent(app):  # noqa: ANN001, ANN202
    yield
    assert_ledger_clean(app)


def audit_rows(app, **where) -> list[SimpleNamespace]:  # noqa: ANN001, ANN003
    """Audit rows (as plain values, readable after the session closes), oldest first."""
    columns = ("id", "created_at", "actor", "action", "entity", "entity_id", "before", "after", "request_id")
    with app.state.db.read() as session:
        stmt = select(AuditEntry).order_by(AuditEntry.id)
        for column, value in where.items():
            stmt = stmt.where(getattr(AuditEntry, column) == value)
        return [SimpleNamespace(**{c: getattr(row, c) for c in columns}) for row in session.scalars(stmt)]


def rid() -> str:
    return f"req-{uuid.uuid4().hex}"


# --- audit ------------------------------------------------------------------------------------------

# (method, path, body, action, entity, entity_id); run in this order against one store.
CHANGES = [
    ("POST", "/api/inventory", {"sku": "yerba-1", "name": "Yerba", "price": "100", "initial_stock": 10,
                                "category": "Almacén"}, "product.create", "producto", "YERBA-1"),
    ("PATCH", "/api/inventory/YERBA-1", {"price": "150", "name": "Yerba suave"}, "product.update", "producto",
     "YERBA-1"),
    ("POST", "/api/inventory/YERBA-1/movements", {"type": "entrada", "quantity": 5}, "stock.movements", "operacion",
     None),
    ("POST", "/api/movements", {"lines": [{"sku": "YERBA-1", "type": "merma", "quantity": 1},
                                          {"sku": "YERBA-1", "type": "salida", "quantity": 1}]},
     "stock.movements", "operacion", None),
    ("POST", "/api/stocktake", {"lines": [{"sku": "YERBA-1", "counted": 12}]}, "stock.stocktake", "operacion", None),
    ("POST", "/api/transfers", {"from_location": "DEP", "to_location": "SAL",
                                "lines": [{"sku": "YERBA-1", "quantity": 2}]}, "stock.transfer", "operacion", None),
    ("POST", "/api/sales", {"ticket_id": "0001-00000077", "location": "SAL",
                            "lines": [{"sku": "YERBA-1", "quantity": 1}]}, "stock.sale", "venta", "0001-00000077"),
    ("DELETE", "/api/inventory/YERBA-1", None, "product.deactivate", "producto", "YERBA-1"),
]


def test_every_change_writes_one_audit_row_with_actor_action_and_request_id(client, make_key, app):
    headers = {"X-API-Key": make_key("encargado", name="encargada-ana")}
    before = len(audit_rows(app))
    for method, path, body, action, entity, entity_id in CHANGES:
        request_id = rid()
        r = client.request(method, path, json=body, headers={**headers, "X-Request-ID": request_id})
        assert r.status_code in (200, 201), f"{method} {path}: {r.text}"
        assert r.headers["X-Request-ID"] == request_id
        rows = audit_rows(app, request_id=request_id)
        assert len(rows) == 1, f"{method} {path} wrote {len(rows)} audit rows"
        row = rows[0]
        assert (row.actor, row.action, row.entity) == ("apikey:encargada-ana", action, entity)
        if entity_id is not None:
            assert row.entity_id == entity_id
        else:  # stock operations are filed under the operation id the response reports
            operation_id = r.json()["operation_id"]
            assert row.entity_id == operation_id
        assert row.after, f"{action} recorded no 'after' state"
        assert row.created_at is not None
    assert len(audit_rows(app)) == before + len(CHANGES)


def test_patch_audit_has_before_and_after(client, admin, app):
    create_product(client, admin, "YERBA-1", name="Yerba", price="100", cost="60", category="Almacén",
                   barcode="7790387000016")
    request_id = rid()
    r = client.patch("/api/inventory/yerba-1", json={"price": "150.50", "category": "Infusiones", "barcode": None},
                     headers={**admin, "X-Request-ID": request_id})
    assert r.status_code == 200, r.text
    [row] = audit_rows(app, request_id=request_id)
    assert (row.action, row.entity, row.entity_id, row.actor) == ("product.update", "producto", "YERBA-1",
                                                                  "apikey:test-admin")
    assert Decimal(row.before["price"]) == Decimal("100") and Decimal(row.after["price"]) == Decimal("150.50")
    assert (row.before["category"], row.after["category"]) == ("Almacén", "Infusiones")
    assert (row.before["barcode"], row.after["barcode"]) == ("7790387000016", None)
    assert Decimal(row.before["cost"]) == Decimal(row.after["cost"]) == Decimal("60")  # untouched fields stay equal
    assert row.before["name"] == row.after["name"] == "Yerba"


def test_deactivation_audit_records_the_switch(client, admin, app):
    create_product(client, admin, "YERBA-1")
    request_id = rid()
    assert client.delete("/api/inventory/YERBA-1", headers={**admin, "X-Request-ID": request_id}).status_code == 200
    [row] = audit_rows(app, request_id=request_id)
    assert (row.before, row.after) == ({"active": True}, {"active": False})


def test_refused_replayed_unchanged_and_read_requests_write_no_audit(client, admin, make_key, app):
    create_product(client, admin, "YERBA-1", price="100", initial_stock=5)
    lectura = {"X-API-Key": make_key("lectura")}
    first = rid()
    assert client.post("/api/inventory/YERBA-1/movements", json={"type": "entrada", "quantity": 1},
                       headers={**admin, "Idempotency-Key": "k-1", "X-Request-ID": first}).status_code == 201
    assert len(audit_rows(app, request_id=first)) == 1
    attempts = [
        ("POST", "/api/inventory/YERBA-1/movements", {"type": "venta", "quantity": 99}, admin),       # oversell
        ("POST", "/api/inventory/YERBA-1/movements", {"type": "entrada", "quantity": 1},
         {**admin, "Idempotency-Key": "k-1"}),                                                       # replay
        ("POST", "/api/inventory/YERBA-1/movements", {"type": "entrada", "quantity": 1}, lectura),   # 403
        ("POST", "/api/inventory", {"sku": "YERBA-1", "name": "Otra"}, admin),                        # duplicate
        ("PATCH", "/api/inventory/YERBA-1", {"price": "100"}, admin),                                 # no change
        ("PATCH", "/api/inventory/YERBA-1", {"price": -1}, admin),                                    # 422
        ("POST", "/api/sales", {"ticket_id": "T-1", "lines": [{"sku": "YERBA-1", "quantity": 50}]}, admin),
        ("GET", "/api/inventory/YERBA-1", None, admin),
        ("GET", "/api/movements", None, admin),
    ]
    total = len(audit_rows(app))
    for method, path, body, headers in attempts:
        request_id = rid()
        r = client.request(method, path, json=body, headers={**headers, "X-Request-ID": request_id})
        assert r.status_code in (200, 201, 403, 409, 422), r.text
        assert audit_rows(app, request_id=request_id) == [], f"{method} {path} ({r.status_code}) wrote an audit row"
    assert len(audit_rows(app)) == total


def test_a_generated_request_id_is_returned_and_audited(client, admin, app):
    r = client.post("/api/inventory", json={"sku": "YERBA-1", "name": "Yerba"}, headers=admin)
    assert r.status_code == 201
    generated = r.headers["X-Request-ID"]
    assert len(generated) >= 16
    [row] = audit_rows(app, request_id=generated)
    assert row.action == "product.create"
    # An oversized X-Request-ID is cut to the column's 64 characters, not refused and not a 500.
    long_id = "x" * 200
    r = client.post("/api/inventory", json={"sku": "YERBA-2", "name": "Yerba"},
                    headers={**admin, "X-Request-ID": long_id})
    assert r.status_code == 201 and r.headers["X-Request-ID"] == long_id[:64]
    assert len(audit_rows(app, request_id=long_id[:64])) == 1


# --- metrics ----------------------------------------------------------------------------------------


def scrape(client) -> str:  # noqa: ANN001
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


def requests_total(text: str, method: str, endpoint: str, status: str) -> float:
    return metric_value(text, "http_requests_total", service=SERVICE, method=method, endpoint=endpoint, status=status)


def test_http_metrics_use_the_route_template_never_the_raw_path(client, admin):
    sku = f"MET-{uuid.uuid4().hex[:8].upper()}"
    missing = f"FALTA-{uuid.uuid4().hex[:8].upper()}"
    create_product(client, admin, sku, barcode="7790387000016")
    before = scrape(client)
    for ref in (sku, sku.lower(), "7790387000016"):
        assert client.get(f"/api/inventory/{ref}", headers=admin).status_code == 200
    assert client.get(f"/api/inventory/{missing}", headers=admin).status_code == 404
    assert client.get(f"/api/inventory/{sku}").status_code == 401
    after = scrape(client)

    template = "/api/inventory/{sku}"
    assert requests_total(after, "GET", template, "200") - requests_total(before, "GET", template, "200") == 3
    assert requests_total(after, "GET", template, "404") - requests_total(before, "GET", template, "404") == 1
    assert requests_total(after, "GET", template, "401") - requests_total(before, "GET", template, "401") == 1
    for raw in (sku, sku.lower(), missing, "7790387000016"):
        assert raw not in after, f"raw path value {raw!r} leaked into the metrics"

    count = "http_request_duration_seconds_count"
    labels = {"service": SERVICE, "method": "GET", "endpoint": template}
    assert metric_value(after, count, **labels) - metric_value(before, count, **labels) == 5
    buckets = [s for s in metric_labels(after, "http_request_duration_seconds_bucket")
               if s.get("endpoint") == template and s.get("method") == "GET" and s.get("service") == SERVICE]
    assert {"0.3", "+Inf"} <= {s["le"] for s in buckets}  # dense around the 300 ms objective
    assert metric_value(after, "http_request_duration_seconds_bucket", **labels, le="+Inf") == metric_value(
        after, count, **labels)


def test_unknown_paths_share_one_endpoint_label(client, admin):
    noise = [f"/{uuid.uuid4().hex}", f"/api/{uuid.uuid4().hex}", f"/wp-admin/{uuid.uuid4().hex}.php"]
    before = scrape(client)
    for path in noise:
        error_of(client.get(path, headers=admin), 404, code="ruta_inexistente")
    after = scrape(client)
    grown = {labels["endpoint"] for labels in metric_labels(after, "http_requests_total")
             if labels.get("service") == SERVICE and labels.get("method") == "GET" and labels.get("status") == "404"
             and requests_total(after, "GET", labels["endpoint"], "404")
             > requests_total(before, "GET", labels["endpoint"], "404")}
    assert len(grown) == 1, f"unknown paths spread over several label values: {grown}"
    [label] = grown
    assert requests_total(after, "GET", label, "404") - requests_total(before, "GET", label, "404") == len(noise)
    assert not label.startswith("/"), label
    for path in noise:
        assert path.rsplit("/", 1)[-1] not in after


def movements_total(text: str, movement_type: str) -> float:
    return metric_value(text, "minimarket_stock_movements_total", type=movement_type)


def deltas(before: str, after: str) -> dict[str, float]:
    kinds = ("entrada", "venta", "salida", "ajuste", "merma", "devolucion", "transferencia")
    return {k: movements_total(after, k) - movements_total(before, k) for k in kinds
            if movements_total(after, k) != movements_total(before, k)}


def test_stock_movement_counter_counts_committed_movements_only(client, admin):
    before = scrape(client)
    create_product(client, admin, "YERBA-1", price="100", initial_stock=5)
    create_product(client, admin, "AZUCAR-1", price="50", initial_stock=2)
    assert deltas(before, scrape(client)) == {"entrada": 2}

    checkpoint = scrape(client)
    refused_before = metric_value(checkpoint, "minimarket_stock_refused_total")
    error_of(client.post("/api/inventory/YERBA-1/movements", json={"type": "venta", "quantity": 6}, headers=admin),
             409, code="stock_insuficiente")
    error_of(client.post("/api/movements", headers=admin, json={"lines": [
        {"sku": "YERBA-1", "type": "entrada", "quantity": 1},
        {"sku": "AZUCAR-1", "type": "devolucion", "quantity": 1},
        {"sku": "AZUCAR-1", "type": "venta", "quantity": 9}]}), 409, code="stock_insuficiente")
    error_of(client.post("/api/transfers", headers=admin, json={
        "from_location": "DEP", "to_location": "SAL", "lines": [{"sku": "YERBA-1", "quantity": 50}]}), 409)
    error_of(client.post("/api/sales", headers=admin, json={
        "ticket_id": "T-9", "lines": [{"sku": "YERBA-1", "quantity": 1}, {"sku": "AZUCAR-1", "quantity": 3}]}), 409)
    error_of(client.post("/api/inventory/YERBA-1/movements", json={"type": "entrada", "quantity": "1.5"},
                         headers=admin), 422)
    after_refusals = scrape(client)
    assert deltas(checkpoint, after_refusals) == {}, "refused movements were counted"
    assert metric_value(after_refusals, "minimarket_stock_refused_total") - refused_before == 4

    checkpoint = after_refusals
    key = {**admin, "Idempotency-Key": "venta-1"}
    for _ in range(2):  # the replay adds nothing
        assert client.post("/api/inventory/YERBA-1/movements", json={"type": "venta", "quantity": 1},
                           headers=key).status_code == 201
    assert client.post("/api/transfers", headers=admin, json={
        "from_location": "DEP", "to_location": "SAL", "lines": [{"sku": "YERBA-1", "quantity": 2}]}).status_code == 201
    for _ in range(2):
        assert client.post("/api/sales", headers=admin, json={
            "ticket_id": "T-10", "location": "SAL", "lines": [{"sku": "YERBA-1", "quantity": 1}]}).status_code == 201
    assert client.post("/api/stocktake", headers=admin, json={"lines": [
        {"sku": "AZUCAR-1", "counted": 1}, {"sku": "YERBA-1", "counted": 2}]}).status_code == 201  # YERBA unchanged
    assert client.post("/api/movements", headers=admin, json={"lines": [
        {"sku": "AZUCAR-1", "type": "devolucion", "quantity": 1},
        {"sku": "AZUCAR-1", "type": "merma", "quantity": 1},
        {"sku": "YERBA-1", "type": "salida", "quantity": 1}]}).status_code == 201
    assert deltas(checkpoint, scrape(client)) == {"venta": 2, "transferencia": 2, "ajuste": 1, "devolucion": 1,
                                                   "merma": 1, "salida": 1}


def test_movements_rolled_back_after_being_written_are_not_counted(app, admin, client, monkeypatch):
    """The ledger rows are flushed, then the unit of work fails (here: writing the audit row) and rolls back."""
    from fastapi.testclient import TestClient

    from minimarket.accounts import audit

    create_product(client, admin, "YERBA-1", initial_stock=5)
    before = scrape(client)

    def broken_audit(*_args, **_kwargs) -> None:
        raise RuntimeError("the database went away while auditing")

    # The audit row's values, built by the route and by the movement on the event loop (PostgreSQL) alike.
    monkeypatch.setattr(audit, "audit_row", broken_audit)
    with TestClient(app, raise_server_exceptions=False) as fragile, structlog.testing.capture_logs() as logs:
        r = fragile.post("/api/inventory/YERBA-1/movements", json={"type": "venta", "quantity": 2},
                         headers={**admin, "X-Request-ID": "req-auditoria-caida"})
    monkeypatch.undo()
    error_of(r, 500, code="error_interno")
    assert r.json()["error"]["details"]["request_id"] == "req-auditoria-caida"  # what to tell support
    assert [e["error"] for e in logs if e["event"] == "unhandled_error"] == ["RuntimeError"]
    assert deltas(before, scrape(client)) == {}
    assert client.get("/api/inventory/YERBA-1", headers=admin).json()["stock"] == "5.000"
