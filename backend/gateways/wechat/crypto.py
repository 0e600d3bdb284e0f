"""Decrypting mini-program ``encryptedData`` (手机号, 运动数据, ...) with the user's session key.

WeChat encrypts the JSON with AES-128-CBC, PKCS#7 padding (16-byte blocks), the base64
``session_key`` as the key and a fresh base64 ``iv``, and puts our appid in
``watermark.appid``. We decrypt with ``cryptography`` rather than wechatpy's
``WeChatWxaCrypto``: its PKCS#7 decoder accepts any padding byte up to 32 without checking,
so corrupted data reaches the JSON parser instead of failing cleanly here.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.padding import PKCS7

from backend.gateways.errors import GatewayTerminal

AES_BLOCK_BITS = 128


def decrypt_user_data(session_key: str, encrypted_data: str, iv: str, appid: str) -> dict[str, Any]:
    """The decrypted JSON object; ``GatewayTerminal("invalid_encrypted_data")`` otherwise."""
    try:
        plaintext = _decrypt(_b64decode(session_key, 16), _b64decode(encrypted_data), _b64decode(iv, 16))
        data = json.loads(plaintext.decode("utf-8"))
    except ValueError as exc:  # bad base64, key or iv size, block size, padding, UTF-8 or JSON
        raise GatewayTerminal("invalid_encrypted_data", f"encrypted data does not decrypt: {exc}") from exc
    watermark = data.get("watermark") if isinstance(data, dict) else None
    if not isinstance(watermark, dict) or watermark.get("appid") != appid:
        raise GatewayTerminal(
            "invalid_encrypted_data", "the encrypted data was not made for this mini-program"
        )
    return data


def _decrypt(key: bytes, ciphertext: bytes, iv: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = PKCS7(AES_BLOCK_BITS).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def _b64decode(value: str, size: int | None = None) -> bytes:
    raw = base64.b64decode(value, validate=True)
    if size is not None and len(raw) != size:
        raise ValueError(f"expected {size} bytes, got {len(raw)}")
    return raw
