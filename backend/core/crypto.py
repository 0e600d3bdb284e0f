"""National commercial cryptography for personal data (DESIGN rule 10).

* SM4-GCM per field, with the row's identity as associated data, so a ciphertext
  cannot be copied to another row or column. The key id travels with the
  ciphertext (``sm4gcm:<kid>:<base64>``), so keys rotate without a flag day.
* A blind index (HMAC-SM3 with its own key) to look up an encrypted value.
* SM3 for the audit hash chain.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

PREFIX = "sm4gcm"
NONCE_BYTES = 12
TAG_BYTES = 16


class DecryptionFailed(Exception):
    """The ciphertext was altered, moved to another row, or its key is gone."""


class Ciphertext(str):
    """A value as stored in the database; never plaintext."""


@dataclass(frozen=True)
class KeyRing:
    active_kid: str
    keys: dict[str, bytes]


def parse_keyring(spec: str) -> KeyRing:
    """``"k2:base64,k1:base64"``: the first key encrypts; all keys decrypt."""
    keys: dict[str, bytes] = {}
    order: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        kid, sep, b64 = part.partition(":")
        if not sep or not kid or ":" in b64:
            raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS entries look like 'kid:base64key'")
        try:
            key = base64.b64decode(b64, validate=True)
        except binascii.Error as exc:
            raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEYS key {kid!r} is not base64") from exc
        if len(key) != 16:
            raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEYS key {kid!r} must be 16 bytes (SM4)")
        keys[kid] = key
        order.append(kid)
    if not order:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty")
    return KeyRing(active_kid=order[0], keys=keys)


@lru_cache(maxsize=4)
def _keyring(spec: str) -> KeyRing:
    return parse_keyring(spec)


def keyring() -> KeyRing:
    return _keyring(settings.FIELD_ENCRYPTION_KEYS)


def sm4_gcm_encrypt(plaintext: str, aad: bytes, ring: KeyRing | None = None) -> Ciphertext:
    ring = ring or keyring()
    nonce = os.urandom(NONCE_BYTES)
    encryptor = Cipher(algorithms.SM4(ring.keys[ring.active_kid]), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    body = encryptor.update(plaintext.encode("utf-8")) + encryptor.finalize()
    blob = base64.b64encode(nonce + body + encryptor.tag).decode("ascii")
    return Ciphertext(f"{PREFIX}:{ring.active_kid}:{blob}")


def ciphertext_kid(value: str) -> str:
    prefix, kid, _ = value.split(":", 2)
    if prefix != PREFIX:
        raise DecryptionFailed("unknown ciphertext format")
    return kid


def sm4_gcm_decrypt(value: str, aad: bytes, ring: KeyRing | None = None) -> str:
    ring = ring or keyring()
    try:
        kid = ciphertext_kid(value)
        raw = base64.b64decode(value.split(":", 2)[2], validate=True)
        key = ring.keys[kid]
    except (ValueError, KeyError, binascii.Error) as exc:
        raise DecryptionFailed("unreadable ciphertext or unknown key id") from exc
    nonce, body, tag = raw[:NONCE_BYTES], raw[NONCE_BYTES:-TAG_BYTES], raw[-TAG_BYTES:]
    decryptor = Cipher(algorithms.SM4(key), modes.GCM(nonce, tag)).decryptor()
    decryptor.authenticate_additional_data(aad)
    try:
        return (decryptor.update(body) + decryptor.finalize()).decode("utf-8")
    except InvalidTag as exc:
        raise DecryptionFailed("ciphertext failed authentication") from exc


def blind_index(value: str, purpose: str) -> str:
    """Keyed HMAC-SM3 of a normalised value, per purpose (ID numbers, phones...)."""
    key = base64.b64decode(settings.BLIND_INDEX_KEY)
    mac = hmac.HMAC(key, hashes.SM3())
    mac.update(purpose.encode() + b"\x00" + value.encode("utf-8"))
    return mac.finalize().hex()


def sm3_hex(data: bytes) -> str:
    digest = hashes.Hash(hashes.SM3())
    digest.update(data)
    return digest.finalize().hex()


def mask_middle(value: str, keep_start: int, keep_end: int) -> str:
    if not value:
        return ""
    if len(value) <= keep_start + keep_end:
        return value[:1] + "*" * (len(value) - 1)
    hidden = len(value) - keep_start - keep_end
    return value[:keep_start] + "*" * hidden + value[len(value) - keep_end:]


def mask_phone(phone: str) -> str:
    """``13800138000`` → ``138****8000``."""
    return mask_middle(phone, 3, 4)


def mask_id_number(id_number: str) -> str:
    """``110101199003074514`` → ``110***********4514``; short documents keep less."""
    if len(id_number) >= 15:
        return mask_middle(id_number, 3, 4)
    return mask_middle(id_number, 1, 2)


def mask_name(name: str) -> str:
    """``王小明`` → ``王**``."""
    return mask_middle(name, 1, 0) if len(name) > 1 else name
