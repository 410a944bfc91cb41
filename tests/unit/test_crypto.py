"""The encryption-at-rest format (minimarket.platform.crypto): layout, round trip, refusals."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from minimarket.config import ConfigError, Settings, weak_key_problem
from minimarket.platform import crypto
from minimarket.platform.crypto import DecryptError, KeyFormatError, decrypt_text, encrypt_text, key_id

KEY = "3f" * 8 + "a1b2c3d4e5f60718" * 3  # 64 hex characters, fixed so failures reproduce
OTHER = "c0ffee00" * 8
TEXTS = st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=200)


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def test_layout_is_the_documented_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rebuild the blob by hand from the spec; the SQL functions implement this same spec."""
    iv = bytes(range(16))
    monkeypatch.setattr(crypto.os, "urandom", lambda n: iv[:n])
    blob = encrypt_text("hola", KEY)

    master = bytes.fromhex(KEY)
    enc_key, mac_key = _hmac(master, b"minimarket-enc"), _hmac(master, b"minimarket-mac")
    padder = padding.PKCS7(128).padder()
    padded = padder.update(b"hola") + padder.finalize()
    encryptor = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).encryptor()
    body = b"\x01" + hashlib.sha256(master).digest()[:8] + iv + encryptor.update(padded) + encryptor.finalize()
    assert blob == body + _hmac(mac_key, body)
    assert len(blob) == 1 + 8 + 16 + 16 + 32
    assert key_id(KEY) == hashlib.sha256(master).digest()[:8].hex() == blob[1:9].hex()


@settings(max_examples=150, deadline=None)
@given(TEXTS)
def test_round_trip(text: str) -> None:
    blob = encrypt_text(text, KEY)
    assert decrypt_text(blob, KEY) == text
    assert (len(blob) - 57) % 16 == 0 and len(blob) >= 73
    if len(text.encode()) >= 8:  # shorter byte strings may occur in random ciphertext by chance
        assert text.encode() not in blob


def test_uppercase_key_is_the_same_key() -> None:
    blob = encrypt_text("x", KEY.upper())
    assert decrypt_text(blob, KEY) == "x"
    assert key_id(KEY.upper()) == key_id(KEY)


def test_random_iv_gives_different_ciphertexts() -> None:
    blobs = {encrypt_text("mismo texto", KEY) for _ in range(50)}
    assert len(blobs) == 50
    assert len({blob[9:25] for blob in blobs}) == 50  # the IVs differ
    assert all(decrypt_text(blob, KEY) == "mismo texto" for blob in blobs)


def test_wrong_key_names_both_key_ids() -> None:
    blob = encrypt_text("secreto", KEY)
    with pytest.raises(DecryptError) as info:
        decrypt_text(blob, OTHER)
    message = str(info.value)
    assert "clave distinta" in message
    assert key_id(KEY) in message and key_id(OTHER) in message
    assert KEY not in message and OTHER not in message


BLOB = encrypt_text("valor de prueba que ocupa más de un bloque", KEY)


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=0, max_value=len(BLOB) - 1), st.integers(min_value=1, max_value=255))
def test_any_flipped_byte_is_refused(position: int, mask: int) -> None:
    tampered = bytearray(BLOB)
    tampered[position] ^= mask
    with pytest.raises(DecryptError) as info:
        decrypt_text(bytes(tampered), KEY)
    message = str(info.value)
    if position == 0:
        assert "formato desconocido" in message
    elif position < 9:
        assert "clave distinta" in message
    else:
        assert "datos alterados" in message


@pytest.mark.parametrize("position", range(len(BLOB)))
def test_every_position_is_covered_by_the_tag(position: int) -> None:
    tampered = bytearray(BLOB)
    tampered[position] ^= 0x01
    with pytest.raises(DecryptError):
        decrypt_text(bytes(tampered), KEY)


@pytest.mark.parametrize("length", [0, 1, 9, 25, 41, 72, 73, len(BLOB) - 32, len(BLOB) - 16, len(BLOB) - 1])
def test_truncated_data_is_refused(length: int) -> None:
    with pytest.raises(DecryptError) as info:
        decrypt_text(BLOB[:length], KEY)
    assert any(cause in str(info.value) for cause in ("formato desconocido", "datos alterados"))


@pytest.mark.parametrize("suffix", [b"\x00", b"\x00" * 16, os.urandom(32)])
def test_appended_data_is_refused(suffix: bytes) -> None:
    with pytest.raises(DecryptError):
        decrypt_text(BLOB + suffix, KEY)


def test_other_version_is_unknown_format() -> None:
    with pytest.raises(DecryptError, match="formato desconocido: versión 2"):
        decrypt_text(b"\x02" + BLOB[1:], KEY)


@pytest.mark.parametrize("blob", [None, "texto", 12345])
def test_non_bytes_is_unknown_format(blob: object) -> None:
    with pytest.raises(DecryptError, match="formato desconocido"):
        decrypt_text(blob, KEY)  # type: ignore[arg-type]


def test_valid_tag_over_bad_padding_is_unknown_format() -> None:
    """Only a holder of the key can build this; it must still not return garbage."""
    master = bytes.fromhex(KEY)
    enc_key, mac_key = _hmac(master, b"minimarket-enc"), _hmac(master, b"minimarket-mac")
    iv = os.urandom(16)
    encryptor = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).encryptor()
    raw = encryptor.update(b"sin relleno pkcs") + encryptor.finalize()  # 16 bytes, no padding block
    body = b"\x01" + bytes.fromhex(key_id(KEY)) + iv + raw
    with pytest.raises(DecryptError, match="formato desconocido"):
        decrypt_text(body + _hmac(mac_key, body), KEY)


def test_bytes_like_inputs_are_accepted() -> None:
    blob = encrypt_text("ok", KEY)
    assert decrypt_text(bytearray(blob), KEY) == "ok"
    assert decrypt_text(memoryview(blob), KEY) == "ok"


BAD_KEYS = ["", "abc", KEY[:-1], KEY + "0", "g" + KEY[1:], KEY + "\n", " " + KEY[1:], KEY[:32] + " " + KEY[33:],
            "0x" + KEY[2:], "ñ" * 64]


@pytest.mark.parametrize("bad", BAD_KEYS)
def test_bad_key_format_is_refused_everywhere(bad: str) -> None:
    with pytest.raises(KeyFormatError, match="64 caracteres hexadecimales"):
        encrypt_text("x", bad)
    with pytest.raises(KeyFormatError):
        decrypt_text(BLOB, bad)
    with pytest.raises(KeyFormatError):
        key_id(bad)


def test_none_key_is_refused() -> None:
    with pytest.raises(KeyFormatError):
        encrypt_text("x", None)  # type: ignore[arg-type]


def test_nul_is_refused_because_postgresql_text_cannot_hold_it() -> None:
    with pytest.raises(ValueError, match="NUL"):
        encrypt_text("a\x00b", KEY)


def test_blob_key_id() -> None:
    assert crypto.blob_key_id(BLOB) == key_id(KEY)
    assert crypto.blob_key_id(b"\x02" + BLOB[1:]) is None
    assert crypto.blob_key_id(BLOB[:40]) is None


# --- keys that are obviously not random (issue 7, item 10) -------------------------------------------

WEAK_KEYS = [
    "f" * 64,                                   # one digit
    "F" * 64,
    "0" * 63 + "1",
    "deadbeef" * 8,                             # a word repeated
    "a1" * 32,
    "0123456789abcdef" * 4,                     # sequential: every digit, still guessable
    "fedcba9876543210" * 4,
    "0" * 32 + "123456789abcdef0" * 2,          # half zeros
    "f" * 56 + "01234567",
    "3f9a1c7e5b2d4068" * 2 + "0123456789abcdef0123456789abcdef",  # half random-looking, half a sequence
]


@pytest.mark.parametrize("weak", WEAK_KEYS)
def test_production_refuses_an_obviously_weak_encryption_key(weak: str) -> None:
    configured = Settings(_env_file=None, minimarket_env="production", database_encryption_key=weak,
                          allowed_hosts="minimercado.lan")
    with pytest.raises(ConfigError) as refused:
        configured.check()
    message = str(refused.value)
    assert "DATABASE_ENCRYPTION_KEY" in message and "minimarket keys generate" in message, message
    assert "adivinar" in message


def test_random_keys_are_never_called_weak() -> None:
    for _ in range(5000):
        key = secrets.token_hex(32)
        assert weak_key_problem(key) is None, key
    Settings(_env_file=None, minimarket_env="production", database_encryption_key=secrets.token_hex(32),
             allowed_hosts="minimercado.lan").check()
