"""The signatures of the real-name API, shared by our client and the sandbox.

Request: ``X-Signature = base64(HMAC-SHA256(app_secret, string_to_sign))`` where
``string_to_sign = "POST\\n/v1/idcard/two-factor\\n{timestamp}\\n{nonce}\\n{sha256_hex(body)}"``.

Response: ``X-Signature = base64(HMAC-SHA256(app_secret, "{request_nonce}\\n{sha256_hex(body)}"))``.
Binding the response to the request's nonce means a recorded "consistent" answer cannot be
played back as the answer to a different check.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def request_signature(secret: str, method: str, path: str, timestamp: str, nonce: str, body: bytes) -> str:
    return _hmac(secret, f"{method}\n{path}\n{timestamp}\n{nonce}\n{body_digest(body)}")


def response_signature(secret: str, request_nonce: str, body: bytes) -> str:
    return _hmac(secret, f"{request_nonce}\n{body_digest(body)}")


def signatures_match(expected: str, received: str | None) -> bool:
    return received is not None and hmac.compare_digest(expected.encode(), received.encode())


def _hmac(secret: str, message: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")
