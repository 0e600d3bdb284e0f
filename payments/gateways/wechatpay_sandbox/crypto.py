"""The cryptography WeChat Pay v3 uses, from the platform's side (sandbox only).

Requests from the merchant carry ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid="..",
nonce_str="..",signature="..",timestamp="..",serial_no=".."`` over
``"{METHOD}\\n{path?query}\\n{ts}\\n{nonce}\\n{body}\\n"``; the platform signs its answers and
notifications over ``"{ts}\\n{nonce}\\n{body}\\n"``; notification resources are sealed with
AEAD_AES_256_GCM under the merchant's APIv3 key. All signatures are RSA-SHA256 PKCS#1 v1.5.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SCHEME = "WECHATPAY2-SHA256-RSA2048"
SHANGHAI = ZoneInfo("Asia/Shanghai")
TIMESTAMP_TOLERANCE = 300  # seconds either side of the platform's clock
_AUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')


def generate_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the merchant public key must be an RSA key")
    return key


def sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify(key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def nonce() -> str:
    return secrets.token_hex(16).upper()


def signed_headers(
    key: rsa.RSAPrivateKey, serial: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """The ``Wechatpay-*`` headers of a platform answer or notification carrying ``body``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce_str = nonce()
    message = ts.encode() + b"\n" + nonce_str.encode() + b"\n" + body + b"\n"
    return {
        "Wechatpay-Timestamp": ts,
        "Wechatpay-Nonce": nonce_str,
        "Wechatpay-Serial": serial,
        "Wechatpay-Signature": sign(key, message),
        "Wechatpay-Signature-Type": SCHEME,
    }


def parse_authorization(header: str) -> dict[str, str] | None:
    """The parameters of a ``WECHATPAY2-SHA256-RSA2048`` Authorization header, or None."""
    scheme, _, params = header.partition(" ")
    if scheme != SCHEME:
        return None
    fields = dict(_AUTH_PARAM.findall(params))
    wanted = ("mchid", "nonce_str", "signature", "timestamp", "serial_no")
    return fields if all(fields.get(name) for name in wanted) else None


def authorization_error(
    auth: Mapping[str, str] | None, method: str, target: str, body: bytes, expect: Mapping[str, object]
) -> str | None:
    """Why a merchant request's signature is not acceptable, or None when it is.

    ``expect`` holds ``mchid``, ``serial_no`` and ``key`` (the merchant public key).
    """
    if auth is None:
        return "Http头Authorization值格式错误，请参考《微信支付商户REST API签名规则》"
    if auth["mchid"] != expect["mchid"]:
        return "商户号与签名不匹配"
    if auth["serial_no"] != expect["serial_no"]:
        return "商户证书序列号有误"
    if not auth["timestamp"].isdigit() or abs(time.time() - int(auth["timestamp"])) > TIMESTAMP_TOLERANCE:
        return "Http头Authorization中的timestamp已过期"
    message = f"{method}\n{target}\n{auth['timestamp']}\n{auth['nonce_str']}\n".encode() + body + b"\n"
    if not verify(expect["key"], message, auth["signature"]):  # type: ignore[arg-type]
        return "签名错误"
    return None


def seal(apiv3_key: str, plaintext: bytes, associated_data: str) -> dict[str, str]:
    """An AEAD_AES_256_GCM ``resource`` object (12-character nonce, as WeChat uses)."""
    nonce_str = secrets.token_hex(6)
    ciphertext = AESGCM(apiv3_key.encode()).encrypt(nonce_str.encode(), plaintext, associated_data.encode())
    return {
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(ciphertext).decode(),
        "associated_data": associated_data,
        "nonce": nonce_str,
    }


def rfc3339(unix: float) -> str:
    """``2026-01-05T10:20:30+08:00``: how WeChat Pay writes times."""
    return datetime.fromtimestamp(int(unix), SHANGHAI).isoformat()


def parse_rfc3339(value: str) -> float:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"time without offset: {value!r}")
    return parsed.timestamp()


def shanghai(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, UTC).astimezone(SHANGHAI)
