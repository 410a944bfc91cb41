"""Stored answers to retried writes are kept at least 24 h and purged after the retention window."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from minimarket.apps import _purge_idempotency
from minimarket.config import Settings
from minimarket.platform.idempotency import IdempotencyRecord
from minimarket.types import utcnow


def _store(app, key: str, age: timedelta) -> None:  # noqa: ANN001
    with app.state.db.write() as session:
        session.add(IdempotencyRecord(key=key, request_hash="h", status_code=201, response="{}",
                                      created_at=utcnow() - age))


def _keys(app) -> set[str]:  # noqa: ANN001
    with app.state.db.read() as session:
        return set(session.scalars(select(IdempotencyRecord.key)))


def test_the_purge_removes_only_answers_older_than_the_window(app):  # noqa: ANN001
    window = app.state.settings.idempotency_ttl_hours
    _store(app, "k:fresh", timedelta(hours=1))
    _store(app, "k:a-day-old", timedelta(hours=24, minutes=5))
    _store(app, "k:expired", timedelta(hours=window + 1))
    assert _purge_idempotency(app) == 1
    assert _keys(app) == {"k:fresh", "k:a-day-old"}


def test_a_retry_after_the_purge_of_an_old_key_is_a_new_operation(client, admin, app):  # noqa: ANN001
    client.post("/api/inventory", json={"sku": "YER", "name": "Yerba", "initial_stock": 5}, headers=admin)
    headers = {**admin, "Idempotency-Key": "viejo-1"}
    first = client.post("/api/inventory/YER/movements", json={"type": "venta", "quantity": 1}, headers=headers)
    assert first.status_code == 201
    with app.state.db.write() as session:
        for record in session.scalars(select(IdempotencyRecord)):
            record.created_at = utcnow() - timedelta(hours=app.state.settings.idempotency_ttl_hours + 1)
    assert _purge_idempotency(app) == 1
    again = client.post("/api/inventory/YER/movements", json={"type": "venta", "quantity": 1}, headers=headers)
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert again.json()["balance_after"] == "3.000"


def test_the_window_cannot_be_set_below_24_hours():
    with pytest.raises(ValidationError):
        Settings(_env_file=None, idempotency_ttl_hours=12)
