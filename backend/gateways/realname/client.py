"""Real-name two-factor check over the provider's signed HTTP API.

``POST {api_base}/v1/idcard/two-factor`` with ``{"name", "id_number"}`` and the headers
``X-App-Key``, ``X-Timestamp`` (unix seconds), ``X-Nonce`` and ``X-Signature`` (see
:mod:`backend.gateways.realname.signing`). The provider answers HTTP 200 with
``{"code": "0000", "message": "ok", "data": {"result": "consistent" | "inconsistent" |
"no_record", "serial_no": ...}}`` or another ``code``; a result is trusted only when the
response's own ``X-Signature`` checks out. Error answers are not required to be signed: they
change nothing but the error we raise.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import requests

from backend.gateways.errors import GatewayError, GatewayRetryable, GatewayTerminal
from backend.gateways.realname.base import IdentityCheck, IdentityOutcome, IdentityResult
from backend.gateways.realname.signing import request_signature, response_signature, signatures_match

TWO_FACTOR_PATH = "/v1/idcard/two-factor"
OK = "0000"

OUTCOMES: Mapping[str, IdentityOutcome] = {
    "consistent": IdentityOutcome.MATCH,
    "inconsistent": IdentityOutcome.MISMATCH,
    "no_record": IdentityOutcome.NO_RECORD,
}
TERMINAL_CODES: Mapping[str, str] = {
    "1000": "bad_request",
    "1001": "bad_signature",
    "1002": "stale_timestamp",
    "1003": "replayed_nonce",
    "1004": "unknown_app_key",
}
RETRYABLE_CODES: Mapping[str, str] = {
    "2001": "rate_limited",
    "9999": "upstream_busy",
}


class HttpIdentityVerifier:
    """:class:`~backend.gateways.realname.base.IdentityVerifier` over the signed HTTP API."""

    def __init__(self, api_base: str, app_key: str, app_secret: str, timeout: float) -> None:
        self.url = api_base.rstrip("/") + TWO_FACTOR_PATH
        self.app_key = app_key
        self._secret = app_secret
        self.timeout = timeout
        self._http = requests.Session()

    def verify(self, check: IdentityCheck) -> IdentityResult:
        body = json.dumps(
            {"name": check.name, "id_number": check.id_number}, ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")
        nonce = secrets.token_hex(16)
        response = self._post(body, self._signed_headers(body, nonce))
        return self._result(response, nonce)

    def close(self) -> None:
        self._http.close()

    def _signed_headers(self, body: bytes, nonce: str) -> dict[str, str]:
        timestamp = str(int(time.time()))
        return {
            "Content-Type": "application/json; charset=utf-8",
            "X-App-Key": self.app_key,
            "X-Timestamp": timestamp,
            "X-Nonce": nonce,
            "X-Signature": request_signature(self._secret, "POST", TWO_FACTOR_PATH, timestamp, nonce, body),
        }

    def _post(self, body: bytes, headers: dict[str, str]) -> requests.Response:
        try:
            return self._http.post(self.url, data=body, headers=headers, timeout=self.timeout)
        except requests.Timeout as exc:
            raise GatewayRetryable(
                "timeout", f"the real-name provider did not answer in time: {exc}"
            ) from exc
        except requests.RequestException as exc:
            raise GatewayRetryable(
                "connection_error", f"could not reach the real-name provider: {exc}"
            ) from exc

    def _result(self, response: requests.Response, nonce: str) -> IdentityResult:
        payload = _payload(response)
        code = str(payload.get("code"))
        if code != OK:
            raise _from_code(code, str(payload.get("message", "")))
        expected = response_signature(self._secret, nonce, response.content)
        if not signatures_match(expected, response.headers.get("X-Signature")):
            raise GatewayTerminal(
                "bad_response_signature", "the provider's answer is not signed with our secret"
            )
        data = payload.get("data")
        outcome = OUTCOMES.get(data.get("result")) if isinstance(data, dict) else None
        serial_no = data.get("serial_no") if isinstance(data, dict) else None
        if outcome is None or not isinstance(serial_no, str) or not serial_no:
            raise GatewayTerminal(
                "bad_response", "the provider's answer has no known result or serial number"
            )
        return IdentityResult(outcome=outcome, serial_no=serial_no, checked_at=datetime.now(tz=UTC))


def _payload(response: requests.Response) -> dict[str, Any]:
    status = response.status_code
    if status >= 500 or status == 429:
        raise GatewayRetryable("upstream_error", f"the real-name provider answered HTTP {status}")
    if status != 200:
        raise GatewayTerminal("upstream_error", f"the real-name provider answered HTTP {status}")
    try:
        payload = response.json()
    except ValueError as exc:
        raise GatewayRetryable(
            "bad_response", "the real-name provider answered with something not JSON"
        ) from exc
    if not isinstance(payload, dict):
        raise GatewayRetryable("bad_response", "the real-name provider answered with something not an object")
    return payload


def _from_code(code: str, message: str) -> GatewayError:
    if code in RETRYABLE_CODES:
        return GatewayRetryable(RETRYABLE_CODES[code], message, code)
    return GatewayTerminal(TERMINAL_CODES.get(code, "upstream_error"), message, code)
