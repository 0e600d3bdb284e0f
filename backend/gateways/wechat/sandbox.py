"""A loopback WeChat: the mini-program server API with real JSON shapes, errcodes and crypto.

API (what our backend calls, as on api.weixin.qq.com):
  GET  /cgi-bin/token                       client_credential → access_token (7200 s)
  GET  /sns/jscode2session                  wx.login code → openid, session_key[, unionid]
  POST /wxa/business/getuserphonenumber     getPhoneNumber code → phone_info
  POST /cgi-bin/message/subscribe/send      subscribe message → msgid, or 43101

Controls (what the WeChat app on a phone would do), as Python methods and as JSON routes
under ``/__sandbox__/``: ``issue_login_code`` (POST login-code), ``issue_phone_code``
(POST phone-code), ``encrypted_phone`` (POST encrypted-phone), ``grant_subscription``
(POST subscribe), ``messages`` (GET messages), ``revoke_tokens`` (POST revoke-tokens), plus
the shared ``calls`` (GET calls), ``fail_next`` (POST fail), ``advance_clock`` (POST clock)
and ``reset`` (POST reset).

Like WeChat: codes live 5 minutes and work once; each login gets a fresh 16-byte session key;
a new access token leaves the previous one valid for 5 more minutes; every subscribe message
needs one remaining one-time subscription of that user to that template.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.padding import PKCS7

from backend.gateways.loopback import CONTROL_PREFIX, LoopbackSandbox, Route, SandboxRequest, SandboxResponse

CODE_TTL_SECONDS = 300
TOKEN_TTL_SECONDS = 7200
TOKEN_GRACE_SECONDS = 300
FIRST_MSGID = 2_786_913_000_000_000_000

ERRMSG: Mapping[int, str] = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40002: "invalid grant_type",
    40003: "invalid openid",
    40013: "invalid appid",
    40029: "invalid code",
    40037: "invalid template_id",
    40125: "invalid appsecret",
    40163: "code been used",
    40226: "invalid code, high risk user",
    41001: "access_token missing",
    41002: "appid missing",
    41004: "appsecret missing",
    41008: "missing code",
    42001: "access_token expired",
    43101: "user refuse to accept the msg",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit  mustslower  retry next minute",
    47001: "data format error",
    47003: "argument invalid!",
}
# Value limits of subscribe-message template keys, by key prefix (thing1, phrase2, ...).
VALUE_LIMITS = {"thing": 20, "phrase": 5, "name": 10, "character_string": 32, "number": 32, "letter": 32}
MINIPROGRAM_STATES = ("developer", "trial", "formal")
LANGS = ("zh_CN", "en_US", "zh_HK", "zh_TW")


class WeChatError(Exception):
    """Answer the current API call with this errcode."""

    def __init__(self, errcode: int) -> None:
        super().__init__(errcode)
        self.errcode = errcode


@dataclass
class _Code:
    value: Any  # what the code stands for: (openid, unionid) or (phone, country_code)
    issued_at: float
    used: bool = False


@dataclass
class _Token:
    expires_at: float
    revoked: bool = False


class WeChatSandbox(LoopbackSandbox):
    """The WeChat server API for one mini-program (``appid`` + ``secret``) on 127.0.0.1."""

    name = "wechat"

    def __init__(self, appid: str, secret: str) -> None:
        super().__init__()
        self.appid = appid
        self.secret = secret
        self.reset_state()

    def reset_state(self) -> None:
        with self._lock:
            self._login_codes: dict[str, _Code] = {}
            self._phone_codes: dict[str, _Code] = {}
            self._session_keys: dict[str, str] = {}  # openid -> the session key of their last login
            self._known_openids: set[str] = set()
            self._tokens: dict[str, _Token] = {}
            self._subscriptions: Counter[tuple[str, str]] = Counter()
            self._messages: list[dict[str, Any]] = []
            self._next_msgid = FIRST_MSGID

    # --- controls: what the WeChat app does --------------------------------------------------
    def issue_login_code(self, openid: str, unionid: str | None = None) -> str:
        """The code ``wx.login()`` would give this user."""
        code = _random_code()
        with self._lock:
            self._login_codes[code] = _Code((openid, unionid), self.now())
            self._known_openids.add(openid)
        return code

    def issue_phone_code(self, phone: str, country_code: str = "86") -> str:
        """The code a ``getPhoneNumber`` button would give for this phone number."""
        code = _random_code()
        with self._lock:
            self._phone_codes[code] = _Code((phone, country_code), self.now())
        return code

    def encrypted_phone(
        self, openid: str, phone: str, country_code: str = "86", appid: str | None = None
    ) -> dict:
        """``{"encryptedData", "iv"}`` as the older getPhoneNumber gives it, under the user's
        current session key (KeyError if they never logged in). ``appid`` fakes another app's data."""
        with self._lock:
            session_key = self._session_keys[openid]
        data = {
            **_phone_info(phone, country_code),
            "watermark": {"timestamp": int(self.now()), "appid": appid or self.appid},
        }
        iv = secrets.token_bytes(16)
        ciphertext = _aes_cbc_encrypt(base64.b64decode(session_key), iv, json.dumps(data).encode("utf-8"))
        return {"encryptedData": base64.b64encode(ciphertext).decode(), "iv": base64.b64encode(iv).decode()}

    def grant_subscription(self, openid: str, template_id: str, times: int = 1) -> None:
        """The user accepted ``wx.requestSubscribeMessage`` for this template (``times`` times)."""
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._known_openids.add(openid)
            self._subscriptions[(openid, template_id)] += times

    def remaining_subscriptions(self, openid: str, template_id: str) -> int:
        with self._lock:
            return self._subscriptions[(openid, template_id)]

    def session_key(self, openid: str) -> str:
        """The user's current session key (KeyError if they never logged in)."""
        with self._lock:
            return self._session_keys[openid]

    def messages(self) -> list[dict[str, Any]]:
        """Every subscribe message received, sent (``errcode`` 0) or refused, oldest first."""
        with self._lock:
            return [dict(message) for message in self._messages]

    def revoke_tokens(self, expired: bool = False) -> None:
        """Invalidate every access token: 40001 from now on, or 42001 with ``expired=True``."""
        with self._lock:
            for token in self._tokens.values():
                if expired:
                    token.expires_at = min(token.expires_at, self.now() - 1)
                else:
                    token.revoked = True

    # --- API ---------------------------------------------------------------------------------
    def api_routes(self) -> Mapping[tuple[str, str], Route]:
        return {
            ("GET", "/cgi-bin/token"): self._api(self._token),
            ("GET", "/sns/jscode2session"): self._api(self._jscode2session),
            ("POST", "/wxa/business/getuserphonenumber"): self._api(self._phone_number),
            ("POST", "/cgi-bin/message/subscribe/send"): self._api(self._subscribe_send),
        }

    def error_response(self, request: SandboxRequest, errcode: int | str) -> SandboxResponse:
        return _error(int(errcode))

    def _api(self, handler: Callable[[SandboxRequest], dict[str, Any]]) -> Route:
        """Run ``handler`` under the lock; a ``WeChatError`` becomes WeChat's errcode answer."""

        def route(request: SandboxRequest) -> SandboxResponse:
            with self._lock:
                try:
                    return SandboxResponse.json(handler(request))
                except WeChatError as exc:
                    return _error(exc.errcode)

        return route

    def _check_app(self, query: Mapping[str, str]) -> None:
        if not query.get("appid"):
            raise WeChatError(41002)
        if not query.get("secret"):
            raise WeChatError(41004)
        if query["appid"] != self.appid:
            raise WeChatError(40013)
        if query["secret"] != self.secret:
            raise WeChatError(40125)

    def _token(self, request: SandboxRequest) -> dict[str, Any]:
        if request.query.get("grant_type") != "client_credential":
            raise WeChatError(40002)
        self._check_app(request.query)
        now = self.now()
        for token in self._tokens.values():
            token.expires_at = min(token.expires_at, now + TOKEN_GRACE_SECONDS)
        value = secrets.token_urlsafe(96)
        self._tokens[value] = _Token(expires_at=now + TOKEN_TTL_SECONDS)
        return {"access_token": value, "expires_in": TOKEN_TTL_SECONDS}

    def _jscode2session(self, request: SandboxRequest) -> dict[str, Any]:
        self._check_app(request.query)
        if request.query.get("grant_type") != "authorization_code":
            raise WeChatError(40002)
        openid, unionid = self._redeem(self._login_codes, request.query.get("js_code", ""))
        session_key = base64.b64encode(secrets.token_bytes(16)).decode()
        self._session_keys[openid] = session_key
        answer = {"session_key": session_key, "openid": openid}
        if unionid:
            answer["unionid"] = unionid
        return answer

    def _phone_number(self, request: SandboxRequest) -> dict[str, Any]:
        self._check_token(request)
        phone, country_code = self._redeem(
            self._phone_codes, _json_object(request).get("code") or "", reuse=40029
        )
        watermark = {"timestamp": int(self.now()), "appid": self.appid}
        return {
            "errcode": 0,
            "errmsg": "ok",
            "phone_info": {**_phone_info(phone, country_code), "watermark": watermark},
        }

    def _subscribe_send(self, request: SandboxRequest) -> dict[str, Any]:
        self._check_token(request)
        payload = _json_object(request)
        message = {
            key: payload.get(key)
            for key in ("touser", "template_id", "page", "data", "miniprogram_state", "lang")
        }
        errcode, msgid = self._deliver(message)
        self._messages.append({**message, "msgid": msgid, "errcode": errcode})
        if errcode:
            raise WeChatError(errcode)
        return {"errcode": 0, "errmsg": "ok", "msgid": msgid}

    def _deliver(self, message: dict[str, Any]) -> tuple[int, int | None]:
        """(errcode, msgid) for one well-formed-JSON subscribe message."""
        errcode = _subscribe_errcode(message)
        if not errcode and message["touser"] not in self._known_openids:
            errcode = 40003
        key = (message["touser"], message["template_id"])
        if not errcode and self._subscriptions[key] <= 0:
            errcode = 43101
        if errcode:
            return errcode, None
        self._subscriptions[key] -= 1
        self._next_msgid += 1
        return 0, self._next_msgid

    def _check_token(self, request: SandboxRequest) -> None:
        value = request.query.get("access_token")
        if not value:
            raise WeChatError(41001)
        token = self._tokens.get(value)
        if token is None or token.revoked:
            raise WeChatError(40001)
        if token.expires_at <= self.now():
            raise WeChatError(42001)

    def _redeem(self, codes: dict[str, _Code], code: str, reuse: int = 40163) -> Any:
        if not code:
            raise WeChatError(41008)
        entry = codes.get(code)
        if entry is None or self.now() - entry.issued_at > CODE_TTL_SECONDS:
            raise WeChatError(40029)
        if entry.used:
            raise WeChatError(reuse)
        entry.used = True
        return entry.value

    # --- control routes ------------------------------------------------------------------------
    def control_routes(self) -> Mapping[tuple[str, str], Route]:
        return {
            ("POST", CONTROL_PREFIX + "login-code"): self._control_login_code,
            ("POST", CONTROL_PREFIX + "phone-code"): self._control_phone_code,
            ("POST", CONTROL_PREFIX + "encrypted-phone"): self._control_encrypted_phone,
            ("POST", CONTROL_PREFIX + "subscribe"): self._control_subscribe,
            ("POST", CONTROL_PREFIX + "revoke-tokens"): self._control_revoke_tokens,
            ("GET", CONTROL_PREFIX + "messages"): lambda request: SandboxResponse.json(self.messages()),
        }

    def _control_login_code(self, request: SandboxRequest) -> SandboxResponse:
        spec = request.json()
        return SandboxResponse.json({"code": self.issue_login_code(spec["openid"], spec.get("unionid"))})

    def _control_phone_code(self, request: SandboxRequest) -> SandboxResponse:
        spec = request.json()
        return SandboxResponse.json(
            {"code": self.issue_phone_code(spec["phone"], spec.get("country_code", "86"))}
        )

    def _control_encrypted_phone(self, request: SandboxRequest) -> SandboxResponse:
        spec = request.json()
        encrypted = self.encrypted_phone(
            spec["openid"], spec["phone"], spec.get("country_code", "86"), spec.get("appid")
        )
        return SandboxResponse.json(encrypted)

    def _control_subscribe(self, request: SandboxRequest) -> SandboxResponse:
        spec = request.json()
        self.grant_subscription(spec["openid"], spec["template_id"], int(spec.get("times", 1)))
        return SandboxResponse.json({"ok": True})

    def _control_revoke_tokens(self, request: SandboxRequest) -> SandboxResponse:
        spec = request.json() if request.body else {}
        self.revoke_tokens(expired=bool(spec.get("expired")))
        return SandboxResponse.json({"ok": True})


def _subscribe_errcode(message: Mapping[str, Any]) -> int:
    """47003 unless the message is complete and every value fits its template key."""
    if not _nonempty_str(message["touser"]) or not _nonempty_str(message["template_id"]):
        return 47003
    if message["page"] is not None and not isinstance(message["page"], str):
        return 47003
    state, lang = message["miniprogram_state"] or "formal", message["lang"] or "zh_CN"
    if state not in MINIPROGRAM_STATES or lang not in LANGS:
        return 47003
    data = message["data"]
    if not isinstance(data, dict) or not data:
        return 47003
    for key, item in data.items():
        value = item.get("value") if isinstance(item, dict) else None
        if not _nonempty_str(value):
            return 47003
        limit = VALUE_LIMITS.get(key.rstrip("0123456789"))
        if limit is not None and len(value) > limit:
            return 47003
    return 0


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _json_object(request: SandboxRequest) -> dict[str, Any]:
    try:
        payload = request.json()
    except ValueError:
        raise WeChatError(47001) from None
    if not isinstance(payload, dict):
        raise WeChatError(47001)
    return payload


def _phone_info(phone: str, country_code: str) -> dict[str, str]:
    full = phone if country_code == "86" else f"+{country_code} {phone}"
    return {"phoneNumber": full, "purePhoneNumber": phone, "countryCode": country_code}


def _error(errcode: int) -> SandboxResponse:
    message = ERRMSG.get(errcode, "error")
    rid = "-".join(secrets.token_hex(4) for _ in range(3))
    return SandboxResponse.json({"errcode": errcode, "errmsg": f"{message}, rid: {rid}"})


def _aes_cbc_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    padder = PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def _random_code() -> str:
    return secrets.token_urlsafe(24)  # 32 characters, like a real code
