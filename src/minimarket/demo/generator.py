"""`minimarket demo`: fill an empty database with a believable Argentine minimercado.

Everything is drawn from one `random.Random(seed)`, so a seed and a `today` always give the
same store. The whole history is simulated in memory (stock can never go negative because
every sale and shrinkage is capped by the shelf balance at that moment), then written in one
unit of work with bulk inserts, movements in time order so ids follow time.
"""

from __future__ import annotations

import math
import random
import time as clock
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from itertools import accumulate

from sqlalchemy import func, insert, select

from minimarket.ar.dates import STORE_TZ
from minimarket.accounts.models import AuditEntry
from minimarket.ar.barcode import make_ean13
from minimarket.ar.cuit import cuit_check_digit
from minimarket.catalog.models import Category, Product
from minimarket.db import Database
from minimarket.demo.prices import HOLD_DAYS, PriceListLine, own_markups, write_price_history
from minimarket.errors import Conflict, InvalidInput
from minimarket.demo.catalog import CATEGORIES, PACK_SIZES, SUPPLIERS, CategorySpec, Template
from minimarket.demo.invoices import supplier_fields, write_invoices
from minimarket.stock.models import Balance, Movement
from minimarket.suppliers.models import Supplier

DEP, SAL = 1, 2  # seeded by the foundation migration
ACTOR = "demo"
CHUNK = 5000
CENT, MILLI, ZERO = Decimal("0.01"), Decimal("0.001"), Decimal("0.000")
WEEKDAY = (0.75, 0.9, 0.95, 1.0, 1.25, 1.45, 0.85)  # Monday … Sunday
# A day's rows keep this order so that running balances follow time: deliveries 8:00-8:40,
# shop-floor restock 8:45-8:59, the day's sales 9:00-21:14, shrinkage counted 21:15-21:29.
HOURS = tuple(range(9, 22))
HOUR_CUM = tuple(accumulate((5, 8, 9, 8, 5, 3, 3, 4, 6, 9, 10, 8, 1)))  # siesta is quiet
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class DemoSummary:
    products: int
    categories: int
    suppliers: int
    movements: int
    sales_lines: int
    days: int
    seconds: float


@dataclass
class _Item:
    sku: str
    name: str
    brand: str | None
    category: str
    supplier: str
    fresh: str
    unit: str
    iva: Decimal
    markup: Decimal
    cost: Decimal
    price: Decimal
    rate: float
    buy: float
    lead: int
    idx: int = 0
    barcode: str = ""
    min_stock: Decimal = ZERO
    max_stock: Decimal = ZERO
    shelf: Decimal = ZERO
    stock: dict[int, Decimal] = field(default_factory=lambda: {DEP: ZERO, SAL: ZERO})
    pending: list[tuple[int, Decimal]] = field(default_factory=list)
    updated: datetime | None = None


def database_is_empty(db: Database) -> bool:
    with db.read() as session:
        return not session.scalar(select(func.count()).select_from(Product.__table__))


def generate_demo(db: Database, *, products: int = 600, days: int = 120, seed: int = 42,
                  progress: Progress | None = None, today: date | None = None) -> DemoSummary:
    """Create categories, suppliers, products and `days` days of ledger history ending yesterday."""
    started = clock.perf_counter()
    if products < 1 or days < 1:
        raise InvalidInput(f"{'products' if products < 1 else 'days'}: tiene que ser al menos 1")
    if not database_is_empty(db):
        raise Conflict("La base ya tiene productos: los datos de demostración sólo se cargan en una base vacía")
    report = progress or (lambda _label, _done, _total: None)
    rng = random.Random(seed)
    today = today or datetime.now(STORE_TZ).date()
    # The history ends yesterday so that no movement lies in the future of the store's clock.
    start = today - timedelta(days=days)
    items = _catalogue(rng, products, days, report)
    cuits = _cuits(rng, len(SUPPLIERS))
    price_log: list[PriceListLine] = []
    rows = _simulate(rng, items, start, days, report, price_log)
    markups = own_markups([(it.cost, it.price, it.iva) for it in items], price_log)
    rows.sort(key=lambda r: (r[0], r[1]))
    with db.write() as session:
        if session.scalar(select(func.count()).select_from(Product.__table__)):
            raise Conflict("La base ya tiene productos: los datos de demostración sólo se cargan en una base vacía")
        opened = _at(start, 7, 30)
        used = {it.category for it in items}
        cat_ids = _ensure_named(session, Category.__table__, [{"nombre": c.name} for c in CATEGORIES if c.name in used])
        used = {it.supplier for it in items}
        sup_ids = _ensure_named(session, Supplier.__table__, [
            {"nombre": name, "cuit": cuit, "activo": True, "creado_en": opened, **supplier_fields(key, lead)}
            for (key, name, lead), cuit in zip(SUPPLIERS, cuits, strict=True) if key in used])
        sup_by_key = {key: sup_ids[name] for key, name, _ in SUPPLIERS if key in used}
        session.execute(insert(Product.__table__), [{
            "sku": it.sku, "codigo_barras": it.barcode, "nombre": it.name, "marca": it.brand,
            "categoria_id": cat_ids[it.category], "unidad": it.unit, "costo": it.cost, "precio": it.price,
            "iva": it.iva, "stock_minimo": it.min_stock, "stock_maximo": it.max_stock,
            "proveedor_id": sup_by_key[it.supplier], "activo": True, "creado_en": opened,
            "actualizado_en": it.updated or opened, "margen": markup} for it, markup in zip(items, markups)])
        ids = dict(session.execute(select(Product.sku, Product.id)).all())
        pids = [ids[it.sku] for it in items]
        stored = dict(session.execute(select(Supplier.id, Supplier.cuit)).all())
        rows = write_invoices(session, rows, items, pids, sup_by_key, {k: stored[i] for k, i in sup_by_key.items()},
                              seed=seed, location_id=DEP)
        write_price_history(session, price_log, pids, {key: name for key, name, _ in SUPPLIERS})
        for done in range(0, len(rows), CHUNK):
            session.execute(insert(Movement.__table__), [{
                "producto_id": pids[r[2]], "ubicacion_id": r[3], "tipo": r[4], "cantidad": r[5],
                "saldo_posterior": r[6], "costo_unitario": r[7], "precio_unitario": r[8], "motivo": r[9],
                "referencia": r[10], "actor": ACTOR, "clave_idempotencia": None, "operacion": r[11],
                "creado_en": r[0]} for r in rows[done:done + CHUNK]])
            report("Guardando movimientos", min(done + CHUNK, len(rows)), len(rows))
        last = today - timedelta(days=1)
        closed = _at(last, 21, 30)
        session.execute(insert(Balance.__table__), [
            {"producto_id": pids[i], "ubicacion_id": loc, "cantidad": qty, "actualizado_en": closed}
            for i, it in enumerate(items) for loc, qty in it.stock.items()])
        counts = {"products": len(items), "categories": len({it.category for it in items}),
                  "suppliers": len({it.supplier for it in items}), "movements": len(rows),
                  "sales_lines": sum(1 for r in rows if r[4] == "venta"), "days": days}
        session.execute(insert(AuditEntry.__table__), [{
            "creado_en": datetime.now(UTC), "actor": ACTOR, "accion": "demo.generate", "entidad": "demo",
            "entidad_id": f"seed:{seed}", "antes": None,
            "despues": {**counts, "seed": seed, "from": start.isoformat(), "to": last.isoformat()},
            "request_id": None}])
    return DemoSummary(**counts, seconds=round(clock.perf_counter() - started, 3))


# --- catalogue ------------------------------------------------------------------------------


def _catalogue(rng: random.Random, n: int, days: int, report: Progress) -> list[_Item]:
    pools = [_candidates(spec) for spec in CATEGORIES]
    capacity = sum(len(p) for p in pools)
    if n > capacity:
        raise InvalidInput(f"products: el catálogo de demostración llega hasta {capacity} productos")
    quota = [0] * len(pools)
    for _ in range(n):  # Sainte-Laguë: shares follow the category weights, capped by each pool
        i = max((i for i in range(len(pools)) if quota[i] < len(pools[i])),
                key=lambda i: CATEGORIES[i].weight / (2 * quota[i] + 1))
        quota[i] += 1
    leads = {key: lead for key, _, lead in SUPPLIERS}
    companies: dict[str | None, list[int]] = {}
    inflation = 1.03 ** (days / 30)  # reference prices are today's; the history starts cheaper
    items: list[_Item] = []
    for spec, pool, k in zip(CATEGORIES, pools, quota, strict=True):
        chosen = sorted(_pick(rng, pool, k))
        for seq, j in enumerate(chosen, 1):
            tpl, brand, name, ref, pop, pack = pool[j]
            iva = Decimal(tpl.iva)
            markup = Decimal(str(round(min(0.60, max(0.25, spec.markup + rng.uniform(-0.05, 0.08))), 3)))
            cost = _money(ref * rng.uniform(0.92, 1.08) / inflation / float((1 + markup) * (1 + iva / 100)))
            rate = tpl.rate * pop * math.exp(rng.gauss(0, 0.3)) / (pack * 1.5 if pack > 1 else 1)
            supplier = tpl.supplier or spec.supplier
            item = _Item(sku=f"{spec.prefix}-{seq:04d}", idx=len(items), name=name, brand=brand, category=spec.name,
                         supplier=supplier, fresh=spec.fresh, unit=tpl.unit, iva=iva, markup=markup, cost=cost,
                         price=ZERO, rate=rate, buy=tpl.buy, lead=leads[supplier])
            item.price = _shelf_price(item)
            item.barcode = _barcode(rng, companies, brand)
            _stock_levels(item)
            items.append(item)
            report("Armando el catálogo", len(items), n)
    return items


def _candidates(spec: CategorySpec) -> list[tuple[Template, str | None, str, float, float, int]]:
    """Every (template, brand, variant) of a category, then pack presentations of unit goods."""
    base = []
    for tpl in spec.templates:
        brands = [(b.partition(":")[0], float(b.partition(":")[2] or 1)) for b in tpl.brands.split("|")] \
            if tpl.brands else [(None, 1.0)]
        for bi, (brand, factor) in enumerate(brands):
            for desc, size, price, *pop in tpl.variants:
                pre, post = ("", desc[1:]) if desc.startswith("~") else (desc, "")
                name = " ".join(f"{tpl.name} {pre} {brand or ''} {post} {size}".split())
                popularity = (pop[0] if pop else 1.0) / (1 + 0.35 * bi)
                base.append((tpl, brand, name, price * factor, popularity, 1))
    packs = [(tpl, brand, f"{name} pack x{n}", price * n * 0.95, pop / n, n)
             for n in PACK_SIZES for tpl, brand, name, price, pop, _ in base if tpl.unit == "u"]
    return base + packs


def _pick(rng: random.Random, pool: list[tuple], k: int) -> list[int]:
    """Weighted sampling without replacement that covers templates before repeating them.

    The best-selling template's favourite variant comes first, then every other template's,
    then each template's second choice, and so on; packs only when a category runs out.
    """
    by_tpl: dict[int, list[int]] = {}
    for j, c in enumerate(pool):
        by_tpl.setdefault(id(c[0]), []).append(j)
    tpl_key = {t: rng.random() ** (1 / pool[js[0]][0].rate) for t, js in by_tpl.items()}
    rank = {}
    for js in by_tpl.values():
        for r, j in enumerate(sorted(js, key=lambda j: (pool[j][5] > 1, -rng.random() ** (1 / pool[j][4])))):
            rank[j] = r
    order = sorted(range(len(pool)), key=lambda j: (pool[j][5] > 1, rank[j], -tpl_key[id(pool[j][0])]))
    return order[:k]


def _barcode(rng: random.Random, companies: dict[str | None, list[int]], brand: str | None) -> str:
    """779 + a company number per brand + the brand's item number, as GS1 Argentina assigns them."""
    if brand not in companies:
        taken = {c[0] for c in companies.values()}
        code = rng.randrange(1000, 10000)
        while code in taken:
            code = rng.randrange(1000, 10000)
        companies[brand] = [code, rng.randrange(100, 2000)]
    entry = companies[brand]
    entry[1] += 1
    return make_ean13(f"779{entry[0]:04d}{entry[1]:05d}")


def _stock_levels(item: _Item) -> None:
    """Minimum covers the supplier's lead time plus a safety margin; maximum adds a buying cycle."""
    cycle = 3 if item.fresh else 10
    low, high, shelf = item.rate * (item.lead + 2), item.rate * (item.lead + 2 + cycle), item.rate * 4
    if item.unit == "u":
        item.min_stock = Decimal(max(1, math.ceil(low)))
        item.max_stock = Decimal(max(int(item.min_stock) + 2, math.ceil(high)))
        item.shelf = Decimal(max(2, math.ceil(shelf)))
    else:
        half = Decimal("0.5")
        item.min_stock = max(half, (Decimal(str(low)) / half).to_integral_value(ROUND_CEILING) * half).quantize(MILLI)
        item.max_stock = max(item.min_stock + 1, (Decimal(str(high)) / half).to_integral_value(ROUND_CEILING) * half)
        item.max_stock = item.max_stock.quantize(MILLI)
        item.shelf = Decimal(str(max(1.0, shelf))).quantize(MILLI)


def _cuits(rng: random.Random, n: int) -> list[str]:
    """Company CUITs (prefix 30) with a valid check digit; bodies without one are skipped, as AFIP does."""
    cuits: list[str] = []
    while len(cuits) < n:
        body = f"30{rng.randrange(50_000_000, 72_000_000):08d}"
        digit = cuit_check_digit(body)
        if digit is not None and body + str(digit) not in cuits:
            cuits.append(body + str(digit))
    return cuits


def _ensure_named(session, table, rows: list[dict]) -> dict[str, int]:  # noqa: ANN001
    """Reuse rows that already exist by name (an operator may have typed a few); insert the rest."""
    existing = dict(session.execute(select(table.c.nombre, table.c.id)).all())
    if "cuit" in table.c:  # never collide with a CUIT already on file
        taken = set(session.execute(select(table.c.cuit)).scalars())
        rows = [{**r, "cuit": None if r["cuit"] in taken else r["cuit"]} for r in rows]
    new = [r for r in rows if r["nombre"] not in existing]
    if new:
        session.execute(insert(table), new)
    return dict(session.execute(select(table.c.nombre, table.c.id)).all())


# --- simulation -----------------------------------------------------------------------------


def _simulate(rng: random.Random, items: list[_Item], start: date, days: int, report: Progress,
              price_log: list[PriceListLine]) -> list[tuple]:
    """Rows (when, seq, item, location, type, delta, balance_after, cost, price, reason, reference, operation)."""
    rows: list[tuple] = []
    by_supplier: dict[str, list[_Item]] = {}
    for it in items:
        by_supplier.setdefault(it.supplier, []).append(it)
    raise_day = {key: rng.randint(1, 28) for key in by_supplier}
    remitos = {key: rng.randrange(10_000, 90_000) for key in by_supplier}

    def op() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def post(when: datetime, it: _Item, loc: int, kind: str, delta: Decimal, reason: str | None,
             reference: str | None, operation: str, price: Decimal | None = None) -> None:
        it.stock[loc] = after = it.stock[loc] + delta
        if after < 0:  # every outflow below is capped by the balance; this guards the guard
            raise RuntimeError(f"demo: saldo negativo de {it.sku} en {loc}")
        rows.append((when, len(rows), it.idx, loc, kind, delta, after, it.cost, price, reason, reference,
                     operation))

    def restock(when: datetime, it: _Item, wanted: Decimal, operation: str) -> None:
        q = min(it.stock[DEP], wanted)
        post(when, it, DEP, "transferencia", -q, "Reposición del salón", "SAL", operation)
        post(when, it, SAL, "transferencia", q, "Reposición del salón", "DEP", operation)

    for d in range(days):
        day = start + timedelta(days=d)
        label = f"demo:{day.isoformat()}"
        for key, group in by_supplier.items():  # monthly price lists; shelf prices follow cost
            if d and day.day == raise_day[key]:
                step = Decimal(str(round(1 + rng.uniform(0.02, 0.04), 4)))
                for it in group:
                    before, it.cost, it.updated = (it.cost, it.price), _money(it.cost * step), _at(day, 7, 0)
                    if d < days - HOLD_DAYS:  # the newest lists are not on the shelves yet
                        it.price = _shelf_price(it)
                    price_log.append(PriceListLine(it.updated, key, it.idx, *before, it.cost, it.price))
        if d == 0:
            when, operation = _at(day, 8, 0), op()
            for it in items:
                opening = _qty(it, float(it.max_stock) * rng.uniform(0.6, 1.0))
                post(when, it, DEP, "entrada", max(opening, it.shelf), "Stock inicial", "demo", operation)
        for key, group in by_supplier.items():
            arriving = [(it, q) for it in group for due, q in it.pending if due == d]
            if arriving:
                when, operation = _at(day, 8, rng.randrange(0, 40), rng.randrange(60)), op()
                remitos[key] += 1
                for it, q in arriving:
                    post(when, it, DEP, "entrada", q, "Entrega de proveedor", f"demo:remito:0003-{remitos[key]:08d}",
                         operation)
                    it.pending = [p for p in it.pending if p[0] != d]
        move_at, move_op = _at(day, 8, rng.randrange(45, 58), rng.randrange(60)), op()
        factor = WEEKDAY[day.weekday()] * (1.2 if day.day <= 5 else 0.9 if day.day >= 25 else 1.0)
        for it in items:
            if it.stock[SAL] < it.shelf / 2 and it.stock[DEP] > 0:  # the morning restock of the shop floor
                restock(move_at, it, it.shelf - it.stock[SAL], move_op)
            demand = it.rate * factor * math.exp(rng.gauss(0, 0.25))
            if it.category == "Bebidas alcohólicas" and day.weekday() in (4, 5):
                demand *= 1.3
            if it.fresh == "pan" and day.weekday() == 6:  # facturas on Sunday morning
                demand *= 1.4
            wanted = _demand(rng, it, demand)
            if wanted > 0:
                hour = rng.choices(HOURS, cum_weights=HOUR_CUM)[0]
                when = _at(day, hour, rng.randrange(15 if hour == 21 else 60), rng.randrange(60))
                if wanted > it.stock[SAL] and it.stock[DEP] > 0:  # fetched from the back room
                    restock(when - timedelta(minutes=1), it, wanted - it.stock[SAL], op())
                sold = min(wanted, it.stock[SAL])
                if sold > 0:
                    post(when, it, SAL, "venta", -sold, None, label, op(), it.price)
            _shrink(rng, it, day, post, op)
            position = it.stock[DEP] + it.stock[SAL] + sum(q for _, q in it.pending)
            if position <= it.min_stock:  # order at closing time; no deliveries on Sunday
                due = d + it.lead + (1 if (day + timedelta(days=it.lead)).weekday() == 6 else 0)
                it.pending.append((due, _qty(it, float(it.max_stock - position) * rng.uniform(1.0, 1.15), up=True)))
        report("Simulando ventas", d + 1, days)
    return rows


def _demand(rng: random.Random, it: _Item, mean: float) -> Decimal:
    if it.unit == "u":
        return Decimal(_poisson(rng, mean))
    customers = _poisson(rng, mean / it.buy)
    if it.unit == "l":  # bulk cleaning liquids: customers bring a bottle
        return sum((Decimal(rng.choice(("0.5", "1", "1", "2", "5"))) for _ in range(customers)), ZERO)
    return sum((_qty(it, it.buy * rng.uniform(0.5, 1.6)) for _ in range(customers)), ZERO)


def _shrink(rng: random.Random, it: _Item, day: date, post, op) -> None:  # noqa: ANN001
    """Shrinkage: spoiled produce, day-old bread, expired dairy, now and then a broken item."""
    chance, reason = {"verdura": (0.04, "Mal estado"), "pan": (0.03, "Vencimiento"),
                      "fresco": (0.01, "Vencimiento")}.get(it.fresh, (0.001, "Rotura"))
    if it.stock[SAL] <= 0 or rng.random() >= chance:
        return
    if it.unit == "u":
        q = Decimal(min(int(it.stock[SAL]), rng.randint(1, 3)))
    else:
        q = min(it.stock[SAL], _qty(it, float(it.stock[SAL]) * rng.uniform(0.03, 0.10)))
    if q > 0:
        when = _at(day, 21, rng.randrange(15, 30), rng.randrange(60))  # counted at closing
        post(when, it, SAL, "merma", -q, reason, "demo", op())


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


def _qty(it: _Item, value: float, *, up: bool = False) -> Decimal:
    if it.unit == "u":
        return Decimal(max(1, math.ceil(value) if up else round(value)))
    return max(MILLI, Decimal(str(value)).quantize(MILLI, rounding=ROUND_CEILING if up else ROUND_HALF_UP))


def _money(value: Decimal | float) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def _shelf_price(it: _Item) -> Decimal:
    """Cost plus markup plus IVA, rounded the way a store labels its shelves."""
    raw = it.cost * (1 + it.markup) * (1 + it.iva / 100)
    step = Decimal(10) if raw < 1000 else Decimal(50) if raw < 10000 else Decimal(100)
    return max(step, (raw / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step).quantize(CENT)


def _at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=STORE_TZ).astimezone(UTC)
