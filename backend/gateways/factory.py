"""Build the gateways from Django settings (DESIGN rule 7: settings choose the implementation).

The built objects are cached per settings values, so a test that points ``WECHAT_API_BASE`` at
a sandbox on a random port gets a client for that port. WeChat access tokens live in Redis
when ``REDIS_URL`` is set (shared by every process, as WeChat wants: each new token shortens
the life of the previous one), else in one in-memory storage per API base for this process.
"""

from __future__ import annotations

import functools
import threading

import redis
from django.conf import settings
from wechatpy.session import SessionStorage
from wechatpy.session.memorystorage import MemoryStorage
from wechatpy.session.redisstorage import RedisStorage

from backend.gateways.realname.base import IdentityVerifier
from backend.gateways.realname.client import HttpIdentityVerifier
from backend.gateways.wechat.base import WeChatMiniProgram
from backend.gateways.wechat.client import WechatpyMiniProgram

WECHATPY_REDIS_PREFIX = "qihuang:wechatpy"
REDIS_SOCKET_TIMEOUT_SECONDS = 5.0

_memory_token_storages: dict[str, MemoryStorage] = {}
_memory_lock = threading.Lock()


def wechat_gateway() -> WeChatMiniProgram:
    return _wechat(
        settings.WECHAT_APPID,
        settings.WECHAT_APP_SECRET,
        settings.WECHAT_API_BASE,
        float(settings.WECHAT_TIMEOUT_SECONDS),
        settings.REDIS_URL or "",
    )


def identity_verifier() -> IdentityVerifier:
    return _identity_verifier(
        settings.REALNAME_API_BASE,
        settings.REALNAME_APP_KEY,
        settings.REALNAME_APP_SECRET,
        float(settings.REALNAME_TIMEOUT_SECONDS),
    )


def clear_gateway_cache() -> None:
    """Forget the built gateways (the in-memory access tokens too)."""
    _wechat.cache_clear()
    _identity_verifier.cache_clear()
    with _memory_lock:
        _memory_token_storages.clear()


@functools.lru_cache(maxsize=8)
def _wechat(appid: str, secret: str, api_base: str, timeout: float, redis_url: str) -> WechatpyMiniProgram:
    return WechatpyMiniProgram(appid, secret, api_base, timeout, _token_storage(redis_url, api_base))


@functools.lru_cache(maxsize=8)
def _identity_verifier(api_base: str, app_key: str, app_secret: str, timeout: float) -> HttpIdentityVerifier:
    return HttpIdentityVerifier(api_base, app_key, app_secret, timeout)


def _token_storage(redis_url: str, api_base: str) -> SessionStorage:
    if redis_url:
        connection = redis.Redis.from_url(
            redis_url,
            socket_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_SOCKET_TIMEOUT_SECONDS,
        )
        return RedisStorage(connection, prefix=WECHATPY_REDIS_PREFIX)
    with _memory_lock:
        return _memory_token_storages.setdefault(api_base, MemoryStorage())
