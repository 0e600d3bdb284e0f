"""What we need from the WeChat mini-program server API, and nothing more.

Implementations: :class:`backend.gateways.wechat.client.WechatpyMiniProgram` (real WeChat, or
the sandbox when ``WECHAT_API_BASE`` points at it). Every method raises only
``GatewayRetryable`` or ``GatewayTerminal``; the ``code`` values are listed per method.
Calls block on the network: use them from Celery tasks or through ``sync_to_async``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class WeChatSession:
    """The result of ``jscode2session``: who the user is, and the key of their encrypted data."""

    openid: str
    session_key: str = field(repr=False)
    unionid: str | None = None


@dataclass(frozen=True)
class PhoneNumber:
    phone_number: str  # with the country code for numbers outside China, as WeChat gives it
    pure_phone_number: str
    country_code: str


@dataclass(frozen=True)
class SubscribeMessage:
    """One subscribe message (订阅消息); ``data`` maps template keys to plain values."""

    openid: str
    template_id: str
    data: Mapping[str, str]
    page: str | None = None
    miniprogram_state: str = "formal"  # developer | trial | formal
    lang: str = "zh_CN"


@dataclass(frozen=True)
class SubscribeResult:
    msgid: int | None


@runtime_checkable
class WeChatMiniProgram(Protocol):
    def code_to_session(self, code: str) -> WeChatSession:
        """Exchange a ``wx.login`` code. Terminal ``invalid_code`` for an unknown, expired,
        used or high-risk code."""
        ...

    def get_phone_number(self, code: str) -> PhoneNumber:
        """Exchange a ``getPhoneNumber`` button code (``/wxa/business/getuserphonenumber``).
        Terminal ``invalid_code`` for an unknown or used code."""
        ...

    def decrypt_phone(self, session_key: str, encrypted_data: str, iv: str) -> PhoneNumber:
        """Decrypt the older ``encryptedData``/``iv`` form locally. Terminal
        ``invalid_encrypted_data`` when it does not decrypt or was made for another appid."""
        ...

    def send_subscribe_message(self, message: SubscribeMessage) -> SubscribeResult:
        """Send one subscribe message. Terminal ``not_subscribed`` (43101) when the user has
        no remaining one-time subscription to the template."""
        ...

    def get_access_token(self) -> str:
        """The current access token (cached; fetched when missing or about to expire)."""
        ...
