"""Hostile JSON for the write routes, and the one check every fuzz test makes: never a 5xx, always the
one error shape. Used by test_bad_input.py (stock, inventory, prices), test_negocio_fuzz.py
(suppliers, invoices) and test_purchase_orders.py."""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.helpers import error_of

# Examples per route: each is one request, and the strategies below aim at the edges directly (a
# route's own field names with hostile values), so a few dozen find what a few hundred would.
FUZZ_EXAMPLES = int(os.environ.get("MINIMARKET_FUZZ_EXAMPLES", "30"))  # raise it for a deeper local run

SKUS = st.sampled_from(["YERBA-1", "yerba-1", "7790387000016", "NO-EXISTE", "", " ", "ñ"])
NUMBERS = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["0", "0.250", "-1", "1e3", "NaN", "Infinity", "1_000", " 5 ", "0x10", "٣"]),
)
JSON_LEAVES = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=30), SKUS)
JSON_VALUES = st.recursive(JSON_LEAVES, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)), max_leaves=12)


def shaped(fields: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    """Objects with the endpoint's own field names (so validation goes deep) and hostile values."""
    return st.fixed_dictionaries({}, optional={name: st.one_of(strategy, JSON_VALUES) for name, strategy in
                                               fields.items()})


def never_5xx(client, headers: dict[str, str], label: str, method: str, path: str,  # noqa: ANN001
              bodies: st.SearchStrategy, content_type: str = "application/json", examples: int = FUZZ_EXAMPLES) -> None:
    """Send `examples` bodies drawn from `bodies` (JSON values, or raw bytes for another content type):
    each answer is below 500, and every 4xx has the one error shape."""

    @settings(max_examples=examples, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(body=bodies)
    def check(body) -> None:  # noqa: ANN001
        raw = body if isinstance(body, bytes) else json.dumps(body, allow_nan=True).encode()
        r = client.request(method, path, content=raw, headers={**headers, "Content-Type": content_type})
        assert r.status_code < 500, f"{label} answered {r.status_code} to {raw[:300]!r}: {r.text[:300]}"
        if r.status_code >= 400:
            error_of(r, r.status_code)

    check()
