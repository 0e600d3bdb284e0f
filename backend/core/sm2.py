"""SM2 signatures (GB/T 32918, the national commercial public-key algorithm) with SM3, in hex.

The curve arithmetic is gmssl 3.2.2's ``CryptSM2`` (pure Python); everything around it is ours:

* keys and the per-signature nonce ``k`` come from ``secrets`` (gmssl's own ``random_hex`` uses
  ``random.choice``, which is not a cryptographic generator);
* ``e = SM3(Z ‖ M)`` with ``Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA)`` and the default user id
  ``1234567812345678`` is computed with ``cryptography``'s SM3; this is what gmssl's ``sign_with_sm3`` /
  ``verify_with_sm3`` compute, so signatures interoperate both ways (tests/core/test_sm2.py);
* gmssl's constructor strips a ``04`` prefix with ``str.lstrip("04")``, which also eats leading ``0``/``4``
  digits of x; we set the 128-hex ``x ‖ y`` on the instance ourselves;
* ``verify`` rejects malformed input, ``r``/``s`` outside ``[1, n-1]`` and public keys off the curve
  (gmssl checks none of these) and never raises.

Encodings: private key 64 hex digits; public key ``04 ‖ x ‖ y`` (130 hex digits, uncompressed);
signature ``r ‖ s`` (128 hex digits).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from gmssl.sm2 import CryptSM2, default_ecc_table

from backend.core.crypto import sm3_hex

N = int(default_ecc_table["n"], 16)
P = int(default_ecc_table["p"], 16)
A = int(default_ecc_table["a"], 16)
B = int(default_ecc_table["b"], 16)
G = default_ecc_table["g"]
DEFAULT_USER_ID = b"1234567812345678"

_HEX128 = re.compile(r"^[0-9a-fA-F]{128}$")


@dataclass(frozen=True)
class KeyPair:
    private_key: str
    public_key: str


def _engine(private_key: str = "", public_xy: str = "") -> CryptSM2:
    engine = CryptSM2(private_key=private_key, public_key="")
    engine.public_key = public_xy  # see the module docstring: gmssl's "04" stripping is unsafe
    return engine


def _xy(public_key: str) -> str | None:
    """``x ‖ y`` (128 hex) of a ``04``-prefixed public key on the curve, else None."""
    if not isinstance(public_key, str) or len(public_key) != 130 or not public_key.startswith("04"):
        return None
    xy = public_key[2:]
    if not _HEX128.match(xy):
        return None
    x, y = int(xy[:64], 16), int(xy[64:], 16)
    if x >= P or y >= P or (y * y - (x * x * x + A * x + B)) % P:
        return None
    return xy.lower()


def sm2_public_key_of(private_key: str) -> str:
    """``04 ‖ x ‖ y`` of ``d·G``."""
    d = int(private_key, 16)
    if not 1 <= d <= N - 2:
        raise ValueError("an SM2 private key lies in [1, n-2]")
    return "04" + _engine()._kg(d, G)


def sm2_generate_keypair() -> KeyPair:
    """A random private key in [1, n-2] (``d = n-1`` is excluded by the standard: ``1+d`` must be
    invertible mod n) and its public key."""
    d = secrets.randbelow(N - 2) + 1
    private_key = f"{d:064x}"
    return KeyPair(private_key=private_key, public_key=sm2_public_key_of(private_key))


def sm2_e(public_xy: str, message: bytes, user_id: bytes = DEFAULT_USER_ID) -> bytes:
    """``e = SM3(Z ‖ M)``: the value actually signed (GB/T 32918.2 §6.1)."""
    entl = (len(user_id) * 8).to_bytes(2, "big")
    curve = bytes.fromhex(default_ecc_table["a"] + default_ecc_table["b"] + G + public_xy)
    z = bytes.fromhex(sm3_hex(entl + user_id + curve))
    return bytes.fromhex(sm3_hex(z + message))


def sm2_sign(private_key: str, message: bytes, *, public_key: str | None = None) -> str:
    """Sign ``message`` (SM2 with SM3, default user id) with a fresh random ``k``; ``r ‖ s`` in hex.
    Pass ``public_key`` to save one scalar multiplication."""
    xy = _xy(public_key or sm2_public_key_of(private_key))
    if xy is None:
        raise ValueError("not an SM2 public key")
    engine = _engine(private_key=private_key, public_xy=xy)
    e = sm2_e(xy, message)
    while True:  # gmssl returns None for the (negligible) r = 0, r + k = n or s = 0 cases: take another k
        signature = engine.sign(e, f"{secrets.randbelow(N - 1) + 1:064x}")
        if signature:
            return signature


def sm2_verify(public_key: str, message: bytes, signature: str) -> bool:
    """True only for a well-formed signature of ``message`` by ``public_key``'s owner."""
    xy = _xy(public_key)
    if xy is None or not isinstance(signature, str) or not _HEX128.match(signature):
        return False
    r, s = int(signature[:64], 16), int(signature[64:], 16)
    if not (1 <= r < N and 1 <= s < N):
        return False
    try:
        return bool(_engine(public_xy=xy).verify(signature, sm2_e(xy, message)))
    except TypeError:  # s·G + t·P at infinity: gmssl cannot normalise the point
        return False

