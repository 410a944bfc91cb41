"""The demo store's catalogue: which products, at what cost and price, with which stock levels.

Step one of `minimarket demo` (then the simulated days, then the writes). Products come from
the templates of `demo/catalog.py`: every (template, brand, variant) first, then pack presentations;
a store larger than that (up to 100,000 products) also gets regional brands and more pack sizes,
ranked after the leading brands so the demand patterns stay the same.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import NamedTuple

from minimarket.ar.barcode import make_ean13
from minimarket.ar.cuit import cuit_check_digit
from minimarket.ar.dates import STORE_TZ
from minimarket.demo.prices import HOLD_DAYS, PriceListLine
from minimarket.errors import InvalidInput
from minimarket.demo.catalog import (
    CATEGORIES,
    EXTRA_PACK_SIZES,
    PACK_SIZES,
    REGIONAL_BRANDS,
    SUPPLIERS,
    CategorySpec,
    Template,
)

DEP, SAL = 1, 2  # seeded by the foundation migration
CENT, MILLI, ZERO = Decimal("0.01"), Decimal("0.001"), Decimal("0.000")
Progress = Callable[[str, int, int], None]
REPORT_EVERY = 1000  # catalogue items between progress reports


@dataclass
class Item:
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
    updated: datetime | None = None  # when today's price list took effect (None: the opening one)
    final_cost: Decimal = ZERO  # today's cost and shelf price, what the catalogue shows at the end
    final_price: Decimal = ZERO


PriceChanges = dict[int, list[tuple[Item, Decimal, Decimal]]]  # day index -> (item, new cost, new price)


class Candidate(NamedTuple):
    template: Template
    brand: str | None
    name: str
    price: float  # reference shelf price
    popularity: float
    pack: int
    tier: int  # 0 leading brands, 1 their packs, 2 regional brands and more packs


def plan_catalogue(rng: random.Random, n: int, days: int, report: Progress) -> list[Item]:
    """`n` products spread over the categories by weight, each with cost, price and stock levels."""
    regional = _regional_brands_needed(n)
    pools = [candidates(spec, regional) for spec in CATEGORIES]
    quota = _quotas(n, [len(p) for p in pools])
    leads = {key: lead for key, _, lead in SUPPLIERS}
    companies: dict[str | None, list[int]] = {}
    inflation = 1.03 ** (days / 30)  # reference prices are today's; the history starts cheaper
    items: list[Item] = []
    for spec, pool, k in zip(CATEGORIES, pools, quota, strict=True):
        for seq, j in enumerate(sorted(_pick(rng, pool, k)), 1):
            c = pool[j]
            iva = Decimal(c.template.iva)
            markup = Decimal(str(round(min(0.60, max(0.25, spec.markup + rng.uniform(-0.05, 0.08))), 3)))
            cost = money(c.price * rng.uniform(0.92, 1.08) / inflation / float((1 + markup) * (1 + iva / 100)))
            rate = c.template.rate * c.popularity * math.exp(rng.gauss(0, 0.3)) / (c.pack * 1.5 if c.pack > 1 else 1)
            supplier = c.template.supplier or spec.supplier
            item = Item(sku=f"{spec.prefix}-{seq:04d}", idx=len(items), name=c.name, brand=c.brand,
                        category=spec.name, supplier=supplier, fresh=spec.fresh, unit=c.template.unit, iva=iva,
                        markup=markup, cost=cost, price=ZERO, rate=rate, buy=c.template.buy, lead=leads[supplier])
            item.price = shelf_price(item)
            item.barcode = _barcode(rng, companies, c.brand)
            _stock_levels(item)
            items.append(item)
            if len(items) % REPORT_EVERY == 0 or len(items) == n:
                report("Armando el catálogo", len(items), n)
    return items


def plan_price_lists(rng: random.Random, items: list[Item], start: date, days: int,
                     log: list[PriceListLine]) -> PriceChanges:
    """Monthly price lists: each supplier raises 2-4 % on its own day of the month (not on the first
    simulated day) and shelf prices follow cost, except lists of the last HOLD_DAYS days (not on the
    shelves yet). Items keep their opening cost and price; the changes apply day by day in the
    simulation, final_cost/final_price hold today's, and `log` gets every product's change in time order."""
    by_supplier: dict[str, list[Item]] = {}
    for it in items:
        by_supplier.setdefault(it.supplier, []).append(it)
        it.final_cost, it.final_price = it.cost, it.price
    raise_day = {key: rng.randint(1, 28) for key in by_supplier}
    changes: PriceChanges = {}
    for d in range(1, days):
        day = start + timedelta(days=d)
        for key, group in by_supplier.items():
            if day.day != raise_day[key]:
                continue
            step = Decimal(str(round(1 + rng.uniform(0.02, 0.04), 4)))
            for it in group:
                before = (it.final_cost, it.final_price)
                it.final_cost, it.updated = money(it.final_cost * step), at(day, 7, 0)
                if d < days - HOLD_DAYS:  # the newest lists are not on the shelves yet
                    it.final_price = shelf_price(it, it.final_cost)
                changes.setdefault(d, []).append((it, it.final_cost, it.final_price))
                log.append(PriceListLine(it.updated, key, it.idx, *before, it.final_cost, it.final_price))
    return changes


def capacity(regional: int = len(REGIONAL_BRANDS)) -> int:
    """How many products `candidates` offers over all categories (counted, not built)."""
    total = 0
    for spec in CATEGORIES:
        for tpl in spec.templates:
            brands = len(tpl.brands.split("|")) if tpl.brands else 1
            presentations = 1 + len(PACK_SIZES) if tpl.unit == "u" else 1
            total += len(tpl.variants) * brands * presentations
            if regional:
                extra_packs = len(EXTRA_PACK_SIZES) if tpl.unit == "u" else 0
                regional_presentations = presentations + extra_packs if tpl.brands else 0
                total += len(tpl.variants) * (brands * extra_packs + regional * regional_presentations)
    return total


def _regional_brands_needed(n: int) -> int:
    """The fewest regional brands that make room for `n` products (0 while the leading ones suffice)."""
    if capacity(0) >= n:
        return 0
    low, high = 1, len(REGIONAL_BRANDS)  # capacity grows with every brand: bisect
    if capacity(high) < n:
        raise InvalidInput(f"products: el catálogo de demostración llega hasta {capacity(high)} productos")
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if capacity(middle) >= n else (middle + 1, high)
    return low


def _quotas(n: int, sizes: list[int]) -> list[int]:
    """Sainte-Laguë: category shares follow their weights, capped by what each category can offer."""
    quota = [0] * len(sizes)
    for _ in range(n):
        i = max((i for i in range(len(sizes)) if quota[i] < sizes[i]),
                key=lambda i: CATEGORIES[i].weight / (2 * quota[i] + 1))
        quota[i] += 1
    return quota


def candidates(spec: CategorySpec, regional: int = 0) -> list[Candidate]:
    """Every (template, brand, variant) of a category, then packs of unit goods; with `regional` > 0
    also that many regional brands per branded template and packs in the extra sizes."""
    base, extra = [], []
    for tpl in spec.templates:
        brands = [(b.partition(":")[0], float(b.partition(":")[2] or 1)) for b in tpl.brands.split("|")] \
            if tpl.brands else [(None, 1.0)]
        if tpl.brands and regional:
            # A regional maker prices a little under the usual brand; earlier ones sell more.
            brands += [(name, 0.8 + 0.05 * (i % 5)) for i, name in enumerate(REGIONAL_BRANDS[:regional])]
        for bi, (brand, factor) in enumerate(brands):
            for desc, size, price, *pop in tpl.variants:
                pre, post = ("", desc[1:]) if desc.startswith("~") else (desc, "")
                name = " ".join(f"{tpl.name} {pre} {brand or ''} {post} {size}".split())
                popularity = (pop[0] if pop else 1.0) / (1 + 0.35 * bi)
                target = base if bi < len(tpl.brands.split("|")) or not tpl.brands else extra
                target.append(Candidate(tpl, brand, name, price * factor, popularity, 1, 0 if target is base else 2))
    packs = [_pack(c, n, 1) for n in PACK_SIZES for c in base if c.template.unit == "u"]
    if regional:
        packs += [_pack(c, n, 2) for n in EXTRA_PACK_SIZES for c in base if c.template.unit == "u"]
        packs += [_pack(c, n, 2) for n in PACK_SIZES + EXTRA_PACK_SIZES for c in extra if c.template.unit == "u"]
    return base + packs + extra


def _pack(c: Candidate, n: int, tier: int) -> Candidate:
    return Candidate(c.template, c.brand, f"{c.name} pack x{n}", c.price * n * 0.95, c.popularity / n, n, tier)


def _pick(rng: random.Random, pool: list[Candidate], k: int) -> list[int]:
    """Weighted sampling without replacement that covers templates before repeating them.

    The best-selling template's favourite variant comes first, then every other template's,
    then each template's second choice, and so on; packs only when a category runs out, and
    regional brands after those.
    """
    by_tpl: dict[int, list[int]] = {}
    for j, c in enumerate(pool):
        by_tpl.setdefault(id(c.template), []).append(j)
    tpl_key = {t: rng.random() ** (1 / pool[js[0]].template.rate) for t, js in by_tpl.items()}
    rank = {}
    for js in by_tpl.values():
        for r, j in enumerate(sorted(js, key=lambda j: (pool[j].tier, -rng.random() ** (1 / pool[j].popularity)))):
            rank[j] = r
    order = sorted(range(len(pool)), key=lambda j: (pool[j].tier, rank[j], -tpl_key[id(pool[j].template)]))
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


def _stock_levels(item: Item) -> None:
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


def cuits(rng: random.Random, n: int) -> list[str]:
    """Company CUITs (prefix 30) with a valid check digit; bodies without one are skipped, as AFIP does."""
    found: list[str] = []
    while len(found) < n:
        body = f"30{rng.randrange(50_000_000, 72_000_000):08d}"
        digit = cuit_check_digit(body)
        if digit is not None and body + str(digit) not in found:
            found.append(body + str(digit))
    return found


def qty(it: Item, value: float, *, up: bool = False) -> Decimal:
    if it.unit == "u":
        return Decimal(max(1, math.ceil(value) if up else round(value)))
    return max(MILLI, Decimal(str(value)).quantize(MILLI, rounding=ROUND_CEILING if up else ROUND_HALF_UP))


def money(value: Decimal | float) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def shelf_price(it: Item, cost: Decimal | None = None) -> Decimal:
    """Cost plus markup plus IVA, rounded the way a store labels its shelves."""
    raw = (it.cost if cost is None else cost) * (1 + it.markup) * (1 + it.iva / 100)
    step = Decimal(10) if raw < 1000 else Decimal(50) if raw < 10000 else Decimal(100)
    return max(step, (raw / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step).quantize(CENT)


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=STORE_TZ).astimezone(UTC)
