"""The access token: fetched once, shared through the storage, refreshed once when rejected."""

from __future__ import annotations

import json

import pytest

from backend.gateways.errors import GatewayRetryable
from backend.gateways.wechat.base import SubscribeMessage
from backend.gateways.wechat.client import WechatpyMiniProgram
from tests.gateways.conftest import WECHAT_APPID, WECHAT_SECRET
from tests.gateways.helpers import assert_gateway_error

TOKEN = "/cgi-bin/token"
SEND = "/cgi-bin/message/subscribe/send"
REMINDER = SubscribeMessage(openid="oPATIENT_wang", template_id="TPL_VISIT", data={"thing1": "复诊提醒"})


def test_token_is_fetched_once_and_reused(wechat, wechat_sandbox):
    wechat_sandbox.grant_subscription("oPATIENT_wang", "TPL_VISIT", times=2)

    token = wechat.get_access_token()
    wechat.get_phone_number(wechat_sandbox.issue_phone_code("13800138000"))
    wechat.send_subscribe_message(REMINDER)
    wechat.send_subscribe_message(REMINDER)

    assert wechat.get_access_token() == token
    assert len(wechat_sandbox.calls(TOKEN)) == 1


def test_token_lives_in_redis_and_other_processes_reuse_it(wechat_sandbox, redis_token_storage):
    first = WechatpyMiniProgram(WECHAT_APPID, WECHAT_SECRET, wechat_sandbox.base_url, 2, redis_token_storage)
    token = first.get_access_token()
    # A second worker process: its own client object, the same Redis.
    second = WechatpyMiniProgram(WECHAT_APPID, WECHAT_SECRET, wechat_sandbox.base_url, 2, redis_token_storage)
    wechat_sandbox.grant_subscription("oPATIENT_wang", "TPL_VISIT")

    second.send_subscribe_message(REMINDER)

    key = f"{redis_token_storage.prefix}:{WECHAT_APPID}_access_token"
    assert json.loads(redis_token_storage.redis.get(key)) == token
    assert 6600 <= redis_token_storage.redis.ttl(key) <= 6900  # 7200 s less the early-refresh margin
    assert len(wechat_sandbox.calls(TOKEN)) == 1
    first.close()
    second.close()


@pytest.mark.parametrize(("expired", "errcode"), [(False, 40001), (True, 42001)])
def test_rejected_token_is_refreshed_and_the_call_retried_once(wechat, wechat_sandbox, expired, errcode):
    wechat_sandbox.grant_subscription("oPATIENT_wang", "TPL_VISIT")
    old_token = wechat.get_access_token()
    wechat_sandbox.revoke_tokens(expired=expired)

    result = wechat.send_subscribe_message(REMINDER)

    assert result.msgid is not None
    assert wechat.get_access_token() != old_token
    assert wechat_sandbox.calls() == [TOKEN, SEND, TOKEN, SEND]
    assert [message["errcode"] for message in wechat_sandbox.messages()] == [0]


def test_refreshed_token_still_rejected_is_retryable_without_a_loop(wechat, wechat_sandbox):
    wechat_sandbox.grant_subscription("oPATIENT_wang", "TPL_VISIT")
    wechat_sandbox.fail_next(SEND, "errcode", errcode=40001, times=2)

    with pytest.raises(GatewayRetryable) as caught:
        wechat.send_subscribe_message(REMINDER)

    assert_gateway_error(caught, GatewayRetryable, "access_token_invalid", 40001)
    assert wechat_sandbox.calls() == [TOKEN, SEND, TOKEN, SEND]
    assert wechat_sandbox.remaining_subscriptions("oPATIENT_wang", "TPL_VISIT") == 1


def test_a_new_token_leaves_the_old_one_valid_for_five_minutes(wechat_sandbox):
    worker_a = WechatpyMiniProgram(WECHAT_APPID, WECHAT_SECRET, wechat_sandbox.base_url, 2)
    worker_b = WechatpyMiniProgram(WECHAT_APPID, WECHAT_SECRET, wechat_sandbox.base_url, 2)
    wechat_sandbox.grant_subscription("oPATIENT_wang", "TPL_VISIT", times=2)
    worker_a.get_access_token()
    worker_b.get_access_token()  # separate storages: this shortens worker A's token

    worker_a.send_subscribe_message(REMINDER)  # still inside the grace period
    wechat_sandbox.advance_clock(301)
    worker_a.send_subscribe_message(REMINDER)  # 42001, refresh, retry

    assert wechat_sandbox.calls() == [TOKEN, TOKEN, SEND, SEND, TOKEN, SEND]
    worker_a.close()
    worker_b.close()
