"""The account event stream over Channels with the real Redis channel layer."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import transaction

from backend.config.asgi import application
from backend.core.publish import account_group, publish_on_commit
from tests.conftest import wechat_login
from tests.realtime.helpers import refused_with

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass(frozen=True)
class ProfileVerified:
    profile_id: str
    status: str


def _connect(query: str = "", origin: bytes | None = b"http://127.0.0.1") -> WebsocketCommunicator:
    headers = [(b"origin", origin)] if origin else []
    return WebsocketCommunicator(application, f"/ws/account/{query}", headers=headers)


async def test_anonymous_socket_is_closed_4401():
    assert await refused_with(_connect()) == 4401


async def test_bad_token_is_closed_4401():
    assert await refused_with(_connect("?access_token=forged")) == 4401


async def test_event_published_after_commit_reaches_only_its_account(sandboxes):
    wang = await sync_to_async(wechat_login)(sandboxes, "oWS_WANG")
    zhang = await sync_to_async(wechat_login)(sandboxes, "oWS_ZHANG")
    wang_ws, zhang_ws = _connect(f"?access_token={wang.access_token}"), _connect(f"?access_token={zhang.access_token}")
    assert (await wang_ws.connect())[0] and (await zhang_ws.connect())[0]

    def publish():
        with transaction.atomic():
            publish_on_commit(account_group(wang.user_id), ProfileVerified(profile_id="p1", status="verified"))

    await sync_to_async(publish)()
    assert await wang_ws.receive_json_from(timeout=3) == {
        "type": "ProfileVerified", "data": {"profile_id": "p1", "status": "verified"}}
    assert await zhang_ws.receive_nothing(timeout=0.3)
    await wang_ws.send_json_to({"type": "ping"})
    assert await wang_ws.receive_json_from(timeout=3) == {"type": "pong"}
    await wang_ws.disconnect()
    await zhang_ws.disconnect()


async def test_rolled_back_event_is_never_sent(sandboxes):
    wang = await sync_to_async(wechat_login)(sandboxes, "oWS_ROLLBACK")
    ws = _connect(f"?access_token={wang.access_token}")
    assert (await ws.connect())[0]

    def publish_and_fail():
        with pytest.raises(RuntimeError), transaction.atomic():
            publish_on_commit(account_group(wang.user_id), ProfileVerified(profile_id="p2", status="x"))
            raise RuntimeError("rolled back")

    await sync_to_async(publish_and_fail)()
    assert await ws.receive_nothing(timeout=0.3)
    await ws.disconnect()


async def test_channel_layer_is_redis():
    assert type(get_channel_layer()).__name__ == "RedisChannelLayer"


async def test_origin_rules(sandboxes):
    wang = await sync_to_async(wechat_login)(sandboxes, "oWS_ORIGIN")
    # a browser page on another site may not open the socket
    evil = _connect(f"?access_token={wang.access_token}", origin=b"https://evil.example")
    connected, _ = await evil.connect()
    assert not connected
    await evil.wait()
    # the mini-program's wx.connectSocket sends no Origin and authenticates by token
    app = _connect(f"?access_token={wang.access_token}", origin=None)
    assert (await app.connect())[0]
    await app.disconnect()
