"""Gateway sandboxes on random loopback ports, and clients pointed at them.

The sandboxes start once per test session; every test gets them freshly reset. Nothing here
needs the database.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from wechatpy.session.redisstorage import RedisStorage

from backend.gateways.realname.client import HttpIdentityVerifier
from backend.gateways.realname.sandbox import RealNameSandbox
from backend.gateways.sandboxes import Sandboxes, start_sandboxes
from backend.gateways.wechat.client import WechatpyMiniProgram
from backend.gateways.wechat.sandbox import WeChatSandbox

WECHAT_APPID = "wx0test0000000001"
WECHAT_SECRET = "wechat-test-secret-0001"
REALNAME_KEY = "qihuang-test"
REALNAME_SECRET = "realname-test-secret-0001"
REDIS_URL = "redis://127.0.0.1:6379/0"
CLIENT_TIMEOUT = 2.0


@pytest.fixture(scope="session")
def sandboxes() -> Iterator[Sandboxes]:
    running = start_sandboxes(
        wechat_appid=WECHAT_APPID,
        wechat_secret=WECHAT_SECRET,
        realname_key=REALNAME_KEY,
        realname_secret=REALNAME_SECRET,
    )
    yield running
    running.stop()


@pytest.fixture
def wechat_sandbox(sandboxes: Sandboxes) -> WeChatSandbox:
    sandboxes.wechat.reset()
    return sandboxes.wechat


@pytest.fixture
def realname_sandbox(sandboxes: Sandboxes) -> RealNameSandbox:
    sandboxes.realname.reset()
    return sandboxes.realname


@pytest.fixture
def wechat(wechat_sandbox: WeChatSandbox) -> Iterator[WechatpyMiniProgram]:
    """The WeChat adapter on the sandbox, with its access token in memory."""
    client = WechatpyMiniProgram(WECHAT_APPID, WECHAT_SECRET, wechat_sandbox.base_url, CLIENT_TIMEOUT)
    yield client
    client.close()


@pytest.fixture
def verifier(realname_sandbox: RealNameSandbox) -> Iterator[HttpIdentityVerifier]:
    client = HttpIdentityVerifier(realname_sandbox.base_url, REALNAME_KEY, REALNAME_SECRET, CLIENT_TIMEOUT)
    yield client
    client.close()


@pytest.fixture
def redis_token_storage() -> Iterator[RedisStorage]:
    """A wechatpy RedisStorage under a prefix of its own, removed afterwards."""
    connection = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    prefix = f"qihuang-test:{uuid.uuid4().hex}"
    yield RedisStorage(connection, prefix=prefix)
    leftovers = list(connection.scan_iter(f"{prefix}:*"))
    if leftovers:
        connection.delete(*leftovers)
    connection.close()
