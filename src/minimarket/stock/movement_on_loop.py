"""POST /api/inventory/{sku}/movements recorded on the event loop (PostgreSQL): the route's unit of work in
three round trips, without a worker thread, an ORM session or FastAPI's request handling.

The caller gate (api/gate.py) hands it an authenticated request; it checks the role, reads the (small) body,
validates it with the route's own models, and runs the route's own statements, compiled once for psycopg
(db_async.Prepared), on a connection of `Database.aio_writes`:

1. One message: `BEGIN`, the Idempotency-Key's claim (platform/idempotency.py) and the product + stock policy
   + location (`service.start_statement`). A key already taken (a retry, or a twin that just committed: the
   claim waits for it) goes to the route, which replays the stored answer or refuses another body.
2. The conditional `UPDATE … RETURNING` and the ledger row, one statement (`ledger.move_and_record_statement`),
   its parameters from the route's own planning (`service.plan_line`, `ledger.ledger_row`): no row back
   (oversell refused, or the product's first movement at that location) goes to the route.
3. One message: the product's total and its low mark in a second statement after the total's row lock
   (stock/totals.py), the audit row, the stored answer and `COMMIT`.

Messages 1 and 3 carry several statements (the simple protocol): one send and one wait each. Their statements
are named, prepared once on each connection (`db_async.Named`: `PREPARE`, then `EXECUTE` with the values quoted
by psycopg's `mogrify`), so PostgreSQL does not parse and plan their whole text on every movement; the ledger's
statement is prepared on the connection by psycopg. A connection that lost them (a pooler's reset) fails the
movement over to the route and is closed.

After the commit: the movement is counted in the metrics, the ledger's, the product's and the flipped lists'
cache versions are bumped in Redis (`read_cache.invalidate_on_loop`) and only then the answer goes out, the
route's body and status, as `write_once` would send it.

Whatever it does not handle exactly as the route — SQLite, another role, an unusual or invalid body, a barcode,
an unknown product or location, any refusal, a key taken, an unexpected database error — is rolled back (nothing
was committed) and goes on to the route with its body, which answers it with its own errors: the rules stay
in one place, and a rejected movement is reported by the code that always reported it.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from decimal import Decimal
from functools import cache
from typing import Any

import psycopg
from pydantic import ValidationError
from sqlalchemy import inspect
from sqlalchemy.engine import Dialect
from starlette.responses import JSONResponse

from minimarket.accounts import audit
from minimarket.accounts.audit import Context
from minimarket.api.deps import caller_context
from minimarket.api.writes import client_key_scope, request_fingerprint
from minimarket.catalog.models import Product
from minimarket.db_async import UNAVAILABLE, Prepared
from minimarket.errors import DomainError
from minimarket.platform.idempotency import ANSWER, CLAIM, answer_params, check_client_key, claim_params
from minimarket.platform.json_numbers import parse_plain_json
from minimarket.platform.metrics import MOVEMENTS_ON_LOOP
from minimarket.platform.read_cache import invalidate_on_loop, note_changed, note_narrow
from minimarket.stock import ledger, service, totals
from minimarket.stock.models import Location
from minimarket.stock.policy import policy_from
from minimarket.stock.schemas import BatchLine, MovementIn
from minimarket.types import utcnow

PREFIX = "/api/inventory/"
SUFFIX = "/movements"
MAX_REF = 60  # the route's Path(max_length=60)
MAX_BODY = 8192  # a movement is a few hundred bytes; a larger body goes to the route (and its limits)
STATUS = 201

Receive = Callable[[], Awaitable[dict]]
_RECORDED = MOVEMENTS_ON_LOOP.labels("recorded")
_ROUTE = MOVEMENTS_ON_LOOP.labels("route")  # after it tried: a refusal, a key taken, an unknown product…


class _Statements:
    """The route's statements, compiled for the database's dialect."""

    def __init__(self, dialect: Dialect):
        self.claim = Prepared(CLAIM, dialect, column_keys=list(claim_params("", "")))
        start = service.start_statement()
        self.start = Prepared(start, dialect, sample=service.start_parameters([""], ""))
        mapper = inspect(Product)
        table = Product.__table__
        # The product's columns as Product's attributes (the statement selects the entity, then two scalars).
        self.product_attrs = [mapper.get_property_by_column(c).key for c in start.selected_columns
                              if getattr(c, "table", None) is table]
        self.moved = {id(stmt): Prepared(stmt, dialect) for stmt in ledger.move_and_record_statements()}
        self.add = Prepared(totals.add_statement(dialect.name), dialect)
        self.low = Prepared(totals.REFRESH_LOW, dialect)
        self.audit = Prepared(audit.RECORD, dialect, column_keys=list(audit.audit_row(
            Context(actor=""), action="", entity="", entity_id=None)))
        self.answer = Prepared(ANSWER, dialect)
        # Messages 1 and 3 run these as named statements (EXECUTE), prepared once on each connection: parsing
        # and planning their whole text on every movement was ~1/3 of PostgreSQL's CPU per movement.
        self.named = {key: getattr(self, key).named(f"mm_movement_{key}")
                      for key in ("claim", "start", "add", "low", "audit", "answer")}
        self.prepare_all = ";\n".join(named.prepare for named in self.named.values())
        self.ready: weakref.WeakSet = weakref.WeakSet()  # the connections that hold them


@cache
def _statements(dialect: Dialect) -> _Statements:
    return _Statements(dialect)


class _Fallback(Exception):
    """Not handled here: rolled back, the route answers."""


class MovementOnLoop:
    """The gate's write for POST /api/inventory/{sku}/movements (see api.gate.WriteOnLoop). `route` is the
    route it stands for (metrics and the log name its template; its path template is part of the key's
    fingerprint), `permission` the roles the route requires."""

    def __init__(self, route: Any, permission: frozenset[str]):  # noqa: ANN401
        self.route = route
        self.permission = permission

    def matches(self, scope: dict[str, Any]) -> bool:
        path = scope["path"]
        return scope["method"] == "POST" and path.startswith(PREFIX) and path.endswith(SUFFIX)

    async def serve(self, scope: dict[str, Any], receive: Receive, send: Any, caller: Any) -> Receive | None:  # noqa: ANN401
        """Record the movement and answer (None), or hand the request on: the `receive` the route reads its
        body from."""
        state = scope["app"].state
        writes = state.db.aio_writes
        sku = scope["path"][len(PREFIX):-len(SUFFIX)]
        if (writes is None or caller.role not in self.permission or not sku or "/" in sku or len(sku) > MAX_REF
                or not _plain_json_body(scope)):
            return receive
        body, receive = await _read_body(receive)
        try:
            movement = MovementIn.model_validate(parse_plain_json(body))
            # The route's own rule: the path's sku is checked like a body's.
            line = BatchLine.model_validate({**movement.model_dump(), "sku": sku})
            client_key = check_client_key(_header(scope, b"idempotency-key"))
        except (ValueError, ValidationError, DomainError):
            return receive  # the route answers its 422 (or 400), from the same models
        key_sku = service.sku_key(line.sku)
        if key_sku is None:
            return receive
        ctx = caller_context(scope, caller)
        key, _label = client_key_scope(ctx, client_key)
        request_hash = request_fingerprint("POST", self.route.path, {"sku": sku}, movement)
        statements = _statements(writes.dialect)
        try:
            answer, info, moved_type = await _record(writes, statements, state.settings, ctx, line, key_sku,
                                                     client_key, key, request_hash)
        except _Fallback:
            _ROUTE.inc()
            return receive
        _RECORDED.inc()
        ledger.count_movements([moved_type])
        await invalidate_on_loop(state.cache, info)
        scope["route"] = self.route
        await JSONResponse(answer, status_code=STATUS)(scope, receive, send)
        return None


async def _record(writes: Any, s: _Statements, settings: Any, ctx: Context, line: BatchLine, key_sku: str,  # noqa: ANN401, PLR0913
                  client_key: str | None, key: str | None, request_hash: str) -> tuple[dict, dict, str]:
    """The route's unit of work (see the module docstring); (the answer's body, what the commit changed for the
    read caches, the movement's type). _Fallback: rolled back, nothing written."""
    async with writes.connection() as conn:
        try:
            return await _unit_of_work(conn, s, settings, ctx, line, key_sku, client_key, key, request_hash)
        except UNAVAILABLE:
            raise  # the gate answers 503, as the route would
        except (_Fallback, psycopg.Error, DomainError, ValidationError) as exc:
            # A refusal, a key taken, anything unexpected from the database: the route does it again and says
            # what it says. Nothing here was committed.
            await _rollback(conn)
            raise _Fallback from exc


async def _unit_of_work(conn: psycopg.AsyncConnection, s: _Statements, settings: Any, ctx: Context,  # noqa: ANN401, PLR0913
                        line: BatchLine, key_sku: str, client_key: str | None, key: str | None,
                        request_hash: str) -> tuple[dict, dict, str]:
    # Rounds 1 and 3 are each ONE query message of several EXECUTEs of named statements (simple protocol; values
    # bound by psycopg's own quoting, `mogrify`): one send and one wait. psycopg's pipeline mode flushes every
    # statement on its own, which on a loaded machine cost more than the round trips it saves (docs/PERFORMANCE.md).
    quote = psycopg.AsyncClientCursor(conn).mogrify
    cursor = conn.cursor()
    named = s.named
    if conn not in s.ready:
        # Once per connection, outside any transaction. Should it fail, the connection is closed with the
        # fallback (AsyncReads.connection), and its statements with it.
        await cursor.execute(s.prepare_all)
        s.ready.add(conn)

    # 1. BEGIN, the key's claim, the product + policy + location.
    start_params = service.start_parameters([key_sku], line.location or settings.default_location)
    sql = ["BEGIN"]
    if key is not None:
        sql.append(quote(named["claim"].execute, s.claim.params(claim_params(key, request_hash))))
    sql.append(quote(named["start"].execute, s.start.params(start_params)))
    await cursor.execute(";\n".join(sql))
    while cursor.nextset():
        pass  # the SELECT's rows: the last result
    rows = await cursor.fetchall()
    if len(rows) != 1 or rows[0][-1] is None:
        raise _Fallback  # a barcode or an unknown product (404), an unknown or inactive location (422)
    *columns, stored, location_id = rows[0]
    product = Product(**dict(zip(s.product_attrs, columns, strict=True)))
    location = Location(id=location_id, code=start_params["location_code"], active=True)
    policy = policy_from(stored, settings)
    leg = service.plan_line(line, product, "", lambda: location)
    operation_id = ledger.new_operation_id()
    row = ledger.ledger_row(leg, ctx.actor, idempotency_key=client_key, operation_id=operation_id, when=utcnow())
    statement, params = ledger.move_and_record_statement(leg, row, allow_negative=policy.allow_negative)

    # 2. The conditional update and the ledger row: one statement, prepared on this connection.
    moved = s.moved[id(statement)]
    found = await (await cursor.execute(moved.sql, moved.params(params), prepare=True)).fetchone()
    if found is None:
        raise _Fallback  # refused (oversell, out of its column) or no balance row there yet: the route's work
    movement = ledger.recorded_movement(leg, row, found[0], ledger.balance_after(found[1]))
    out = service.movement_out(movement, product.sku, location.code)
    answer = out.model_dump(mode="json")
    audit_values = audit.audit_row(ctx, action=service.MOVEMENTS_ACTION, entity="operacion", entity_id=operation_id,
                                   after=service.movements_audit([out]))

    # 3. The total, its low mark (its own statement, after the total's lock), the audit row, the stored answer,
    # COMMIT.
    sql = [quote(named["add"].execute, s.add.params({"product_id": product.id, "delta": leg.delta})),
           quote(named["low"].execute, s.low.params({"product_id": product.id})),
           quote(named["audit"].execute, s.audit.params(audit_values))]
    if key is not None:
        sql.append(quote(named["answer"].execute, s.answer.params(answer_params(key, STATUS, answer))))
    sql.append("COMMIT")
    await cursor.execute(";\n".join(sql))
    total, was_low = await cursor.fetchone()
    cursor.nextset()
    is_low = await cursor.fetchone()
    info: dict = {}
    note_narrow(info)  # a movement changes stock only (as the route's `_stock_only`)
    note_changed(info, *ledger.changed_versions([product.sku]),
                 *totals.flipped_lists(Decimal(total), leg.delta, bool(was_low), bool(is_low and is_low[0])))
    return answer, info, leg.type


async def _rollback(conn: psycopg.AsyncConnection) -> None:
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        await conn.execute("ROLLBACK", prepare=False)


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    return next((v.decode("latin-1") for k, v in scope.get("headers") or [] if k == name), None)


def _plain_json_body(scope: dict[str, Any]) -> bool:
    """A body this path reads: its length declared and small, sent as JSON (FastAPI parses an absent type as JSON)."""
    length = _header(scope, b"content-length")
    if length is None or not length.isdigit() or not 0 < int(length) <= MAX_BODY:
        return False
    kind = _header(scope, b"content-type")
    return kind is None or kind.split(";", 1)[0].strip().lower() == "application/json"


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The request's body, and a `receive` that gives it again (to the route) before anything else."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client left: the route sees the same
            first = message
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            first = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            break
    pending = [first]

    async def again() -> dict:
        return pending.pop() if pending else await receive()

    return first.get("body", b""), again

