"""PostgreSQL reads on the event loop (db_async): the same rows as the sync session for the same statement,
a bounded number of connections shared by concurrent reads, and a dropped connection replaced like the
sync pool does it (pinged after sitting idle; a failure drops the idle ones)."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, literal_column, select
from sqlalchemy.engine import make_url

from minimarket import db_async
from minimarket.apps import create_app
from minimarket.db import Database
from minimarket.stock.inventory import PRODUCT_BY_REF, PRODUCTS_BY_REFS, ref_params
from minimarket.stock.product_reads import MissBatch
from tests.e2e.servers import free_port
from tests.helpers import create_pg_database, drop_pg_database, make_settings
from tests.integration.helpers import create_product
from tests.integration.test_rate_limit_redis import new_key

pytestmark = pytest.mark.postgres

PID = select(func.pg_backend_pid().label("pid"))
SLOW = select(func.pg_sleep(literal_column("0.3")).label("slept"), func.pg_backend_pid().label("pid"))
EAN = "7790387000016"


@pytest.fixture(scope="module")
def store(pg_template: str):  # noqa: ANN201 - one database for the module: its tests only read
    url = create_pg_database(pg_template)
    app = create_app("all", make_settings(url))
    with TestClient(app) as client:
        admin = {"X-API-Key": new_key(app)}
        create_product(client, admin, "YERBA-AIO", barcode=EAN, brand="Playadito", category="Almacén",
                       supplier="Distribuidora Sur", cost="2500.00", price="4200.50", min_stock=5, initial_stock=12)
        moved = client.post("/api/inventory/YERBA-AIO/movements", headers=admin,
                            json={"type": "entrada", "quantity": 2, "location": "SAL"})
        assert moved.status_code == 201, moved.text
        create_product(client, admin, "SIN-NADA-AIO")  # no category, supplier, barcode nor stock
    app.state.db.dispose()
    database = Database(url, pool_size=4)
    yield database
    database.dispose()
    drop_pg_database(url)


@pytest.mark.parametrize("ref", ["YERBA-AIO", "yerba-aio ", EAN, "SIN-NADA-AIO", "NO-EXISTE"])
def test_the_event_loop_reads_the_rows_the_session_reads(store: Database, ref: str) -> None:
    with store.lookup() as session:
        expected = [dict(row) for row in session.execute(PRODUCT_BY_REF, ref_params(ref)).mappings()]
    got = asyncio.run(store.aio.mappings(PRODUCT_BY_REF, ref_params(ref)))
    assert got == expected
    for mine, theirs in zip(got, expected, strict=True):  # equal and of the same types (Decimal, aware datetime)
        assert [type(v) for v in mine.values()] == [type(v) for v in theirs.values()]
    if ref.strip().upper() == "YERBA-AIO":
        assert [row["location"] for row in got] == ["DEP", "SAL"]  # both locations, in the statement's order


def test_concurrent_reads_share_at_most_size_connections(store: Database) -> None:
    reads = db_async.AsyncReads(store.url, store.engine.dialect, size=2)

    async def many() -> list[int]:
        rows = await asyncio.gather(*(reads.mappings(SLOW, {}) for _ in range(6)))
        return [row[0]["pid"] for row in rows]

    started = time.monotonic()
    pids = asyncio.run(many())
    reads.close()
    assert len(pids) == 6 and len(set(pids)) == 2, pids  # six reads, two connections, each reused
    assert time.monotonic() - started >= 0.9  # three rounds of 0.3 s: the third read of each waited its turn


def test_a_cancelled_read_gives_its_connection_back(store: Database) -> None:
    reads = db_async.AsyncReads(store.url, store.engine.dialect, size=1)

    async def cancel_then_read() -> int:
        slow = asyncio.ensure_future(reads.mappings(SLOW, {}))
        waiting = asyncio.ensure_future(reads.mappings(PID, {}))  # queued behind it
        await asyncio.sleep(0.1)
        slow.cancel()
        return (await asyncio.wait_for(waiting, 5))[0]["pid"]

    assert asyncio.run(cancel_then_read()) > 0
    reads.close()


def _terminate(url: str, pid: int) -> None:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]


def test_a_connection_dropped_by_the_server_is_replaced(store: Database) -> None:
    reads = db_async.AsyncReads(store.url, store.engine.dialect, size=1)

    async def scenario() -> list[object]:
        seen: list[object] = []
        first = (await reads.mappings(PID, {}))[0]["pid"]
        _terminate(store.url, first)
        await asyncio.sleep(db_async.PING_AFTER_IDLE_SECONDS + 0.2)
        second = (await reads.mappings(PID, {}))[0]["pid"]  # idle: pinged, found dead, replaced, no error
        seen += [first != second]
        _terminate(store.url, second)  # used a moment ago: not pinged, so this read fails...
        try:
            await reads.mappings(PID, {})
            seen.append("no error")
        except psycopg.OperationalError:
            seen.append("OperationalError")
        seen.append((await reads.mappings(PID, {}))[0]["pid"] not in (first, second))  # ...and the next reconnects
        return seen

    assert asyncio.run(scenario()) == [True, "OperationalError", True]
    reads.close()


REFS = ["YERBA-AIO", "yerba-aio ", EAN, "SIN-NADA-AIO", "NO-EXISTE"]


def _recording(reads: db_async.AsyncReads) -> list[object]:
    """The statements `reads` runs, in order."""
    ran: list[object] = []
    real = reads.mappings

    async def recording(statement, params):  # noqa: ANN001, ANN202
        ran.append(statement)
        return await real(statement, params)

    reads.mappings = recording
    return ran


def test_the_misses_of_one_turn_are_one_statement_and_each_gets_its_own_rows(store: Database) -> None:
    with store.lookup() as session:
        expected = [[dict(row) for row in session.execute(PRODUCT_BY_REF, ref_params(ref)).mappings()]
                    for ref in REFS]
    reads = db_async.AsyncReads(store.url, store.engine.dialect, size=2)
    ran = _recording(reads)
    batch = MissBatch()

    async def together() -> list:
        return await asyncio.gather(*(batch.rows(reads, ref_params(ref)) for ref in REFS))

    got = asyncio.run(together())
    assert ran == [PRODUCTS_BY_REFS], "five misses of one turn: one statement"
    assert [[dict(row) for row in rows] for rows in got] == expected
    for mine, theirs in zip(got, expected, strict=True):  # the same types too (Decimal, aware datetime)
        assert [[type(v) for v in row.values()] for row in mine] == [[type(v) for v in row.values()] for row in theirs]
    assert [len(rows) for rows in got] == [2, 2, 2, 1, 0]  # two locations; barcode = SKU's product; none
    ran.clear()

    async def apart() -> list:  # a request that arrives after the batch went out opens the next one
        first = await batch.rows(reads, ref_params("YERBA-AIO"))
        return [first, await batch.rows(reads, ref_params(EAN))]

    assert [len(rows) for rows in asyncio.run(apart())] == [2, 2]
    assert ran == [PRODUCTS_BY_REFS, PRODUCTS_BY_REFS]
    reads.close()


def test_a_reference_the_shared_statement_refuses_fails_alone(store: Database) -> None:
    reads = db_async.AsyncReads(store.url, store.engine.dialect, size=2)
    ran = _recording(reads)
    batch = MissBatch()

    async def scenario() -> list:
        return await asyncio.gather(batch.rows(reads, ref_params("YERBA-AIO")),
                                    batch.rows(reads, {"sku": "NUL\x00", "ref": "NUL\x00"}),
                                    return_exceptions=True)

    healthy, refused = asyncio.run(scenario())
    assert [row["location"] for row in healthy] == ["DEP", "SAL"]  # read alone after the batch failed
    assert isinstance(refused, psycopg.DataError), refused  # what it gets read alone, too
    assert ran == [PRODUCTS_BY_REFS, PRODUCT_BY_REF, PRODUCT_BY_REF]
    reads.close()


def test_postgresql_down_fails_every_miss_of_the_batch(store: Database) -> None:
    down = make_url(store.url).set(port=free_port()).render_as_string(hide_password=False)  # nothing listens
    for url, healthy in ((store.url, True), (down, False)):
        reads = db_async.AsyncReads(url, store.engine.dialect, size=2)
        batch = MissBatch()

        async def scenario() -> list:
            return await asyncio.gather(*(batch.rows(reads, ref_params(ref)) for ref in REFS[:3]),  # noqa: B023
                                        return_exceptions=True)

        outcomes = asyncio.run(scenario())
        if healthy:
            assert [len(rows) for rows in outcomes] == [2, 2, 2]
        else:
            assert all(isinstance(outcome, psycopg.OperationalError) for outcome in outcomes), outcomes
        reads.close()


def test_a_named_statement_gives_the_rows_of_the_statement(store: Database) -> None:
    """db_async.Named: the statement prepared by name on the server and run with EXECUTE and psycopg's quoting
    (stock/movement_on_loop.py) gives what the statement gives: a parameter used twice is one $n, a literal
    percent sign stays one, and each type comes back as itself."""
    from decimal import Decimal

    from sqlalchemy import DateTime, Integer, Numeric, String, bindparam

    from minimarket.types import utcnow

    twice = bindparam("n", type_=Integer)
    statement = select(literal_column("'50%'").label("pct"), (twice * twice).label("square"),
                       bindparam("text", type_=String).label("text"),
                       bindparam("amount", type_=Numeric(12, 3)).label("amount"),
                       bindparam("when", type_=DateTime(timezone=True)).label("when"))
    prepared = db_async.Prepared(statement, store.aio.dialect)
    named = prepared.named("mm_test_named")
    assert named.prepare.count("$1") == 2 and "$4" in named.prepare and "$5" not in named.prepare
    assert "'50%'" in named.prepare
    values = {"n": -7, "text": "d'Artagnan; DROP", "amount": Decimal("-1.250"), "when": utcnow()}

    async def both() -> tuple[list, list]:
        conn = await psycopg.AsyncConnection.connect(store.aio.conninfo, autocommit=True)
        try:
            params = prepared.params(values)
            plain = await (await conn.execute(prepared.sql, params)).fetchall()
            await conn.execute(named.prepare)
            quoted = psycopg.AsyncClientCursor(conn).mogrify(named.execute, params)
            return plain, await (await conn.execute(quoted)).fetchall()
        finally:
            await conn.close()

    plain, by_name = asyncio.run(both())
    assert by_name == plain == [("50%", 49, values["text"], values["amount"], values["when"])]
