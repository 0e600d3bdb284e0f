"""RSA2 (SHA256withRSA, PKCS#1 v1.5) as Alipay uses it, with ``cryptography`` (independent of the SDK).

Sign content: the parameters sorted by name, ``k=v`` joined with ``&``, without ``sign`` and
without empty values. Requests keep ``sign_type`` in it; notifications leave it out.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def private_pem(key: rsa.RSAPrivateKey) -> str:
    """PKCS#8 PEM (python-alipay-sdk loads PKCS#1 and PKCS#8 alike)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def load_public(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode("ascii"))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("an RSA public key is required")
    return key


def sign_content(params: Mapping[str, str], exclude: Iterable[str] = ("sign",)) -> str:
    skipped = set(exclude)
    return "&".join(f"{key}={value}" for key, value in sorted(params.items()) if key not in skipped and value != "")


def sign(key: rsa.RSAPrivateKey, text: str) -> str:
    signature = key.sign(text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def verify(key: rsa.RSAPublicKey, text: str, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, text.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def corrupt(signature: str) -> str:
    """The same signature with one bit flipped: still base64, no longer valid."""
    raw = bytearray(base64.b64decode(signature))
    raw[len(raw) // 2] ^= 0x01
    return base64.b64encode(bytes(raw)).decode("ascii")
