"""Driving the sandboxes from another process: the HTTP controls and the foreground runner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from backend.gateways.errors import GatewayRetryable
from backend.gateways.realname.base import IdentityCheck, IdentityOutcome
from backend.gateways.realname.client import TWO_FACTOR_PATH, HttpIdentityVerifier
from backend.gateways.sandboxes import RealNameSandboxControl, WeChatSandboxControl
from backend.gateways.wechat.base import PhoneNumber, SubscribeMessage
from backend.gateways.wechat.client import WechatpyMiniProgram
from tests.gateways.helpers import assert_gateway_error

ROOT = Path(__file__).resolve().parents[2]
WANG = "oPATIENT_wang"
WANG_PHONE = PhoneNumber("13800138000", "13800138000", "86")


def test_wechat_controls_over_http(wechat, wechat_sandbox):
    control = WeChatSandboxControl(wechat_sandbox.base_url)

    session = wechat.code_to_session(control.issue_login_code(WANG, unionid="uWANG"))
    encrypted = control.encrypted_phone(WANG, "13800138000")
    phone_code = control.issue_phone_code("13800138000")
    control.grant_subscription(WANG, "TPL_VISIT", times=1)
    sent = wechat.send_subscribe_message(SubscribeMessage(WANG, "TPL_VISIT", {"thing1": "请按时服药"}))
    control.revoke_tokens()
    control.fail_next("/sns/jscode2session", "errcode", errcode=45009)

    assert (session.openid, session.unionid) == (WANG, "uWANG")
    assert (
        wechat.decrypt_phone(session.session_key, encrypted["encryptedData"], encrypted["iv"]) == WANG_PHONE
    )
    assert wechat.get_phone_number(phone_code) == WANG_PHONE  # refreshes the revoked token
    assert [(m["msgid"], m["data"]) for m in control.messages()] == [
        (sent.msgid, {"thing1": {"value": "请按时服药"}})
    ]
    with pytest.raises(GatewayRetryable) as caught:
        wechat.code_to_session(control.issue_login_code(WANG))
    assert_gateway_error(caught, GatewayRetryable, "rate_limited", 45009)
    assert len(control.calls("/cgi-bin/token")) == 2
    control.reset()
    assert (control.messages(), control.calls()) == ([], [])


def test_bad_control_request_is_a_clear_400(wechat_sandbox):
    control = WeChatSandboxControl(wechat_sandbox.base_url)

    with pytest.raises(RuntimeError, match=r"HTTP 400.*KeyError"):
        control.encrypted_phone("oNEVER_LOGGED_IN", "13800138000")
    with pytest.raises(RuntimeError, match=r"HTTP 400.*mode must be one of"):
        control.fail_next("/sns/jscode2session", "explode")


def test_realname_controls_over_http(verifier, realname_sandbox):
    control = RealNameSandboxControl(realname_sandbox.base_url)

    control.add_people([{"name": "王建国", "id_number": "110101198803074518"}])
    match = verifier.verify(IdentityCheck("王建国", "110101198803074518"))
    control.fail_next(TWO_FACTOR_PATH, "http500")

    assert match.outcome == IdentityOutcome.MATCH
    with pytest.raises(GatewayRetryable):
        verifier.verify(IdentityCheck("王建国", "110101198803074518"))
    assert [(entry["code"], entry["result"]) for entry in control.requests()] == [("0000", "consistent")]
    assert control.calls() == [TWO_FACTOR_PATH, TWO_FACTOR_PATH]


def _run_foreground(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, str, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "backend.gateways.sandboxes", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wechat_line, realname_line = process.stdout.readline(), process.stdout.readline()
    return process, wechat_line.split()[2], realname_line.split()[2]


def _stop(process: subprocess.Popen) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=10)


def test_foreground_runner_takes_credentials_from_the_command_line():
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    args = ["--wechat-port", "0", "--realname-port", "0", "--wechat-appid", "wx0cli0000000001"]
    args += [
        "--wechat-secret",
        "cli-wechat-secret",
        "--realname-key",
        "cli",
        "--realname-secret",
        "cli-rn-secret",
    ]
    process, wechat_url, realname_url = _run_foreground(args, env)
    try:
        client = WechatpyMiniProgram("wx0cli0000000001", "cli-wechat-secret", wechat_url, timeout=2)
        session = client.code_to_session(WeChatSandboxControl(wechat_url).issue_login_code(WANG))
        verifier = HttpIdentityVerifier(realname_url, "cli", "cli-rn-secret", timeout=2)
        outcome = verifier.verify(IdentityCheck("王建国", "110101198803074518")).outcome
        client.close()
        verifier.close()
    finally:
        returncode = _stop(process)

    assert wechat_url.startswith("http://127.0.0.1:") and realname_url.startswith("http://127.0.0.1:")
    assert (session.openid, outcome, returncode) == (WANG, IdentityOutcome.NO_RECORD, 0)
    with pytest.raises(requests.ConnectionError):
        requests.get(wechat_url + "/cgi-bin/token", timeout=1)


def test_foreground_runner_without_settings_or_secrets_says_what_is_missing():
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}

    result = subprocess.run(
        [sys.executable, "-m", "backend.gateways.sandboxes", "--wechat-port", "0", "--realname-port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 1
    assert "give --wechat-secret and --realname-secret" in result.stderr
