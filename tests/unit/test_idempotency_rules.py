"""Pure idempotency rules: request fingerprints, client key checks and replays."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minimarket.errors import IdempotencyMismatch, InvalidInput
from minimarket.platform.idempotency import (
    MAX_KEY_LENGTH,
    IdempotencyRecord,
    _replay,
    check_client_key,
    fingerprint,
)

ROUTE = "/api/inventory/{sku}/movements"


def test_fingerprint_is_a_sha256_hex_digest() -> None:
    digest = fingerprint("POST", ROUTE, {"sku": "ALM-1"}, {"type": "venta", "quantity": "2"})
    assert len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)


def test_fingerprint_ignores_key_order_at_every_level() -> None:
    a = {"lines": [{"sku": "A", "type": "venta", "quantity": "1"}], "reason": None, "location": "SAL"}
    b = {"location": "SAL", "reason": None, "lines": [{"quantity": "1", "type": "venta", "sku": "A"}]}
    assert fingerprint("POST", ROUTE, {}, a) == fingerprint("POST", ROUTE, {}, b)


@pytest.mark.parametrize(
    "changed",
    [
        {"lines": [{"sku": "A", "type": "venta", "quantity": "2"}], "location": "SAL"},
        {"lines": [{"sku": "B", "type": "venta", "quantity": "1"}], "location": "SAL"},
        {"lines": [{"sku": "A", "type": "venta", "quantity": "1"}], "location": "DEP"},
        {"lines": [{"sku": "A", "type": "venta", "quantity": "1"}] * 2, "location": "SAL"},
        {"lines": [{"sku": "A", "type": "venta", "quantity": "1"}]},
    ],
)
def test_fingerprint_changes_when_the_body_changes(changed: dict) -> None:
    original = {"lines": [{"sku": "A", "type": "venta", "quantity": "1"}], "location": "SAL"}
    assert fingerprint("POST", ROUTE, {}, original) != fingerprint("POST", ROUTE, {}, changed)


def test_fingerprint_covers_method_route_and_path_params() -> None:
    body = {"type": "venta", "quantity": "1"}
    base = fingerprint("POST", ROUTE, {"sku": "A"}, body)
    assert base != fingerprint("PUT", ROUTE, {"sku": "A"}, body)
    assert base != fingerprint("POST", "/api/stock/batch", {"sku": "A"}, body)
    assert base != fingerprint("POST", ROUTE, {"sku": "B"}, body)


def test_fingerprint_accepts_decimals() -> None:
    assert fingerprint({"q": Decimal("1.500")}) == fingerprint({"q": Decimal("1.500")})
    assert fingerprint({"q": Decimal("1.500")}) != fingerprint({"q": Decimal("2.500")})


@given(st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), st.text(max_size=8), st.none()), max_size=8))
def test_fingerprint_is_stable_under_any_insertion_order(body: dict) -> None:
    reversed_body = dict(reversed(list(body.items())))
    assert fingerprint("POST", ROUTE, {}, body) == fingerprint("POST", ROUTE, {}, reversed_body)


# ---------------------------------------------------------------- client keys


def test_a_uuid_key_is_accepted_as_is() -> None:
    key = str(uuid.uuid4())
    assert check_client_key(key) == key


def test_no_header_means_no_key() -> None:
    assert check_client_key(None) is None


def test_surrounding_spaces_are_trimmed() -> None:
    assert check_client_key("  caja-1:ticket-0042  ") == "caja-1:ticket-0042"


def test_the_longest_allowed_key_is_accepted() -> None:
    assert check_client_key("k" * MAX_KEY_LENGTH) == "k" * MAX_KEY_LENGTH
    assert MAX_KEY_LENGTH == 200


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "\t", "k" * 201, "k" * 5000, "abc\x00def", "abc\ndef", "abc\tdef", "\x1b[31m", "clave\u200bcero"],
    ids=["empty", "spaces", "tab", "201", "5000", "nul", "newline", "inner-tab", "escape", "zero-width"],
)
def test_bad_keys_are_refused_naming_the_header(raw: str) -> None:
    with pytest.raises(InvalidInput) as info:
        check_client_key(raw)
    assert "Idempotency-Key" in info.value.message
    assert str(MAX_KEY_LENGTH) in info.value.message
    assert info.value.status_code == 422


@given(st.text(alphabet=st.characters(codec="ascii", min_codepoint=33, max_codepoint=126), min_size=1,
               max_size=MAX_KEY_LENGTH))
def test_any_printable_ascii_key_up_to_the_limit_is_accepted(raw: str) -> None:
    assert check_client_key(raw) == raw


# ---------------------------------------------------------------- replay


def _record(request_hash: str, body: object) -> IdempotencyRecord:
    return IdempotencyRecord(key="k:test:abc", request_hash=request_hash, status_code=201,
                             response=json.dumps(body))


def test_replay_with_the_same_request_returns_the_stored_answer() -> None:
    outcome = _replay(_record("h1", {"operation_id": "op-1"}), "La clave 'abc'", "h1")
    assert outcome.replayed is True
    assert outcome.status_code == 201
    assert outcome.body == {"operation_id": "op-1"}


def test_replay_with_another_request_is_refused_naming_the_key() -> None:
    with pytest.raises(IdempotencyMismatch) as info:
        _replay(_record("h1", {}), "La clave de idempotencia 'abc'", "h2")
    assert info.value.message.startswith("La clave de idempotencia 'abc' ya se usó con otro contenido")
    assert info.value.status_code == 409 and info.value.code == "idempotencia_conflicto"
