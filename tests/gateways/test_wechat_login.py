"""wx.login code → session, through wechatpy against the WeChat sandbox over real HTTP."""

from __future__ import annotations

import base64
import socket
import time

import pytest

from backend.gateways.errors import GatewayRetryable, GatewayTerminal
from backend.gateways.wechat.base import WeChatSession
from backend.gateways.wechat.client import WechatpyMiniProgram
from tests.gateways.conftest import WECHAT_APPID, WECHAT_SECRET
from tests.gateways.helpers import assert_gateway_error

JSCODE2SESSION = "/sns/jscode2session"


def test_login_code_gives_the_users_session_without_an_access_token(wechat, wechat_sandbox):
    code = wechat_sandbox.issue_login_code("oPATIENT_wang", unionid="uWANG")

    session = wechat.code_to_session(code)

    assert session == WeChatSession(
        openid="oPATIENT_wang", session_key=wechat_sandbox.session_key("oPATIENT_wang"), unionid="uWANG"
    )
    assert len(base64.b64decode(session.session_key)) == 16
    assert "session_key" not in repr(session)
    assert wechat_sandbox.calls() == [JSCODE2SESSION]  # no /cgi-bin/token first


def test_login_without_unionid_gives_none(wechat, wechat_sandbox):
    session = wechat.code_to_session(wechat_sandbox.issue_login_code("oPATIENT_li"))

    assert (session.openid, session.unionid) == ("oPATIENT_li", None)


def test_every_login_gets_a_new_session_key(wechat, wechat_sandbox):
    first = wechat.code_to_session(wechat_sandbox.issue_login_code("oPATIENT_wang"))
    second = wechat.code_to_session(wechat_sandbox.issue_login_code("oPATIENT_wang"))

    assert first.session_key != second.session_key
    assert wechat_sandbox.session_key("oPATIENT_wang") == second.session_key


def test_unknown_code_is_terminal_invalid_code(wechat, wechat_sandbox):
    with pytest.raises(GatewayTerminal) as caught:
        wechat.code_to_session("no-such-code")

    assert_gateway_error(caught, GatewayTerminal, "invalid_code", 40029)


def test_code_older_than_five_minutes_is_invalid(wechat, wechat_sandbox):
    code = wechat_sandbox.issue_login_code("oPATIENT_wang")
    wechat_sandbox.advance_clock(301)

    with pytest.raises(GatewayTerminal) as caught:
        wechat.code_to_session(code)

    assert_gateway_error(caught, GatewayTerminal, "invalid_code", 40029)


def test_code_used_twice_is_terminal_code_been_used(wechat, wechat_sandbox):
    code = wechat_sandbox.issue_login_code("oPATIENT_wang")
    wechat.code_to_session(code)

    with pytest.raises(GatewayTerminal) as caught:
        wechat.code_to_session(code)

    assert_gateway_error(caught, GatewayTerminal, "invalid_code", 40163)
    assert caught.value.message.startswith("code been used")


@pytest.mark.parametrize(
    ("errcode", "kind", "code"),
    [
        (45009, GatewayRetryable, "rate_limited"),
        (45011, GatewayRetryable, "rate_limited"),
        (-1, GatewayRetryable, "upstream_busy"),
        (40226, GatewayTerminal, "invalid_code"),
        (48001, GatewayTerminal, "upstream_error"),
    ],
)
def test_wechat_errcodes_map_to_our_two_kinds(wechat, wechat_sandbox, errcode, kind, code):
    login_code = wechat_sandbox.issue_login_code("oPATIENT_wang")
    wechat_sandbox.fail_next(JSCODE2SESSION, "errcode", errcode=errcode)

    with pytest.raises(kind) as caught:
        wechat.code_to_session(login_code)

    assert_gateway_error(caught, kind, code, errcode)
    assert wechat.code_to_session(login_code).openid == "oPATIENT_wang"  # the failed call used nothing up


def test_http_500_is_retryable(wechat, wechat_sandbox):
    wechat_sandbox.fail_next(JSCODE2SESSION, "http500")

    with pytest.raises(GatewayRetryable) as caught:
        wechat.code_to_session(wechat_sandbox.issue_login_code("oPATIENT_wang"))

    assert_gateway_error(caught, GatewayRetryable, "upstream_error", None)


def test_no_answer_within_the_timeout_is_retryable(wechat_sandbox):
    impatient = WechatpyMiniProgram(WECHAT_APPID, WECHAT_SECRET, wechat_sandbox.base_url, timeout=0.3)
    wechat_sandbox.fail_next(JSCODE2SESSION, "timeout", delay=1.5)
    started = time.monotonic()

    with pytest.raises(GatewayRetryable) as caught:
        impatient.code_to_session(wechat_sandbox.issue_login_code("oPATIENT_wang"))

    assert_gateway_error(caught, GatewayRetryable, "timeout", None)
    assert time.monotonic() - started < 1.0
    impatient.close()


def test_nobody_listening_is_retryable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    client = WechatpyMiniProgram(WECHAT_APPID, WECHAT_SECRET, f"http://127.0.0.1:{free_port}", timeout=1)

    with pytest.raises(GatewayRetryable) as caught:
        client.code_to_session("any-code")

    assert_gateway_error(caught, GatewayRetryable, "connection_error", None)
    client.close()


def test_wrong_app_secret_is_terminal_bad_credentials(wechat_sandbox):
    client = WechatpyMiniProgram(WECHAT_APPID, "not-our-secret", wechat_sandbox.base_url, timeout=2)

    with pytest.raises(GatewayTerminal) as caught:
        client.code_to_session(wechat_sandbox.issue_login_code("oPATIENT_wang"))

    assert_gateway_error(caught, GatewayTerminal, "bad_credentials", 40125)
    client.close()


def test_wrong_appid_is_terminal_bad_credentials(wechat_sandbox):
    client = WechatpyMiniProgram("wx0someoneelse0001", WECHAT_SECRET, wechat_sandbox.base_url, timeout=2)

    with pytest.raises(GatewayTerminal) as caught:
        client.get_access_token()

    assert_gateway_error(caught, GatewayTerminal, "bad_credentials", 40013)
    client.close()
