"""The WeChat mini-program adapter, built on wechatpy 1.8.18 (STACK-NOTES item 8 and §4).

wechatpy gives us the access-token cache (any ``wechatpy.session`` storage; Redis in
production, so that several processes share one token instead of invalidating each other's)
and the errcode handling. We change four things:

* every URL, including the hard-coded token URL, starts at ``api_base`` (real WeChat or the
  sandbox), and every request carries our timeout;
* ``jscode2session`` is called without an access token (upstream fetches one first);
* an invalid or expired access token (40001, 40014, 42001) drops the cached token and retries
  once, instead of wechatpy's unbounded auto-retry;
* every failure becomes ``GatewayRetryable`` or ``GatewayTerminal``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import requests
from redis.exceptions import RedisError
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage
from wechatpy.session.memorystorage import MemoryStorage

from backend.gateways.errors import GatewayError, GatewayRetryable, GatewayTerminal
from backend.gateways.wechat.base import PhoneNumber, SubscribeMessage, SubscribeResult, WeChatSession
from backend.gateways.wechat.crypto import decrypt_user_data

logger = logging.getLogger(__name__)

TOKEN_ERRCODES = frozenset({40001, 40014, 42001})
# A token is shared through the storage until this many seconds before WeChat expires it.
TOKEN_EARLY_REFRESH_SECONDS = 300

RETRYABLE_ERRCODES: Mapping[int, str] = {
    -1: "upstream_busy",  # system busy
    45009: "rate_limited",  # daily quota reached
    45011: "rate_limited",  # per-minute quota reached
    40001: "access_token_invalid",  # still invalid after one refresh
    40014: "access_token_invalid",
    42001: "access_token_invalid",
}
TERMINAL_ERRCODES: Mapping[int, str] = {
    40029: "invalid_code",
    40163: "invalid_code",  # code been used
    40226: "invalid_code",  # high-risk user: WeChat blocks the login
    41008: "invalid_code",  # missing code
    43101: "not_subscribed",  # no remaining subscription: user refused or used it up
    40003: "invalid_openid",
    40037: "invalid_template",
    47003: "invalid_argument",
    40013: "bad_credentials",  # invalid appid
    40125: "bad_credentials",  # invalid appsecret
}


class ApiBaseWeChatClient(WeChatClient):
    """wechatpy's ``WeChatClient`` with every URL under ``api_base`` and a timeout on every call."""

    def __init__(
        self, appid: str, secret: str, *, api_base: str, timeout: float, session: SessionStorage
    ) -> None:
        super().__init__(appid, secret, session=session, timeout=timeout, auto_retry=False)
        self.api_base = api_base.rstrip("/")
        self.API_BASE_URL = f"{self.api_base}/cgi-bin/"
        self.wxa.API_BASE_URL = f"{self.api_base}/"

    def url(self, endpoint: str) -> str:
        return f"{self.api_base}/{endpoint}"

    def fetch_access_token(self) -> dict[str, Any]:
        """Upstream hard-codes https://api.weixin.qq.com and sends no timeout."""
        result = _as_dict(
            self.get_without_token(
                "cgi-bin/token",
                {"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
            )
        )
        if not result.get("access_token"):
            raise GatewayRetryable("bad_response", "WeChat sent no access_token")
        expires_in = int(result.get("expires_in", 7200))
        shared_ttl = max(expires_in - TOKEN_EARLY_REFRESH_SECONDS, 60)
        self.session.set(self.access_token_key, result["access_token"], shared_ttl)
        self.expires_at = int(time.time()) + expires_in
        return result

    def get_without_token(self, endpoint: str, params: dict[str, str]) -> Any:
        """A GET that takes no access token (the token itself, ``jscode2session``)."""
        response = self._http.get(self.url(endpoint), params=params, timeout=self.timeout)
        if response.status_code >= 400:
            raise WeChatClientException(None, None, client=self, request=response.request, response=response)
        return self._handle_result(response)

    def forget_access_token(self, token: str) -> None:
        """Drop ``token`` from the storage, unless another process has already replaced it."""
        if self.session.get(self.access_token_key) == token:
            self.session.delete(self.access_token_key)
        self.expires_at = None


class WechatpyMiniProgram:
    """:class:`~backend.gateways.wechat.base.WeChatMiniProgram` over HTTP, via wechatpy."""

    def __init__(
        self,
        appid: str,
        secret: str,
        api_base: str,
        timeout: float,
        session_storage: SessionStorage | None = None,
    ) -> None:
        self.appid = appid
        self.client = ApiBaseWeChatClient(
            appid, secret, api_base=api_base, timeout=timeout, session=session_storage or MemoryStorage()
        )

    def code_to_session(self, code: str) -> WeChatSession:
        params = {
            "appid": self.appid,
            "secret": self.client.secret,
            "js_code": code,
            "grant_type": "authorization_code",
        }
        with _translated_errors():
            data = _as_dict(self.client.get_without_token("sns/jscode2session", params))
        return WeChatSession(
            openid=_required(data, "openid"),
            session_key=_required(data, "session_key"),
            unionid=data.get("unionid") or None,
        )

    def get_phone_number(self, code: str) -> PhoneNumber:
        data = self._post_with_token("wxa/business/getuserphonenumber", {"code": code})
        info = data.get("phone_info")
        if not isinstance(info, dict):
            raise GatewayRetryable("bad_response", "WeChat sent no phone_info")
        return _phone_number(info)

    def decrypt_phone(self, session_key: str, encrypted_data: str, iv: str) -> PhoneNumber:
        data = decrypt_user_data(session_key, encrypted_data, iv, self.appid)
        try:
            return _phone_number(data)
        except GatewayError as exc:
            raise GatewayTerminal(
                "invalid_encrypted_data", "the encrypted data holds no phone number"
            ) from exc

    def send_subscribe_message(self, message: SubscribeMessage) -> SubscribeResult:
        payload: dict[str, Any] = {
            "touser": message.openid,
            "template_id": message.template_id,
            "data": {key: {"value": value} for key, value in message.data.items()},
            "miniprogram_state": message.miniprogram_state,
            "lang": message.lang,
        }
        if message.page:
            payload["page"] = message.page
        data = self._post_with_token("cgi-bin/message/subscribe/send", payload)
        msgid = data.get("msgid")
        return SubscribeResult(msgid=int(msgid) if msgid is not None else None)

    def get_access_token(self) -> str:
        with _translated_errors():
            return self.client.access_token

    def close(self) -> None:
        self.client._http.close()

    def _post_with_token(self, endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST JSON with the access token; on a stale token, refresh it and retry once."""
        with _translated_errors():
            token = self.client.access_token
            try:
                return _as_dict(self._post(endpoint, token, payload))
            except WeChatClientException as exc:
                if exc.errcode not in TOKEN_ERRCODES:
                    raise
                logger.info("WeChat rejected the access token (errcode %s); refreshing it once", exc.errcode)
                self.client.forget_access_token(token)
            return _as_dict(self._post(endpoint, self.client.access_token, payload))

    def _post(self, endpoint: str, token: str, payload: dict[str, Any]) -> Any:
        # wechatpy encodes a dict body as UTF-8 JSON with ensure_ascii=False: Chinese stays intact.
        return self.client.post(
            self.client.url(endpoint),
            params={"access_token": token},
            data=payload,
            headers={"Content-Type": "application/json; charset=utf-8"},
        )


@contextmanager
def _translated_errors() -> Iterator[None]:
    try:
        yield
    except WeChatClientException as exc:
        raise _from_wechat(exc) from exc
    except requests.Timeout as exc:
        raise GatewayRetryable("timeout", f"WeChat did not answer in time: {exc}") from exc
    except requests.RequestException as exc:
        raise GatewayRetryable("connection_error", f"could not reach WeChat: {exc}") from exc
    except RedisError as exc:
        raise GatewayRetryable("token_storage_unavailable", f"access-token storage failed: {exc}") from exc


def _from_wechat(exc: WeChatClientException) -> GatewayError:
    if exc.errcode is None:  # an HTTP error status, not a WeChat errcode
        status = exc.response.status_code if exc.response is not None else None
        transient = status is None or status >= 500 or status == 429
        kind = GatewayRetryable if transient else GatewayTerminal
        return kind("upstream_error", f"WeChat answered HTTP {status}")
    errcode = int(exc.errcode)
    if errcode in RETRYABLE_ERRCODES:
        return GatewayRetryable(RETRYABLE_ERRCODES[errcode], str(exc.errmsg), errcode)
    return GatewayTerminal(TERMINAL_ERRCODES.get(errcode, "upstream_error"), str(exc.errmsg), errcode)


def _as_dict(result: Any) -> dict[str, Any]:
    if not isinstance(result, dict):  # wechatpy hands back the raw response when it is not JSON
        raise GatewayRetryable("bad_response", "WeChat answered with something other than a JSON object")
    return result


def _required(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise GatewayRetryable("bad_response", f"WeChat sent no {key}")
    return value


def _phone_number(info: Mapping[str, Any]) -> PhoneNumber:
    return PhoneNumber(
        phone_number=_required(info, "phoneNumber"),
        pure_phone_number=_required(info, "purePhoneNumber"),
        country_code=_required(info, "countryCode"),
    )
