"""Phone numbers (both forms) and subscribe messages, against the WeChat sandbox."""

from __future__ import annotations

import base64

import pytest

from backend.gateways.errors import GatewayTerminal
from backend.gateways.wechat.base import PhoneNumber, SubscribeMessage, SubscribeResult
from tests.gateways.helpers import assert_gateway_error

WANG = "oPATIENT_wang"
VISIT_TEMPLATE = "TPL_VISIT_REMINDER"
REMINDER = SubscribeMessage(
    openid=WANG,
    template_id=VISIT_TEMPLATE,
    data={"thing1": "复诊提醒：请按时服药", "time2": "2026年11月24日 09:30", "name3": "李医生"},
    page="pages/consultation/detail?id=42",
)
WANG_PHONE = PhoneNumber(phone_number="13800138000", pure_phone_number="13800138000", country_code="86")


def test_phone_code_gives_the_phone_number(wechat, wechat_sandbox):
    assert wechat.get_phone_number(wechat_sandbox.issue_phone_code("13800138000")) == WANG_PHONE


def test_phone_number_outside_china_keeps_its_country_code(wechat, wechat_sandbox):
    code = wechat_sandbox.issue_phone_code("2025550123", country_code="1")

    assert wechat.get_phone_number(code) == PhoneNumber("+1 2025550123", "2025550123", "1")


@pytest.mark.parametrize("second_use", [False, True], ids=["unknown", "used"])
def test_unknown_or_used_phone_code_is_terminal_invalid_code(wechat, wechat_sandbox, second_use):
    code = wechat_sandbox.issue_phone_code("13800138000") if second_use else "no-such-code"
    if second_use:
        wechat.get_phone_number(code)

    with pytest.raises(GatewayTerminal) as caught:
        wechat.get_phone_number(code)

    assert_gateway_error(caught, GatewayTerminal, "invalid_code", 40029)


def _logged_in(wechat, wechat_sandbox) -> str:
    return wechat.code_to_session(wechat_sandbox.issue_login_code(WANG)).session_key


def test_encrypted_phone_decrypts_with_the_session_key(wechat, wechat_sandbox):
    session_key = _logged_in(wechat, wechat_sandbox)
    encrypted = wechat_sandbox.encrypted_phone(WANG, "13800138000")

    assert wechat.decrypt_phone(session_key, encrypted["encryptedData"], encrypted["iv"]) == WANG_PHONE


def _flip(b64: str, index: int, mask: int) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[index] ^= mask
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    "spoil",
    [
        # Made for another mini-program: decrypts fine, the watermark gives it away.
        pytest.param(lambda data, iv: (data, iv, "wx0someoneelse0001"), id="other-appid"),
        # Flipping the last byte of the second-to-last block flips the padding byte: bad padding.
        pytest.param(lambda data, iv: (_flip(data, -17, 0x80), iv, None), id="bad-padding"),
        # The IV is XORed into the first block: "{" becomes "z" and the JSON breaks.
        pytest.param(lambda data, iv: (data, _flip(iv, 0, 0x01), None), id="wrong-iv"),
        pytest.param(lambda data, iv: ("not base64!", iv, None), id="not-base64"),
        pytest.param(lambda data, iv: (data[:-24] + "==", iv, None), id="truncated"),
    ],
)
def test_spoiled_encrypted_phone_is_terminal(wechat, wechat_sandbox, spoil):
    session_key = _logged_in(wechat, wechat_sandbox)
    good = wechat_sandbox.encrypted_phone(WANG, "13800138000")
    data, iv, appid = spoil(good["encryptedData"], good["iv"])
    if appid:
        data, iv = wechat_sandbox.encrypted_phone(WANG, "13800138000", appid=appid).values()

    with pytest.raises(GatewayTerminal) as caught:
        wechat.decrypt_phone(session_key, data, iv)

    assert_gateway_error(caught, GatewayTerminal, "invalid_encrypted_data", None)


def test_subscribe_message_without_a_subscription_is_refused_and_recorded(wechat, wechat_sandbox):
    wechat_sandbox.issue_login_code(WANG)  # a user of the mini-program who never said yes

    with pytest.raises(GatewayTerminal) as caught:
        wechat.send_subscribe_message(REMINDER)

    assert_gateway_error(caught, GatewayTerminal, "not_subscribed", 43101)
    assert [(m["touser"], m["template_id"], m["errcode"], m["msgid"]) for m in wechat_sandbox.messages()] == [
        (WANG, VISIT_TEMPLATE, 43101, None)
    ]


def test_subscribe_message_is_sent_once_per_subscription_with_chinese_intact(wechat, wechat_sandbox):
    wechat_sandbox.grant_subscription(WANG, VISIT_TEMPLATE, times=1)

    result = wechat.send_subscribe_message(REMINDER)
    with pytest.raises(GatewayTerminal) as caught:
        wechat.send_subscribe_message(REMINDER)  # the one-time subscription is used up

    assert isinstance(result, SubscribeResult)
    assert isinstance(result.msgid, int)
    assert_gateway_error(caught, GatewayTerminal, "not_subscribed", 43101)
    sent, refused = wechat_sandbox.messages()
    assert sent == {
        "touser": WANG,
        "template_id": VISIT_TEMPLATE,
        "page": "pages/consultation/detail?id=42",
        "data": {
            "thing1": {"value": "复诊提醒：请按时服药"},
            "time2": {"value": "2026年11月24日 09:30"},
            "name3": {"value": "李医生"},
        },
        "miniprogram_state": "formal",
        "lang": "zh_CN",
        "msgid": result.msgid,
        "errcode": 0,
    }
    assert (refused["errcode"], refused["msgid"]) == (43101, None)


def test_subscribe_message_to_an_unknown_user_is_invalid_openid(wechat, wechat_sandbox):
    with pytest.raises(GatewayTerminal) as caught:
        wechat.send_subscribe_message(REMINDER)

    assert_gateway_error(caught, GatewayTerminal, "invalid_openid", 40003)


def test_subscribe_value_longer_than_its_template_key_allows_is_invalid_argument(wechat, wechat_sandbox):
    wechat_sandbox.grant_subscription(WANG, VISIT_TEMPLATE)
    too_long = SubscribeMessage(
        WANG, VISIT_TEMPLATE, {"thing1": "复诊提醒" * 6}
    )  # thing: 20 characters at most

    with pytest.raises(GatewayTerminal) as caught:
        wechat.send_subscribe_message(too_long)

    assert_gateway_error(caught, GatewayTerminal, "invalid_argument", 47003)
    assert wechat_sandbox.remaining_subscriptions(WANG, VISIT_TEMPLATE) == 1
