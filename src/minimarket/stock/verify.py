"""`minimarket verify`: every cached balance must equal the sum of its ledger rows, and every aggregate the
database triggers keep (Inicio's KPIs, precios atrasados) its recount from the source tables (reports.recount)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import Integer, cast, func, select
from sqlalchemy.orm import Session

from minimarket import store_settings
from minimarket.catalog.models import Product
from minimarket.db import Database
from minimarket.reports.recount import AggregateMismatch, aggregate_mismatches
from minimarket.stock.models import Balance, Location, Movement
from minimarket.stock.totals import total_mismatches

_MILLI = Decimal("0.001")


@dataclass(frozen=True)
class Mismatch:
    sku: str
    location: str
    balance: Decimal
    ledger_sum: Decimal
    last_balance_after: Decimal | None
    note: str | None = None  # a per-product total's problem (stock.totals), said as it is

    @property
    def problem(self) -> str:
        if self.note:
            return self.note
        if self.balance != self.ledger_sum:
            return f"existencia {self.balance} ≠ suma del libro {self.ledger_sum}"
        return f"existencia {self.balance} ≠ saldo del último movimiento {self.last_balance_after}"


@dataclass(frozen=True)
class VerifyReport:
    balances_checked: int
    movements_checked: int
    mismatches: list[Mismatch]
    aggregates: list[AggregateMismatch] = field(default_factory=list)  # run_verification's recount

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.aggregates


def _to_milli(value: object) -> Decimal:
    return Decimal(str(value or 0)).quantize(_MILLI)


def _exact_sum(session: Session):  # noqa: ANN202
    """SUM of ledger quantities without rounding error, and how to turn it back into a Decimal.

    PostgreSQL adds NUMERIC exactly. SQLite keeps NUMERIC values as REAL (each one exact to
    3 places within the column limit, but a sum of many drifts), so it adds whole thousandths
    as 64-bit integers instead.
    """
    if session.get_bind().dialect.name == "sqlite":
        return func.sum(cast(func.round(Movement.quantity * 1000), Integer)), lambda v: Decimal(v or 0).scaleb(-3)
    return func.sum(Movement.quantity), lambda v: v


def verify_ledger(session: Session) -> VerifyReport:
    """Recompute balances from the ledger (sums and the last row's balance_after) and compare; and each
    product's kept total and low flag with its balances."""
    total_of, to_decimal = _exact_sum(session)
    sums = {
        (p, loc): (_to_milli(to_decimal(total)), n)
        for p, loc, total, n in session.execute(
            select(Movement.product_id, Movement.location_id, total_of, func.count())
            .group_by(Movement.product_id, Movement.location_id)
        )
    }
    last_ids = (
        select(func.max(Movement.id)).group_by(Movement.product_id, Movement.location_id).scalar_subquery()
    )
    last_after = {
        (p, loc): _to_milli(after)
        for p, loc, after in session.execute(
            select(Movement.product_id, Movement.location_id, Movement.balance_after).where(Movement.id.in_(last_ids))
        )
    }
    balances = {(p, loc): _to_milli(q) for p, loc, q in session.execute(
        select(Balance.product_id, Balance.location_id, Balance.quantity))}
    skus = dict(session.execute(select(Product.id, Product.sku)).all())
    codes = dict(session.execute(select(Location.id, Location.code)).all())
    mismatches = []
    for key in sorted(set(sums) | set(balances)):
        balance = balances.get(key, Decimal("0.000"))
        ledger_sum = sums.get(key, (Decimal("0.000"), 0))[0]
        after = last_after.get(key)
        if balance != ledger_sum or (after is not None and after != balance):
            mismatches.append(Mismatch(sku=skus.get(key[0], str(key[0])), location=codes.get(key[1], str(key[1])),
                                       balance=balance, ledger_sum=ledger_sum, last_balance_after=after))
    per_product: dict[int, Decimal] = {}
    for (product_id, _loc), (total, _n) in sums.items():
        per_product[product_id] = per_product.get(product_id, Decimal("0.000")) + total
    for sku, kept, summed, low, kept_sku in total_mismatches(session, per_product):
        if kept != summed:
            note = f"total del producto {'sin fila' if kept is None else kept} ≠ suma del libro {summed}"
        elif kept_sku != sku:
            note = f"la fila del total guarda el SKU {kept_sku or '(vacío)'}, no el del producto"
        else:
            note = f"marca de bajo mínimo {'sí' if low else 'no'} no coincide con el total {kept}"
        mismatches.append(Mismatch(sku=sku, location="TOTAL", balance=kept if kept is not None else Decimal("0.000"),
                                   ledger_sum=summed, last_balance_after=None, note=note))
    return VerifyReport(balances_checked=len(balances), movements_checked=sum(n for _, n in sums.values()),
                        mismatches=mismatches)


def record_verification(session: Session, report: VerifyReport) -> None:
    """Keep the result of this run where /metrics and the doctor can read it."""
    value = json.dumps({"mismatches": len(report.mismatches), "aggregates": len(report.aggregates), "at": time.time(),
                        "balances": report.balances_checked, "movements": report.movements_checked})
    store_settings.write_value(session, store_settings.LAST_VERIFY, value)


def verify_store(session: Session) -> VerifyReport:
    """The ledger (verify_ledger) and the kept aggregates (reports.recount), in the session's transaction."""
    report = verify_ledger(session)
    return VerifyReport(balances_checked=report.balances_checked, movements_checked=report.movements_checked,
                        mismatches=report.mismatches, aggregates=aggregate_mismatches(session))


def run_verification(database: Database) -> VerifyReport:
    """Verify the ledger and the kept aggregates, and record the result for /metrics (`minimarket verify`,
    doctor, nightly job). On PostgreSQL in one REPEATABLE READ snapshot: a write committed between two of its
    reads (a sale while it runs) would otherwise look like a difference."""
    with database.read() as session:
        if not database.is_sqlite:
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        report = verify_store(session)
    with database.write() as session:
        record_verification(session, report)
    return report
