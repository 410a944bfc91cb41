"""The aggregates that database triggers keep, recounted from their source tables (`minimarket verify`).

* Inicio's stock figures (`kpi_existencias`, migration 0013): from `productos` and `existencias_totales`,
  in exact integers (thousandths of a unit × cents: the unit of 10⁻⁵ peso the table keeps).
* Inicio's figures per store day (`kpi_dias`, 0013): from `movimientos_stock`, grouped by the store's day.
  Sales net of IVA are not recounted: a movement does not keep the IVA it was sold with, and the product's
  IVA may have changed since (the trigger used the one of the moment).
* Precios atrasados (`precios_atrasados`, 0014): every product through pricing.rules (the rule's
  specification, in Decimal), against the kept rows.

(`existencias_totales` itself is recounted from the balances by stock.totals.total_mismatches.)
Read it all in one snapshot (stock.verify.run_verification): a write committing between two reads would
otherwise look like a mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from minimarket.catalog.models import Category, Product
from minimarket.pricing import rules
from minimarket.pricing.models import LaggingPrice
from minimarket.pricing.settings import load_pricing_settings
from minimarket.reports.models import KpiDay, KpiStock
from minimarket.reports.series import store_day
from minimarket.stock.models import Movement, ProductStock

_E5 = Decimal(100_000)
_MILLI, _CENT = Decimal("0.001"), Decimal("0.01")
_STOCK_FIGURES = (("active", "productos activos"), ("below_minimum", "productos bajo mínimo"),
                  ("out_of_stock", "productos sin stock"), ("value_cost", "valor del stock a costo"),
                  ("value_price", "valor del stock a precio"))
# kpi_dias' figures recounted, with the precision Inicio shows them in (SQLite sums its floats in another order).
_DAY_FIGURES = (("movements", "movimientos", None), ("units_in", "unidades que entraron", _MILLI),
                ("units_sold", "unidades vendidas", _MILLI), ("sales_amount", "ventas (importe)", _CENT),
                ("sales_cost", "ventas (a costo)", _CENT))
_LAGGING_COLUMNS = (("category_id", "categoría"), ("sku", "SKU"), ("price", "precio"), ("vat_rate", "IVA"),
                    ("suggested", "sugerido"))


@dataclass(frozen=True)
class AggregateMismatch:
    """One kept figure or row that differs from its recount, said in Spanish."""

    what: str  # which aggregate and figure
    row: str  # which row: "total", a store day, a SKU
    kept: str
    recounted: str

    @property
    def problem(self) -> str:
        return f"{self.what} ({self.row}): guardado {self.kept}, recontado {self.recounted}"


def _decimal(value: object) -> Decimal:
    if isinstance(value, Decimal):
        return value
    return Decimal(str(value if value is not None else 0))


def _pesos_e5(value: int) -> str:
    return f"$ {(Decimal(value) / _E5).normalize():f}"


def _recount_stock(rows: list) -> dict[str, int]:  # noqa: ANN001
    recounted = dict.fromkeys((name for name, _ in _STOCK_FIGURES), 0)
    for r in rows:
        if not r.active:
            continue
        quantity = _decimal(r.quantity).quantize(_MILLI)
        recounted["active"] += 1
        recounted["below_minimum"] += r.low is None or bool(r.low)  # no totals row yet: never moved, low
        recounted["out_of_stock"] += quantity <= 0
        recounted["value_cost"] += int(quantity * _decimal(r.cost).quantize(_CENT) * _E5)
        recounted["value_price"] += int(quantity * _decimal(r.price).quantize(_CENT) * _E5)
    return recounted


def kept_stock_figures(session: Session) -> dict[str, int]:
    """The five figures as the rows of `kpi_existencias` sum them (values in 10⁻⁵ peso)."""
    columns = [getattr(KpiStock, name) for name, _ in _STOCK_FIGURES]
    sums = session.execute(select(*(func.coalesce(func.sum(c), 0) for c in columns))).one()
    return {name: int(_decimal(value)) for (name, _), value in zip(_STOCK_FIGURES, sums, strict=True)}


def kept_days(session: Session) -> dict[date, dict[str, Decimal]]:
    names = [name for name, _, _ in _DAY_FIGURES]
    rows = session.execute(select(KpiDay.day, *(func.sum(getattr(KpiDay, n)) for n in names)).group_by(KpiDay.day))
    return {_as_date(day): dict(zip(names, map(_decimal, values), strict=True)) for day, *values in rows}


def recounted_days(session: Session) -> dict[date, dict[str, Decimal]]:
    """Each store day's figures from the ledger, as the trigger of 0013 adds them."""
    m = Movement
    sale, entry = m.type == "venta", m.type == "entrada"
    day = store_day(session)
    rows = session.execute(
        select(day, func.count(),
               func.sum(case((entry, m.quantity), else_=0)), func.sum(case((sale, -m.quantity), else_=0)),
               func.sum(case((sale, -m.quantity * func.coalesce(m.unit_price, 0)), else_=0)),
               func.sum(case((sale, -m.quantity * func.coalesce(m.unit_cost, 0)), else_=0)))
        .group_by(day))
    names = [name for name, _, _ in _DAY_FIGURES]
    return {_as_date(d): dict(zip(names, map(_decimal, values), strict=True)) for d, *values in rows}


def _as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _day_mismatches(session: Session) -> list[AggregateMismatch]:
    kept, recounted = kept_days(session), recounted_days(session)
    zero = {name: Decimal(0) for name, _, _ in _DAY_FIGURES}
    found = []
    for day in sorted(set(kept) | set(recounted)):
        have, want = kept.get(day, zero), recounted.get(day, zero)
        for name, label, places in _DAY_FIGURES:
            a, b = (have[name], want[name]) if places is None else (have[name].quantize(places),
                                                                    want[name].quantize(places))
            if a != b:
                found.append(AggregateMismatch(f"KPI de Inicio: {label} del día", day.isoformat(), str(a), str(b)))
    return found


def _lagging_mismatches(session: Session, rows: list) -> list[AggregateMismatch]:  # noqa: ANN001
    """Each product that lags by pricing.rules against the kept rows: missing, extra or different."""
    settings = load_pricing_settings(session)
    expected = {}
    for r in rows:
        if not r.active or r.cost is None or _decimal(r.cost) <= 0:
            continue
        raw = rules.raw_price(_decimal(r.cost), rules.resolve_markup(r.markup, r.target, settings.default_markup),
                              _decimal(r.vat_rate))
        if _decimal(r.price) < raw:
            expected[r.id] = {"category_id": r.category_id, "sku": r.sku, "price": _decimal(r.price).quantize(_CENT),
                              "vat_rate": _decimal(r.vat_rate).quantize(Decimal("0.1")),
                              "suggested": rules.round_price(raw, settings.rounding)}
    kept = {}
    k = LaggingPrice
    for product_id, category_id, sku, price, vat, suggested, ratio in session.execute(
            select(k.product_id, k.category_id, k.sku, k.price, k.vat_rate, k.suggested, k.ratio)):
        kept[product_id] = {"category_id": category_id, "sku": sku, "price": _decimal(price).quantize(_CENT),
                            "vat_rate": _decimal(vat).quantize(Decimal("0.1")),
                            "suggested": _decimal(suggested).quantize(_CENT), "ratio": _decimal(ratio)}
    skus = {r.id: r.sku for r in rows}
    what = "Precios atrasados"
    found = []
    for product_id in sorted(set(expected) | set(kept)):
        sku = skus.get(product_id, f"producto {product_id}")
        want, have = expected.get(product_id), kept.get(product_id)
        if have is None:
            found.append(AggregateMismatch(what, sku, "sin fila", f"atrasado, sugerido {want['suggested']}"))
        elif want is None:
            found.append(AggregateMismatch(what, sku, f"atrasado, sugerido {have['suggested']}", "no está atrasado"))
        else:
            differ = [(label, have[name], want[name]) for name, label in _LAGGING_COLUMNS if have[name] != want[name]]
            ratio = want["price"] / want["suggested"]
            if abs(have["ratio"] - ratio) > Decimal("1e-12"):
                differ.append(("precio ÷ sugerido", have["ratio"], ratio.quantize(Decimal("1e-15"))))
            if differ:
                found.append(AggregateMismatch(what, sku, ", ".join(f"{label} {a}" for label, a, _ in differ),
                                               ", ".join(f"{label} {b}" for label, _, b in differ)))
    return found


def aggregate_mismatches(session: Session) -> list[AggregateMismatch]:
    """Every kept aggregate figure or row that differs from its recount from the source tables."""
    rows = session.execute(
        select(Product.id, Product.sku, Product.active, Product.cost, Product.price, Product.vat_rate,
               Product.markup, Product.category_id, Category.target_markup.label("target"),
               ProductStock.quantity, ProductStock.low)
        .select_from(Product).outerjoin(Category, Category.id == Product.category_id)
        .outerjoin(ProductStock, ProductStock.product_id == Product.id)
    ).all()
    kept, recounted = kept_stock_figures(session), _recount_stock(rows)
    found = []
    for name, label in _STOCK_FIGURES:
        if kept[name] != recounted[name]:
            show = _pesos_e5 if name.startswith("value") else str
            found.append(AggregateMismatch(f"KPI de Inicio: {label}", "total", show(kept[name]), show(recounted[name])))
    return found + _day_mismatches(session) + _lagging_mismatches(session, rows)
