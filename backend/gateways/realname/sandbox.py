"""A loopback real-name provider: the signed two-factor API with its own registry of people.

API: ``POST /v1/idcard/two-factor`` (see :mod:`backend.gateways.realname.client`). The sandbox
checks the app key and the request signature, rejects timestamps more than 300 s away from its
clock and nonces it has seen, then looks the ID number up: same name → ``consistent``, another
name → ``inconsistent``, unknown number → ``no_record``. Answers are signed with
``response_secret`` (by default the app secret; set another one to play a forged provider).

Controls, as Python methods and JSON routes under ``/__sandbox__/``: ``add_person`` /
``add_people`` (POST people, a list of ``{"name", "id_number"}``), ``requests`` (GET requests),
plus the shared ``calls`` (GET calls), ``fail_next`` (POST fail), ``advance_clock`` (POST clock)
and ``reset`` (POST reset). The request log keeps only the ID number's last 4 characters and a SHA-256 of
the name.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any

from backend.gateways.loopback import CONTROL_PREFIX, LoopbackSandbox, Route, SandboxRequest, SandboxResponse
from backend.gateways.realname.client import TWO_FACTOR_PATH
from backend.gateways.realname.signing import request_signature, response_signature, signatures_match

TIMESTAMP_TOLERANCE_SECONDS = 300
NONCE_MEMORY_SECONDS = 2 * TIMESTAMP_TOLERANCE_SECONDS

MESSAGES: Mapping[str, str] = {
    "0000": "ok",
    "1000": "invalid request",
    "1001": "signature verification failed",
    "1002": "timestamp expired",
    "1003": "nonce already used",
    "1004": "unknown app key",
    "2001": "rate limit exceeded",
    "9999": "system busy",
}


class ProviderError(Exception):
    """Answer the current call with this provider code."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class RealNameSandbox(LoopbackSandbox):
    """The real-name provider for one app (``app_key`` + ``app_secret``) on 127.0.0.1."""

    name = "realname"

    def __init__(self, app_key: str, app_secret: str, response_secret: str | None = None) -> None:
        super().__init__()
        self.app_key = app_key
        self.app_secret = app_secret
        self.response_secret = response_secret or app_secret
        self.reset_state()

    def reset_state(self) -> None:
        with self._lock:
            self._people: dict[str, str] = {}  # id_number -> name
            self._nonces: dict[str, float] = {}  # nonce -> when it was seen
            self._requests: list[dict[str, Any]] = []

    # --- controls --------------------------------------------------------------------------
    def add_person(self, name: str, id_number: str) -> None:
        with self._lock:
            self._people[id_number.upper()] = name

    def add_people(self, people: Iterable[Mapping[str, str]]) -> None:
        for person in people:
            self.add_person(person["name"], person["id_number"])

    def requests(self) -> list[dict[str, Any]]:
        """Every two-factor request received, oldest first, without the plaintext identity."""
        with self._lock:
            return [dict(entry) for entry in self._requests]

    def control_routes(self) -> Mapping[tuple[str, str], Route]:
        return {
            ("POST", CONTROL_PREFIX + "people"): self._control_people,
            ("GET", CONTROL_PREFIX + "requests"): lambda request: SandboxResponse.json(self.requests()),
        }

    def _control_people(self, request: SandboxRequest) -> SandboxResponse:
        people = request.json()
        if not isinstance(people, list):
            raise ValueError("expected a list of {name, id_number}")
        self.add_people(people)
        return SandboxResponse.json({"ok": True})

    # --- API -------------------------------------------------------------------------------
    def api_routes(self) -> Mapping[tuple[str, str], Route]:
        return {("POST", TWO_FACTOR_PATH): self._two_factor}

    def error_response(self, request: SandboxRequest, errcode: int | str) -> SandboxResponse:
        return self._answer(request, {"code": str(errcode), "message": MESSAGES.get(str(errcode), "error")})

    def _two_factor(self, request: SandboxRequest) -> SandboxResponse:
        with self._lock:
            entry: dict[str, Any] = {"at": time.time(), "app_key": request.headers.get("x-app-key")}
            try:
                self._authenticate(request)
                name, id_number = _identity(request)
                entry.update(id_last4=id_number[-4:], name_sha256=_sha256(name))
                result = self._look_up(name, id_number)
            except ProviderError as exc:
                self._requests.append({**entry, "code": exc.code, "result": None})
                return self.error_response(request, exc.code)
            serial_no = f"RN{time.strftime('%Y%m%d')}{secrets.token_hex(8).upper()}"
            self._requests.append({**entry, "code": "0000", "result": result, "serial_no": serial_no})
        data = {"result": result, "serial_no": serial_no}
        return self._answer(request, {"code": "0000", "message": "ok", "data": data})

    def _authenticate(self, request: SandboxRequest) -> None:
        headers = request.headers
        timestamp, nonce = headers.get("x-timestamp", ""), headers.get("x-nonce", "")
        if not (headers.get("x-app-key") and timestamp.isdigit() and nonce and headers.get("x-signature")):
            raise ProviderError("1000")
        if headers["x-app-key"] != self.app_key:
            raise ProviderError("1004")
        expected = request_signature(
            self.app_secret, request.method, request.path, timestamp, nonce, request.body
        )
        if not signatures_match(expected, headers["x-signature"]):
            raise ProviderError("1001")
        if abs(self.now() - int(timestamp)) > TIMESTAMP_TOLERANCE_SECONDS:
            raise ProviderError("1002")
        self._forget_old_nonces()
        if nonce in self._nonces:
            raise ProviderError("1003")
        self._nonces[nonce] = self.now()

    def _forget_old_nonces(self) -> None:
        horizon = self.now() - NONCE_MEMORY_SECONDS
        for nonce in [nonce for nonce, seen in self._nonces.items() if seen < horizon]:
            del self._nonces[nonce]

    def _look_up(self, name: str, id_number: str) -> str:
        holder = self._people.get(id_number.upper())
        if holder is None:
            return "no_record"
        return "consistent" if holder == name else "inconsistent"

    def _answer(self, request: SandboxRequest, payload: dict[str, Any]) -> SandboxResponse:
        response = SandboxResponse.json(payload)
        nonce = request.headers.get("x-nonce", "")
        signature = response_signature(self.response_secret, nonce, response.body)
        return SandboxResponse(response.status, response.body, {**response.headers, "X-Signature": signature})


def _identity(request: SandboxRequest) -> tuple[str, str]:
    try:
        payload = request.json()
    except ValueError:
        raise ProviderError("1000") from None
    name = payload.get("name") if isinstance(payload, dict) else None
    id_number = payload.get("id_number") if isinstance(payload, dict) else None
    if not (isinstance(name, str) and name and isinstance(id_number, str) and len(id_number) >= 4):
        raise ProviderError("1000")
    return name, id_number


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
