"""Encryption at rest with DATABASE_ENCRYPTION_KEY, in the one format that Python and PostgreSQL share.

Blob layout (version 1), all lengths in bytes::

    0x01 | key_id (8) | IV (16) | AES-256-CBC, PKCS#7 (n * 16) | HMAC-SHA256 tag (32)

* ``key_id`` = first 8 bytes of SHA-256 of the raw 32-byte master key: says which key wrote
  the data without revealing it, so a wrong key is reported as such and not as tampering.
* Sub-keys, so the master key never serves two purposes:
  ``enc_key = HMAC-SHA256(master, b"minimarket-enc")``, ``mac_key = HMAC-SHA256(master, b"minimarket-mac")``.
* Encrypt-then-MAC: the tag covers version, key id, IV and ciphertext, and is checked (in
  constant time) before anything is decrypted.

The SQL functions ``encrypt_data(text, text)`` / ``decrypt_data(bytea, text)`` created by
migration 0002 implement the same format with pgcrypto; tests check that each side reads what
the other writes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

VERSION = 1
KEY_ID_LEN = 8
IV_LEN = 16
TAG_LEN = 32
BLOCK = 16
HEADER_LEN = 1 + KEY_ID_LEN + IV_LEN
MIN_LEN = HEADER_LEN + BLOCK + TAG_LEN  # 73: one block of ciphertext at least
ENC_LABEL = b"minimarket-enc"
MAC_LABEL = b"minimarket-mac"

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


class DecryptError(ValueError):
    """The blob cannot be read with this key; the message names the cause (in Spanish)."""


class KeyFormatError(ValueError):
    """The key is not 64 hexadecimal characters."""


def _master(key_hex: str) -> bytes:
    # fullmatch: no surrounding whitespace or trailing newline, exactly like the SQL check.
    if not isinstance(key_hex, str) or not _HEX64.fullmatch(key_hex):
        raise KeyFormatError("la clave debe tener exactamente 64 caracteres hexadecimales (32 bytes)")
    return bytes.fromhex(key_hex)


def _key_id_bytes(master: bytes) -> bytes:
    return hashlib.sha256(master).digest()[:KEY_ID_LEN]


def _subkeys(master: bytes) -> tuple[bytes, bytes]:
    enc = hmac.new(master, ENC_LABEL, hashlib.sha256).digest()
    mac = hmac.new(master, MAC_LABEL, hashlib.sha256).digest()
    return enc, mac


def validate_key(key_hex: str) -> None:
    """Raise KeyFormatError unless ``key_hex`` is a usable key."""
    _master(key_hex)


def key_id(key_hex: str) -> str:
    """The public identifier of a key (16 hex characters), as stored in every blob it writes."""
    return _key_id_bytes(_master(key_hex)).hex()


def blob_key_id(blob: bytes) -> str | None:
    """The key id a blob says it was written with, or None if it is not a version-1 blob."""
    if not isinstance(blob, bytes | bytearray | memoryview):
        return None
    data = bytes(blob)
    if len(data) < MIN_LEN or data[0] != VERSION:
        return None
    return data[1:1 + KEY_ID_LEN].hex()


def encrypt_text(plaintext: str, key_hex: str) -> bytes:
    """Encrypt ``plaintext`` (UTF-8) under ``key_hex``; a fresh random IV each call."""
    if not isinstance(plaintext, str):
        raise TypeError("plaintext must be str")
    if "\x00" in plaintext:
        # PostgreSQL text cannot hold NUL; decrypt_data() in SQL could not return it.
        raise ValueError("el texto no puede contener el carácter NUL (\\u0000)")
    master = _master(key_hex)
    enc_key, mac_key = _subkeys(master)
    iv = os.urandom(IV_LEN)
    padder = padding.PKCS7(BLOCK * 8).padder()
    padded = padder.update(plaintext.encode("utf-8")) + padder.finalize()
    encryptor = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).encryptor()
    body = bytes([VERSION]) + _key_id_bytes(master) + iv + encryptor.update(padded) + encryptor.finalize()
    return body + hmac.new(mac_key, body, hashlib.sha256).digest()


def decrypt_text(blob: bytes, key_hex: str) -> str:
    """Check and decrypt a blob written by encrypt_text() or SQL encrypt_data(); DecryptError if it cannot."""
    master = _master(key_hex)
    if not isinstance(blob, bytes | bytearray | memoryview):
        raise DecryptError(f"formato desconocido: se esperaban bytes, llegó {type(blob).__name__}")
    data = bytes(blob)
    if len(data) < MIN_LEN or (len(data) - HEADER_LEN - TAG_LEN) % BLOCK:
        raise DecryptError(f"formato desconocido: {len(data)} bytes no es un largo válido (datos truncados o ajenos)")
    if data[0] != VERSION:
        raise DecryptError(f"formato desconocido: versión {data[0]} (esta versión lee la {VERSION})")
    stored_id = data[1:1 + KEY_ID_LEN]
    expected_id = _key_id_bytes(master)
    if not hmac.compare_digest(stored_id, expected_id):
        raise DecryptError(
            f"clave distinta: el dato fue cifrado con la clave {stored_id.hex()} "
            f"y la clave usada es {expected_id.hex()}"
        )
    enc_key, mac_key = _subkeys(master)
    body, tag = data[:-TAG_LEN], data[-TAG_LEN:]
    if not hmac.compare_digest(hmac.new(mac_key, body, hashlib.sha256).digest(), tag):
        raise DecryptError("datos alterados: la firma (HMAC) no coincide; el dato fue modificado o está dañado")
    iv, ciphertext = body[1 + KEY_ID_LEN:HEADER_LEN], body[HEADER_LEN:]
    decryptor = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).decryptor()
    try:
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        unpadder = padding.PKCS7(BLOCK * 8).unpadder()
        return (unpadder.update(padded) + unpadder.finalize()).decode("utf-8")
    except ValueError as exc:  # bad padding or not UTF-8 under a valid tag: written by something else
        raise DecryptError("formato desconocido: el contenido descifrado no es válido") from exc
