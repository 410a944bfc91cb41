"""Property: near the column limits, every accepted write keeps the ledger exact on SQLite and PostgreSQL.

Hypothesis generates programs of batches, transfers and stocktakes whose quantities sit at
and around `QUANTITY.maximum` (999999999.999), with and without negative stock allowed,
over one weighed product at two locations. A plain Decimal model says what must happen:
a balance or a ledger row outside ±maximum is refused (OutOfRange), a sale below zero is
refused unless negative stock is allowed (InsufficientStock), anything else is applied.
After every step the database must agree with the model to the thousandth, `verify_ledger`
must be ok (sums and each row's balance_after), and a refused step must change nothing.

Before: SQLite accepted balances past the column (stored as inexact REALs, and `verify`
failed); PostgreSQL answered 500 `numeric field overflow`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

import minimarket.models  # noqa: F401  (every table is mapped)
from minimarket.accounts.audit import Context
from minimarket.catalog.models import Product
from minimarket.config import Settings
from minimarket.db import Database
from minimarket.errors import InsufficientStock
from minimarket.limits import QUANTITY, OutOfRange
from minimarket.migrations.runner import upgrade
from minimarket.stock.models import Balance, Location, Movement
from minimarket.stock.schemas import BatchIn, StocktakeIn, TransferIn
from minimarket.stock.service import register_movements, take_stocktake, transfer_stock
from minimarket.stock.verify import verify_ledger
from tests.helpers import (ReusedPgDatabase, create_pg_database, drop_pg_database, need_postgres, pg_put_back,
                           sqlite_copy)

D = Decimal
TOP = QUANTITY.maximum
MILLI = D("0.001")
SKU = "KG-LIMITE"
LOCATIONS = ("DEP", "SAL")  # ids 1 and 2: the ledger applies legs in this order
CTX = Context(actor="limits-test")


def seed(url: str) -> None:
    upgrade(url)
    db = Database(url)
    try:
        with db.write() as session:
            session.add(Product(sku=SKU, name="Queso por kilo", unit="kg", cost=D("1"), price=D("2")))
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("limits-template") / "template.db"
    seed(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="module")
def pg_template() -> Iterator[str]:
    need_postgres()
    url = create_pg_database()
    try:
        seed(url)
        yield make_url(url).database
    finally:
        drop_pg_database(url)


@pytest.fixture(scope="module")
def pg_seeded(pg_template: str) -> Iterator[ReusedPgDatabase]:
    """One database for every example, put back to the seeded template before each (milliseconds,
    where a CREATE DATABASE and a DROP per example took seconds)."""
    database = ReusedPgDatabase(pg_template)
    yield database
    database.close()


# ------------------------------------------------------------------------------------ programs


@dataclass(frozen=True)
class Batch:
    lines: tuple[tuple[str, Decimal, str], ...]  # (type, quantity as sent, location)


@dataclass(frozen=True)
class Transfer:
    origin: str
    destination: str
    quantity: Decimal


@dataclass(frozen=True)
class Count:
    location: str
    counted: Decimal


def near_limit() -> st.SearchStrategy[Decimal]:
    """Quantities a store near the column limit would send: the top, just below it, tiny, and anything between."""
    thousandths = int(TOP / MILLI)
    return st.one_of(
        st.just(TOP),
        st.integers(min_value=thousandths - 2000, max_value=thousandths).map(lambda n: D(n) * MILLI),
        st.integers(min_value=1, max_value=2000).map(lambda n: D(n) * MILLI),
        st.integers(min_value=1, max_value=thousandths).map(lambda n: D(n) * MILLI),
        st.sampled_from([D("999999999"), D("500000000"), D("499999999.9995").quantize(MILLI)]),
    )


@st.composite
def batch_line(draw: st.DrawFn) -> tuple[str, Decimal, str]:
    kind = draw(st.sampled_from(["entrada", "entrada", "venta", "salida", "ajuste+", "ajuste-"]))
    quantity = draw(near_limit())
    if kind.startswith("ajuste"):
        return "ajuste", quantity if kind == "ajuste+" else -quantity, draw(st.sampled_from(LOCATIONS))
    return kind, quantity, draw(st.sampled_from(LOCATIONS))


@st.composite
def churn(draw: st.DrawFn) -> Batch:
    """Many large rows that cancel out: a long ledger whose sum a float adder would drift on."""
    quantity, location = draw(near_limit()), draw(st.sampled_from(LOCATIONS))
    pairs = draw(st.integers(min_value=20, max_value=120))
    return Batch((("entrada", quantity, location), ("salida", quantity, location)) * pairs)


def steps() -> st.SearchStrategy[Batch | Transfer | Count]:
    return st.one_of(
        st.lists(batch_line(), min_size=1, max_size=4).map(lambda lines: Batch(tuple(lines))),
        churn(),
        st.builds(lambda pair, q: Transfer(pair[0], pair[1], q), st.permutations(LOCATIONS), near_limit()),
        st.builds(Count, st.sampled_from(LOCATIONS), st.one_of(st.just(D(0)), near_limit())),
    )


programs = st.tuples(st.booleans(), st.lists(steps(), min_size=1, max_size=12))


# ------------------------------------------------------------------------------------ the model


SIGN = {"entrada": 1, "venta": -1, "salida": -1, "ajuste": 1}


def expected(balances: dict[str, Decimal], step: Batch | Transfer | Count,
             allow_negative: bool) -> tuple[type[Exception] | None, dict[str, Decimal]]:
    """What the store must do with `step`: the refusal it raises, or the balances after it."""
    if isinstance(step, Count):
        difference = step.counted - balances.get(step.location, D(0))
        if abs(difference) > TOP:
            return OutOfRange, balances
        return None, {**balances, step.location: step.counted}
    if isinstance(step, Transfer):
        legs = [(step.origin, -step.quantity), (step.destination, step.quantity)]
    else:
        legs = [(location, SIGN[kind] * quantity) for kind, quantity, location in step.lines]
    after = dict(balances)
    for location, delta in sorted(legs, key=lambda leg: LOCATIONS.index(leg[0])):  # the ledger's lock order
        new = after.get(location, D(0)) + delta
        if abs(new) > TOP:
            return OutOfRange, balances
        if delta < 0 and new < 0 and not allow_negative:
            return InsufficientStock, balances
        after[location] = new
    return None, after


def run(db: Database, step: Batch | Transfer | Count, allow_negative: bool) -> None:
    store = Settings(_env_file=None, default_location="DEP", allow_negative_stock=allow_negative)
    with db.write() as session:
        if isinstance(step, Count):
            count = StocktakeIn.model_validate({"location": step.location,
                                                "lines": [{"sku": SKU, "counted": str(step.counted)}]})
            take_stocktake(session, CTX, count=count, settings=store)
        elif isinstance(step, Transfer):
            transfer = TransferIn.model_validate({"from_location": step.origin, "to_location": step.destination,
                                                  "lines": [{"sku": SKU, "quantity": str(step.quantity)}]})
            transfer_stock(session, CTX, transfer=transfer, settings=store)
        else:
            batch = BatchIn.model_validate({"lines": [{"sku": SKU, "type": kind, "quantity": str(quantity),
                                                       "location": location} for kind, quantity, location in step.lines]})
            register_movements(session, CTX, batch=batch, settings=store)


def stored(session: Session) -> tuple[dict[str, Decimal], int]:
    codes = dict(session.execute(select(Location.id, Location.code)).all())
    balances = {codes[loc]: D(qty).quantize(MILLI) for loc, qty in session.execute(
        select(Balance.location_id, Balance.quantity))}
    return balances, session.scalar(select(func.count()).select_from(Movement))


def run_program(fresh: Callable[[], AbstractContextManager[Database]], program: tuple) -> None:
    allow_negative, program_steps = program
    balances: dict[str, Decimal] = {}
    with fresh() as db:
        for step in program_steps:
            refusal, after = expected(balances, step, allow_negative)
            with db.read() as session:
                _, rows_before = stored(session)
            try:
                run(db, step, allow_negative)
                raised = None
            except (OutOfRange, InsufficientStock) as exc:
                raised = type(exc)
            assert raised is refusal, f"{step}: expected {refusal}, got {raised} (balances {balances})"
            with db.read() as session:
                now, rows = stored(session)
                report = verify_ledger(session)
            assert report.ok, [m.problem for m in report.mismatches]
            if refusal is not None:
                assert rows == rows_before, f"refused {step} wrote ledger rows"
            assert {k: v for k, v in now.items() if v} == {k: v for k, v in after.items() if v}, (step, now, after)
            balances = after


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=programs)
def test_near_the_limit_the_ledger_stays_exact_on_sqlite(sqlite_template: Path, program: tuple) -> None:
    run_program(lambda: sqlite_copy(sqlite_template), program)


@pytest.mark.postgres
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=programs)
def test_near_the_limit_the_ledger_stays_exact_on_postgresql(pg_seeded: ReusedPgDatabase, program: tuple) -> None:
    run_program(lambda: pg_put_back(pg_seeded), program)


def test_the_reviewers_sqlite_scenario_keeps_verify_exact(sqlite_template: Path) -> None:
    """20 batches of 500 × 999999999.999, then 0.001s: the first over-limit line is refused, verify stays ok."""
    with sqlite_copy(sqlite_template) as db:
        run(db, Batch((("entrada", TOP, "DEP"),)), allow_negative=False)
        for _ in range(3):
            with pytest.raises(OutOfRange):
                run(db, Batch((("entrada", TOP, "DEP"),) * 500), allow_negative=False)
            with pytest.raises(OutOfRange):
                run(db, Batch((("entrada", MILLI, "DEP"),)), allow_negative=False)
        with db.read() as session:
            assert stored(session) == ({"DEP": TOP}, 1)
            assert verify_ledger(session).ok
