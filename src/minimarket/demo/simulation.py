"""The demo store's days: deliveries, shop-floor restocks, sales and shrinkage, one day at a time.

Step two of `minimarket demo`. Stock can never go negative: every sale and shrinkage is capped
by the shelf balance at that moment. Each day's rows come out in time order (deliveries
8:00-8:40, restock 8:45-8:59, sales 9:00-21:14, shrinkage 21:15-21:29), so writing the days
in turn makes ids follow time, and only one day is ever held in memory.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from typing import NamedTuple

from minimarket.demo.plan import DEP, SAL, ZERO, Item, PriceChanges, at, qty

WEEKDAY = (0.75, 0.9, 0.95, 1.0, 1.25, 1.45, 0.85)  # Monday … Sunday
HOURS = tuple(range(9, 22))
HOUR_CUM = tuple(accumulate((5, 8, 9, 8, 5, 3, 3, 4, 6, 9, 10, 8, 1)))  # siesta is quiet


class Row(NamedTuple):
    """One ledger row of the simulated history (item is the index in the catalogue)."""

    when: datetime
    seq: int
    item: int
    location: int
    kind: str
    delta: Decimal
    balance_after: Decimal
    cost: Decimal
    price: Decimal | None
    reason: str | None
    reference: str | None
    operation: str


class Day:
    """The rows of one simulated day, posted through the running balances of the items.

    `until` cuts today's day at the present: what would happen later is not posted (nor counted in the balances).
    """

    def __init__(self, rng: random.Random, until: datetime | None = None):
        self.rng = rng
        self.until = until
        self.rows: list[Row] = []

    def new_operation_id(self) -> str:
        """A fresh operation id (UUID4) drawn from the day's seeded random source, so a demo is reproducible."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def post(self, when: datetime, it: Item, loc: int, kind: str, delta: Decimal, reason: str | None,
             reference: str | None, operation: str, price: Decimal | None = None) -> None:
        if self.until is not None and when > self.until:
            return
        it.stock[loc] = after = it.stock[loc] + delta
        if after < 0:  # every outflow is capped by the balance; this guards the guard
            raise RuntimeError(f"demo: saldo negativo de {it.sku} en {loc}")
        self.rows.append(Row(when, len(self.rows), it.idx, loc, kind, delta, after, it.cost, price, reason,
                             reference, operation))

    def restock(self, when: datetime, it: Item, wanted: Decimal, operation: str) -> None:
        q = min(it.stock[DEP], wanted)
        self.post(when, it, DEP, "transferencia", -q, "Reposición del salón", "SAL", operation)
        self.post(when, it, SAL, "transferencia", q, "Reposición del salón", "DEP", operation)

    def in_time_order(self) -> list[Row]:
        return sorted(self.rows, key=lambda r: (r.when, r.seq))


def simulate(rng: random.Random, items: list[Item], start: date, days: int,
             price_changes: PriceChanges, until: datetime | None = None) -> Iterator[list[Row]]:
    """Yield each day's ledger rows in time order, from `start` on, for `days` days; with `until`, the last day
    (today) only up to that moment."""
    by_supplier: dict[str, list[Item]] = {}
    for it in items:
        by_supplier.setdefault(it.supplier, []).append(it)
    remitos = {key: rng.randrange(10_000, 90_000) for key in by_supplier}
    for d in range(days):
        day, log = start + timedelta(days=d), Day(rng, until if d == days - 1 else None)
        for it, cost, price in price_changes.get(d, ()):  # today's price lists, before the store opens
            it.cost, it.price = cost, price
        if d == 0:
            when, operation = at(day, 8, 0), log.new_operation_id()
            for it in items:
                opening = qty(it, float(it.max_stock) * rng.uniform(0.6, 1.0))
                log.post(when, it, DEP, "entrada", max(opening, it.shelf), "Stock inicial", "demo", operation)
        _deliveries(rng, log, by_supplier, remitos, d, day)
        move_at, move_op = at(day, 8, rng.randrange(45, 58), rng.randrange(60)), log.new_operation_id()
        factor = WEEKDAY[day.weekday()] * (1.2 if day.day <= 5 else 0.9 if day.day >= 25 else 1.0)
        for it in items:
            if it.stock[SAL] < it.shelf / 2 and it.stock[DEP] > 0:  # the morning restock of the shop floor
                log.restock(move_at, it, it.shelf - it.stock[SAL], move_op)
            _sell(rng, log, it, day, factor)
            _shrink(rng, log, it, day)
            position = it.stock[DEP] + it.stock[SAL] + sum(q for _, q in it.pending)
            if position <= it.min_stock:  # order at closing time; no deliveries on Sunday
                due = d + it.lead + (1 if (day + timedelta(days=it.lead)).weekday() == 6 else 0)
                it.pending.append((due, qty(it, float(it.max_stock - position) * rng.uniform(1.0, 1.15), up=True)))
        yield log.in_time_order()


def _deliveries(rng: random.Random, log: Day, by_supplier: dict[str, list[Item]], remitos: dict[str, int], d: int,
                day: date) -> None:
    """What was ordered arrives in the morning, one delivery note per supplier."""
    for key, group in by_supplier.items():
        arriving = [(it, q) for it in group if it.pending for due, q in it.pending if due == d]
        if arriving:
            when, operation = at(day, 8, rng.randrange(0, 40), rng.randrange(60)), log.new_operation_id()
            remitos[key] += 1
            for it, q in arriving:
                log.post(when, it, DEP, "entrada", q, "Entrega de proveedor", f"demo:remito:0003-{remitos[key]:08d}",
                         operation)
                it.pending = [p for p in it.pending if p[0] != d]


def _sell(rng: random.Random, log: Day, it: Item, day: date, factor: float) -> None:
    demand = it.rate * factor * math.exp(rng.gauss(0, 0.25))
    if it.category == "Bebidas alcohólicas" and day.weekday() in (4, 5):
        demand *= 1.3
    if it.fresh == "pan" and day.weekday() == 6:  # facturas on Sunday morning
        demand *= 1.4
    wanted = _demand(rng, it, demand)
    if wanted > 0:
        hour = rng.choices(HOURS, cum_weights=HOUR_CUM)[0]
        when = at(day, hour, rng.randrange(15 if hour == 21 else 60), rng.randrange(60))
        if wanted > it.stock[SAL] and it.stock[DEP] > 0:  # fetched from the back room
            log.restock(when - timedelta(minutes=1), it, wanted - it.stock[SAL], log.new_operation_id())
        sold = min(wanted, it.stock[SAL])
        if sold > 0:
            log.post(when, it, SAL, "venta", -sold, None, f"demo:{day.isoformat()}", log.new_operation_id(), it.price)


def _demand(rng: random.Random, it: Item, mean: float) -> Decimal:
    if it.unit == "u":
        return Decimal(_poisson(rng, mean))
    customers = _poisson(rng, mean / it.buy)
    if it.unit == "l":  # bulk cleaning liquids: customers bring a bottle
        return sum((Decimal(rng.choice(("0.5", "1", "1", "2", "5"))) for _ in range(customers)), ZERO)
    return sum((qty(it, it.buy * rng.uniform(0.5, 1.6)) for _ in range(customers)), ZERO)


def _shrink(rng: random.Random, log: Day, it: Item, day: date) -> None:
    """Shrinkage: spoiled produce, day-old bread, expired dairy, now and then a broken item."""
    chance, reason = {"verdura": (0.04, "Mal estado"), "pan": (0.03, "Vencimiento"),
                      "fresco": (0.01, "Vencimiento")}.get(it.fresh, (0.001, "Rotura"))
    if it.stock[SAL] <= 0 or rng.random() >= chance:
        return
    if it.unit == "u":
        q = Decimal(min(int(it.stock[SAL]), rng.randint(1, 3)))
    else:
        q = min(it.stock[SAL], qty(it, float(it.stock[SAL]) * rng.uniform(0.03, 0.10)))
    if q > 0:
        when = at(day, 21, rng.randrange(15, 30), rng.randrange(60))  # counted at closing
        log.post(when, it, SAL, "merma", -q, reason, "demo", log.new_operation_id())


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k
