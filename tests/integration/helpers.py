"""Small helpers shared by the HTTP integration tests (no fixtures here; see tests/conftest.py)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from minimarket.reports.recount import aggregate_mismatches
from minimarket.stock.models import Movement
from minimarket.stock.verify import verify_ledger

STORE_TZ = ZoneInfo("America/Argentina/Buenos_Aires")

# Phrases of framework defaults that must never reach a store employee untranslated.
ENGLISH_MARKERS = ("Input should", "Field required", "Extra inputs", "There was an error", "Value error",
                   "should be", "must be", "is not a valid", "Not Found", "Internal Server Error",
                   "Method Not Allowed", "Unprocessable", "unable to parse")


def error_of(response, status: int, *, code: str | None = None, mentions: tuple[str, ...] | str = ()) -> dict:
    """Assert the one error shape, a status, and a Spanish message that names what is wrong."""
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.text[:500]}"
    assert response.headers["content-type"].startswith("application/json"), response.headers["content-type"]
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["code"], str) and error["code"], error
    assert isinstance(error["message"], str) and error["message"].strip(), error
    for marker in ENGLISH_MARKERS:
        assert marker not in error["message"], f"untranslated message: {error['message']!r}"
    if code is not None:
        assert error["code"] == code, error
    for word in (mentions,) if isinstance(mentions, str) else mentions:
        assert word in error["message"], f"{word!r} not named in {error['message']!r}"
    return error


def assert_ledger_clean(app) -> None:  # noqa: ANN001
    """Every cached balance equals its ledger sum and its last row's balance_after."""
    with app.state.db.read() as session:
        report = verify_ledger(session)
    assert report.ok, [m.problem + f" ({m.sku}@{m.location})" for m in report.mismatches]
    with app.state.db.read() as session:
        found = aggregate_mismatches(session)
    assert not found, [a.problem for a in found]


def movement_rows(app) -> int:  # noqa: ANN001
    with app.state.db.read() as session:
        return session.scalar(select(func.count()).select_from(Movement))


def create_product(client, headers: dict[str, str], sku: str, **fields: Any) -> dict:  # noqa: ANN001
    body = {"sku": sku, "name": fields.pop("name", f"Producto {sku}"), **fields}
    response = client.post("/api/inventory", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def stock_by_location(client, headers: dict[str, str], sku: str) -> dict[str, Decimal]:  # noqa: ANN001
    response = client.get(f"/api/inventory/{sku}", headers=headers)
    assert response.status_code == 200, response.text
    return {row["location"]: Decimal(row["quantity"]) for row in response.json()["locations"]}


def total_stock(client, headers: dict[str, str], sku: str) -> Decimal:  # noqa: ANN001
    response = client.get(f"/api/inventory/{sku}", headers=headers)
    assert response.status_code == 200, response.text
    return Decimal(response.json()["stock"])


def store_today() -> str:
    return datetime.now(STORE_TZ).date().isoformat()


def metric_value(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus exposition (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def metric_labels(text: str, name: str) -> list[dict[str, str]]:
    return [dict(sample.labels) for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == name]
