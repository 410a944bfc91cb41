"""Writes sent with the commit (platform.deferred) and the movement's one-statement look-up (stock.service):
in order, inside the transaction, all or nothing, never left behind by a rollback or a savepoint; the
policy and the location read in that statement are the ones in force."""

from __future__ import annotations

import pytest
from sqlalchemy import func, insert, select, text

from minimarket.accounts.audit import Context, record_audit
from minimarket.accounts.models import AuditEntry
from minimarket.db import Database
from minimarket.platform.deferred import defer, send_deferred
from minimarket.stock.policy import set_negative_stock_allowed
from tests.integration.helpers import assert_ledger_clean, create_product, error_of, stock_by_location

_audit = AuditEntry.__table__
CTX = Context(actor="prueba")


def _audits(db: Database, action: str) -> list[str]:
    with db.read() as session:
        return list(session.scalars(select(_audit.c.entidad_id).where(_audit.c.accion == action)
                                    .order_by(_audit.c.id)))


def _row(action: str, entity_id: str | None):  # noqa: ANN202
    return insert(_audit).inline().values(actor="prueba", accion=action, entidad="t", entidad_id=entity_id)


def test_deferred_statements_are_sent_with_the_commit_in_order(app) -> None:  # noqa: ANN001
    db = app.state.db
    with db.write() as session:
        for n in range(3):
            defer(session, _row("deferred.order", str(n)))
        record_audit(session, CTX, action="deferred.order", entity="t", entity_id="3")
        # not sent yet: a query of this transaction does not see them
        assert session.scalar(select(func.count()).select_from(_audit).where(_audit.c.accion == "deferred.order")) == 0
    assert _audits(db, "deferred.order") == ["0", "1", "2", "3"]


def test_a_failing_deferred_statement_rolls_the_whole_unit_back(app) -> None:  # noqa: ANN001
    db = app.state.db
    with pytest.raises(Exception) as failed:  # noqa: PT011 - the driver's integrity error, wrapped by SQLAlchemy
        with db.write() as session:
            session.execute(_row("deferred.atomic", "immediate"))
            defer(session, _row("deferred.atomic", "queued"))
            defer(session, insert(_audit).inline().values(actor=None, accion="deferred.atomic", entidad="t"))
    assert "actor" in str(failed.value).lower() or "null" in str(failed.value).lower()
    assert _audits(db, "deferred.atomic") == []
    with db.write() as session:  # the pooled connection is usable again, and nothing queued is left over
        defer(session, _row("deferred.atomic", "after"))
    assert _audits(db, "deferred.atomic") == ["after"]


def test_a_rolled_back_unit_leaves_nothing_queued(app) -> None:  # noqa: ANN001
    db = app.state.db
    session = db._write()  # one session used for two units of work, as a long-lived caller would
    try:
        with session.begin():
            defer(session, _row("deferred.rollback", "lost"))
            session.rollback()
        with session.begin():
            session.execute(text("SELECT 1"))
    finally:
        session.close()
    assert _audits(db, "deferred.rollback") == []


def test_inside_a_savepoint_nothing_is_deferred(app) -> None:  # noqa: ANN001
    db = app.state.db
    with db.write() as session:
        defer(session, _row("deferred.savepoint", "outer"))
        nested = session.begin_nested()
        defer(session, _row("deferred.savepoint", "inner"))  # runs now, inside the savepoint
        nested.rollback()
        send_deferred(session)
    assert _audits(db, "deferred.savepoint") == ["outer"]


def test_the_policy_and_location_read_with_the_product_are_the_ones_in_force(client, admin, app) -> None:  # noqa: ANN001
    create_product(client, admin, "YERBA-D", initial_stock=2)
    refused = client.post("/api/inventory/YERBA-D/movements", headers=admin,
                          json={"type": "salida", "quantity": 3, "reason": "rotura"})
    error_of(refused, 409, code="stock_insuficiente")
    with app.state.db.write() as session:
        set_negative_stock_allowed(session, allowed=True)
    allowed = client.post("/api/inventory/YERBA-D/movements", headers=admin,
                          json={"type": "salida", "quantity": 3, "reason": "rotura"})
    assert allowed.status_code == 201 and allowed.json()["balance_after"] == "-1.000", allowed.text
    with app.state.db.write() as session:
        set_negative_stock_allowed(session, allowed=False)
    moved = client.post("/api/inventory/YERBA-D/movements", headers=admin,
                        json={"type": "entrada", "quantity": 5, "location": "sal", "reason": "repo"})
    assert moved.status_code == 201 and moved.json()["location"] == "SAL", moved.text
    error_of(client.post("/api/inventory/YERBA-D/movements", headers=admin,
                         json={"type": "entrada", "quantity": 1, "location": "NADA"}), 422, mentions="NADA")
    batch = client.post("/api/movements", headers=admin, json={"lines": [
        {"sku": "YERBA-D", "type": "salida", "quantity": 1, "location": "SAL"},
        {"sku": "YERBA-D", "type": "entrada", "quantity": 2}]})
    assert batch.status_code == 201, batch.text
    assert stock_by_location(client, admin, "YERBA-D") == {"DEP": 1, "SAL": 4}
    assert _audits(app.state.db, "stock.movements")  # each movement's audit row, sent with its commit
    assert_ledger_clean(app)


def test_orm_changes_and_the_queue_commit_together_or_not_at_all(app) -> None:  # noqa: ANN001
    """The COMMIT travels with the queue (PostgreSQL): the ORM's pending objects are flushed before it, in the
    same transaction as the queued rows — committed with them, and a failing one undoes them."""
    db = app.state.db
    with db.write() as session:
        session.add(AuditEntry(actor="prueba", action="deferred.orm", entity="t", entity_id="pending"))
        defer(session, _row("deferred.orm", "queued"))
    assert sorted(_audits(db, "deferred.orm")) == ["pending", "queued"]
    with pytest.raises(Exception):  # noqa: B017, PT011 - the driver's integrity error, wrapped by SQLAlchemy
        with db.write() as session:
            defer(session, _row("deferred.orm-failed", "queued"))
            session.add(AuditEntry(actor=None, action="deferred.orm-failed", entity="t"))  # NOT NULL: fails on flush
    assert _audits(db, "deferred.orm-failed") == []
