"""Settings choose and configure the gateways (needs pytest-django's ``settings`` fixture)."""

from __future__ import annotations

import os

import pytest
import redis
import requests

from backend.gateways.factory import (
    WECHATPY_REDIS_PREFIX,
    clear_gateway_cache,
    identity_verifier,
    wechat_gateway,
)
from backend.gateways.realname.base import IdentityCheck, IdentityOutcome, IdentityVerifier
from backend.gateways.wechat.base import WeChatMiniProgram
from tests.gateways.conftest import (
    REALNAME_KEY,
    REALNAME_SECRET,
    REDIS_URL,
    WECHAT_APPID,
    WECHAT_SECRET,
)
from tests.gateways.test_sandboxes import _run_foreground, _stop

TOKEN = "/cgi-bin/token"


@pytest.fixture
def django_settings(request):
    if not request.config.pluginmanager.hasplugin("django"):
        pytest.skip("needs pytest-django (run without -p no:django)")
    return request.getfixturevalue("settings")


@pytest.fixture
def gateway_settings(django_settings, sandboxes):
    settings = django_settings
    settings.WECHAT_APPID, settings.WECHAT_APP_SECRET = WECHAT_APPID, WECHAT_SECRET
    settings.WECHAT_API_BASE = sandboxes.wechat.base_url
    settings.REALNAME_APP_KEY, settings.REALNAME_APP_SECRET = REALNAME_KEY, REALNAME_SECRET
    settings.REALNAME_API_BASE = sandboxes.realname.base_url
    settings.REDIS_URL = ""
    sandboxes.reset()
    clear_gateway_cache()
    yield settings
    clear_gateway_cache()


def test_wechat_gateway_is_built_once_per_settings_and_keeps_its_token(gateway_settings, wechat_sandbox):
    first = wechat_gateway()
    token = first.get_access_token()
    second = wechat_gateway()

    assert isinstance(first, WeChatMiniProgram)
    assert second is first
    assert second.get_access_token() == token
    assert wechat_sandbox.calls(TOKEN) == [TOKEN]


def test_other_api_base_gives_another_gateway_with_its_own_token(gateway_settings, wechat_sandbox):
    on_sandbox = wechat_gateway()
    on_sandbox.get_access_token()
    gateway_settings.WECHAT_API_BASE = wechat_sandbox.base_url + "/"  # same server, other cache key

    other = wechat_gateway()
    other.get_access_token()

    assert other is not on_sandbox
    assert wechat_sandbox.calls(TOKEN) == [TOKEN, TOKEN]


def test_with_redis_url_the_token_is_shared_in_redis(gateway_settings, wechat_sandbox):
    gateway_settings.REDIS_URL = REDIS_URL
    connection = redis.Redis.from_url(REDIS_URL)
    key = f"{WECHATPY_REDIS_PREFIX}:{WECHAT_APPID}_access_token"
    connection.delete(key)
    try:
        token = wechat_gateway().get_access_token()
        clear_gateway_cache()  # as if another process started
        assert wechat_gateway().get_access_token() == token
        assert connection.get(key) == f'"{token}"'.encode()
    finally:
        connection.delete(key)
        connection.close()
    assert wechat_sandbox.calls(TOKEN) == [TOKEN]


def test_identity_verifier_is_built_from_settings(gateway_settings, realname_sandbox):
    realname_sandbox.add_person("王建国", "110101198803074518")

    verifier = identity_verifier()

    assert isinstance(verifier, IdentityVerifier)
    assert identity_verifier() is verifier
    assert verifier.verify(IdentityCheck("王建国", "110101198803074518")).outcome == IdentityOutcome.MATCH


def test_foreground_runner_takes_credentials_from_django_settings(django_settings):
    settings = django_settings
    process, wechat_url, _ = _run_foreground(["--wechat-port", "0", "--realname-port", "0"], dict(os.environ))
    try:
        credentials = {"grant_type": "client_credential", "appid": settings.WECHAT_APPID}
        credentials["secret"] = settings.WECHAT_APP_SECRET
        answer = requests.get(f"{wechat_url}/cgi-bin/token", params=credentials, timeout=2).json()
    finally:
        _stop(process)

    assert set(answer) == {"access_token", "expires_in"}
