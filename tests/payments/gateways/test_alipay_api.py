"""AlipayGateway against the Alipay sandbox over real HTTP on 127.0.0.1: orders, refunds, failures."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from alipay import AliPay

from backend.gateways.errors import GatewayError, GatewayRetryable, GatewayTerminal
from payments.gateways.alipay import SHANGHAI, AlipayGateway
from payments.gateways.alipay_sandbox import GATEWAY_PATH, AlipaySandbox
from payments.gateways.alipay_sandbox import keys as alipay_keys
from payments.gateways.base import OrderStatus, PaymentGateway, PrepayRequest, RefundRequest, RefundStatus
from tests.payments.gateways.alipay_fixtures import ALIPAY_APPID, ALIPAY_BUYER_ID, ALIPAY_SELLER_ID

MakePrepay = Callable[..., PrepayRequest]


def refund_request(out_trade_no: str, out_refund_no: str, amount_fen: int, total_fen: int = 8800) -> RefundRequest:
    return RefundRequest(out_trade_no, out_refund_no, amount_fen, total_fen, "患者取消复诊", "")


def assert_error(caught: pytest.ExceptionInfo[Any], kind: type[GatewayError], code: str, provider_code: Any) -> None:
    assert (type(caught.value), caught.value.code, caught.value.provider_code) == (kind, code, provider_code)


def paid_order(gateway: AlipayGateway, sandbox: AlipaySandbox, make: MakePrepay, no: str, fen: int = 8800) -> str:
    trade_no = gateway.prepay(make(no, fen)).provider_ref
    sandbox.pay(no)
    return trade_no


# --- prepay --------------------------------------------------------------------------------------
def test_the_gateway_is_a_payment_gateway(alipay_gateway: AlipayGateway) -> None:
    assert isinstance(alipay_gateway, PaymentGateway)
    assert (alipay_gateway.channel, alipay_gateway.appid, alipay_gateway.mchid) == (
        "alipay", ALIPAY_APPID, ALIPAY_SELLER_ID)


def test_prepay_returns_the_trade_no_my_trade_pay_needs(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, alipay_prepay_request: MakePrepay
) -> None:
    request = alipay_prepay_request("QH-A-1001", 8800)
    result = alipay_gateway.prepay(request)
    trade = alipay_sandbox.order("QH-A-1001")
    assert result.client_params == {"tradeNO": result.provider_ref}
    assert result.provider_ref == trade["trade_no"] and len(result.provider_ref) == 28
    assert (trade["status"], trade["total_fen"], trade["subject"], trade["buyer_id"]) == (
        "WAIT_BUYER_PAY", 8800, "中医复诊问诊费", ALIPAY_BUYER_ID)
    assert trade["notify_url"] == request.notify_url
    assert trade["expires_at"] == int(request.expires_at.timestamp())  # sent as Shanghai wall-clock seconds
    assert alipay_sandbox.calls() == [GATEWAY_PATH]


def test_prepay_uses_buyer_open_id_for_app_scoped_ids(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, alipay_prepay_request: MakePrepay
) -> None:
    open_id = "074a1CcTG1LelxKe4xQC0zgNdId0nxi95b5lsNpazWYoCo5"
    alipay_gateway.prepay(alipay_prepay_request("QH-A-1002", payer_id=open_id))
    assert alipay_sandbox.order("QH-A-1002")["buyer_open_id"] == open_id


def test_prepay_again_is_the_same_trade_but_changed_params_conflict(
    alipay_gateway: AlipayGateway, alipay_prepay_request: MakePrepay
) -> None:
    first = alipay_gateway.prepay(alipay_prepay_request("QH-A-1003", 8800))
    assert alipay_gateway.prepay(alipay_prepay_request("QH-A-1003", 8800)) == first
    with pytest.raises(GatewayTerminal) as caught:
        alipay_gateway.prepay(alipay_prepay_request("QH-A-1003", 9900))
    assert_error(caught, GatewayTerminal, "order_conflict", "ACQ.CONTEXT_INCONSISTENT")


def test_prepay_of_a_paid_order_is_terminal(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, alipay_prepay_request: MakePrepay
) -> None:
    paid_order(alipay_gateway, alipay_sandbox, alipay_prepay_request, "QH-A-1004")
    with pytest.raises(GatewayTerminal) as caught:
        alipay_gateway.prepay(alipay_prepay_request("QH-A-1004"))
    assert_error(caught, GatewayTerminal, "order_paid", "ACQ.TRADE_HAS_SUCCESS")


def test_prepay_refuses_zero_amount_before_calling(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, alipay_prepay_request: MakePrepay
) -> None:
    with pytest.raises(GatewayTerminal) as caught:
        alipay_gateway.prepay(alipay_prepay_request("QH-A-1005", 0))
    assert caught.value.code == "invalid_request"
    assert alipay_sandbox.calls() == []


# --- signatures ------------------------------------------------------------------------------------
def test_a_client_with_the_wrong_app_key_is_refused(
    alipay_make_gateway: Callable[..., AlipayGateway], alipay_sandbox: AlipaySandbox,
    alipay_prepay_request: MakePrepay,
) -> None:
    stranger = alipay_make_gateway(alipay_sandbox, app_private_key_pem=alipay_keys.private_pem(alipay_keys.new_key()))
    with pytest.raises(GatewayTerminal) as caught:
        stranger.prepay(alipay_prepay_request("QH-A-1101"))
    assert_error(caught, GatewayTerminal, "sign_error", "isv.invalid-signature")
    assert alipay_sandbox.truth() == {}


def test_an_unknown_appid_gets_alipays_unsigned_refusal(
    alipay_make_gateway: Callable[..., AlipayGateway], alipay_sandbox: AlipaySandbox
) -> None:
    stranger = alipay_make_gateway(alipay_sandbox, appid="2021000000009999")
    with pytest.raises(GatewayTerminal) as caught:
        stranger.query_order("QH-A-1102")
    assert_error(caught, GatewayTerminal, "invalid_request", "isv.invalid-app-id")


def test_an_answer_signed_with_another_key_is_refused(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, alipay_prepay_request: MakePrepay
) -> None:
    alipay_sandbox.forge_responses(times=1)
    with pytest.raises(GatewayTerminal) as caught:
        alipay_gateway.prepay(alipay_prepay_request("QH-A-1103"))
    assert_error(caught, GatewayTerminal, "bad_response_signature", "10000")
    assert alipay_gateway.query_order("QH-A-1103").state == "pending"  # the next answer is Alipay's again


def test_a_gateway_trusting_another_alipay_key_refuses_every_answer(
    alipay_make_gateway: Callable[..., AlipayGateway], alipay_sandbox: AlipaySandbox
) -> None:
    gateway = alipay_make_gateway(alipay_sandbox, alipay_public_key_pem=alipay_keys.public_pem(alipay_keys.new_key()))
    with pytest.raises(GatewayTerminal) as caught:
        gateway.query_order("QH-A-1104")
    assert caught.value.code == "bad_response_signature"


def test_braces_inside_values_do_not_break_the_signed_text(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, alipay_prepay_request: MakePrepay
) -> None:
    subject = '复诊}{"问诊"} \\ 费'
    alipay_gateway.prepay(alipay_prepay_request("QH-A-1105", description=subject))
    assert alipay_gateway.query_order("QH-A-1105").state == "pending"
    # python-alipay-sdk's own brace counter would have cut the object at the first "}" of the subject:
    inner = json.dumps({"code": "10000", "subject": subject}, ensure_ascii=False, separators=(",", ":"))
    raw = f'{{"alipay_trade_query_response":{inner},"sign":"..."}}'
    sdk_text = AliPay._get_string_to_be_signed(None, raw, "alipay_trade_query_response")  # type: ignore[arg-type]
    assert sdk_text == '{"code":"10000","subject":"复诊}'
    assert sdk_text != inner


# --- query and close -------------------------------------------------------------------------------
def test_query_reports_pending_then_paid(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, alipay_prepay_request: MakePrepay
) -> None:
    trade_no = alipay_gateway.prepay(alipay_prepay_request("QH-A-1201", 123456)).provider_ref
    assert alipay_gateway.query_order("QH-A-1201") == OrderStatus("QH-A-1201", "pending", 0, trade_no, None)
    alipay_sandbox.pay("QH-A-1201")
    paid_at = datetime.fromtimestamp(int(alipay_sandbox.order("QH-A-1201")["paid_at"]), SHANGHAI)
    assert alipay_gateway.query_order("QH-A-1201") == OrderStatus("QH-A-1201", "paid", 123456, trade_no, paid_at)


def test_query_of_an_unknown_order_is_terminal(alipay_gateway: AlipayGateway) -> None:
    with pytest.raises(GatewayTerminal) as caught:
        alipay_gateway.query_order("QH-A-1202")
    assert_error(caught, GatewayTerminal, "order_not_found", "ACQ.TRADE_NOT_EXIST")


def test_close_an_unpaid_order_twice_then_it_cannot_be_paid(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, alipay_prepay_request: MakePrepay
) -> None:
    alipay_gateway.prepay(alipay_prepay_request("QH-A-1203"))
    alipay_gateway.close_order("QH-A-1203")
    alipay_gateway.close_order("QH-A-1203")  # already closed: not an error
    assert alipay_gateway.query_order("QH-A-1203").state == "closed"
    with pytest.raises(ValueError, match="TRADE_CLOSED"):
        alipay_sandbox.pay("QH-A-1203")
    assert alipay_sandbox.truth() == {"QH-A-1203": {"paid": 0, "refunded": 0}}


def test_close_of_a_paid_order_is_terminal_order_paid(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, alipay_prepay_request: MakePrepay
) -> None:
    paid_order(alipay_gateway, alipay_sandbox, alipay_prepay_request, "QH-A-1204")
    with pytest.raises(GatewayTerminal) as caught:
        alipay_gateway.close_order("QH-A-1204")
    assert_error(caught, GatewayTerminal, "order_paid", "ACQ.TRADE_STATUS_ERROR")
    assert alipay_sandbox.order("QH-A-1204")["status"] == "TRADE_SUCCESS"


def test_close_of_an_order_alipay_never_saw_is_not_an_error(alipay_gateway: AlipayGateway) -> None:
    assert alipay_gateway.close_order("QH-A-1205") is None


def test_an_expired_order_is_closed_and_cannot_be_paid(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, alipay_prepay_request: MakePrepay
) -> None:
    alipay_gateway.prepay(alipay_prepay_request("QH-A-1206"))
    alipay_sandbox.advance_clock(31 * 60)
    assert alipay_gateway.query_order("QH-A-1206").state == "closed"
    with pytest.raises(ValueError):
        alipay_sandbox.pay("QH-A-1206")


# --- refunds -------------------------------------------------------------------------------------------
def test_partial_refunds_succeed_at_once_and_query_back(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, alipay_prepay_request: MakePrepay
) -> None:
    paid_order(alipay_gateway, alipay_sandbox, alipay_prepay_request, "QH-A-1301", 8800)
    first = alipay_gateway.refund(refund_request("QH-A-1301", "QH-R-1", 2000))
    second = alipay_gateway.refund(refund_request("QH-A-1301", "QH-R-2", 3000))
    assert (first.state, first.amount_fen, second.state, second.amount_fen) == ("succeeded", 2000, "succeeded", 3000)
    assert alipay_gateway.query_refund("QH-R-1", "QH-A-1301") == first
    assert alipay_gateway.query_refund("QH-R-2", "QH-A-1301") == second
    assert alipay_gateway.query_order("QH-A-1301").state == "paid"
    assert alipay_sandbox.truth() == {"QH-A-1301": {"paid": 8800, "refunded": 5000}}


def test_the_same_refund_request_twice_refunds_once(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, alipay_prepay_request: MakePrepay
) -> None:
    paid_order(alipay_gateway, alipay_sandbox, alipay_prepay_request, "QH-A-1302")
    first = alipay_gateway.refund(refund_request("QH-A-1302", "QH-R-3", 2000))
    again = alipay_gateway.refund(refund_request("QH-A-1302", "QH-R-3", 2000))  # fund_change "N" → confirmed by query
    assert again == first and again.state == "succeeded"
    assert alipay_sandbox.truth()["QH-A-1302"] == {"paid": 8800, "refunded": 2000}


def test_refunds_above_what_was_paid_are_terminal(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, alipay_prepay_request: MakePrepay
) -> None:
    paid_order(alipay_gateway, alipay_sandbox, alipay_prepay_request, "QH-A-1303", 8800)
    alipay_gateway.refund(refund_request("QH-A-1303", "QH-R-4", 5000))
    with pytest.raises(GatewayTerminal) as caught:
        alipay_gateway.refund(refund_request("QH-A-1303", "QH-R-5", 3801))
    assert_error(caught, GatewayTerminal, "refund_amount_invalid", "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL")
    assert alipay_gateway.query_refund("QH-R-5", "QH-A-1303") == RefundStatus("QH-R-5", "processing", 0)
    assert alipay_sandbox.truth()["QH-A-1303"] == {"paid": 8800, "refunded": 5000}


def test_refund_of_an_unpaid_order_is_terminal(
    alipay_gateway: AlipayGateway, alipay_prepay_request: MakePrepay
) -> None:
    alipay_gateway.prepay(alipay_prepay_request("QH-A-1304"))
    with pytest.raises(GatewayTerminal) as caught:
        alipay_gateway.refund(refund_request("QH-A-1304", "QH-R-6", 100))
    assert_error(caught, GatewayTerminal, "order_not_paid", "ACQ.TRADE_STATUS_ERROR")


def test_a_fully_refunded_order_reads_refunded(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, alipay_prepay_request: MakePrepay
) -> None:
    trade_no = paid_order(alipay_gateway, alipay_sandbox, alipay_prepay_request, "QH-A-1305", 1)
    alipay_gateway.refund(refund_request("QH-A-1305", "QH-R-7", 1, total_fen=1))
    status = alipay_gateway.query_order("QH-A-1305")
    assert (status.state, status.amount_fen, status.provider_trade_no) == ("refunded", 1, trade_no)
    assert alipay_sandbox.order("QH-A-1305")["status"] == "TRADE_CLOSED"


# --- transport failures and provider errors ----------------------------------------------------------
def test_http_500_is_retryable(alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox) -> None:
    alipay_sandbox.fail_next(GATEWAY_PATH, "http500")
    with pytest.raises(GatewayRetryable) as caught:
        alipay_gateway.query_order("QH-A-1401")
    assert_error(caught, GatewayRetryable, "upstream_error", None)


def test_a_timeout_is_retryable_and_bounded(
    alipay_make_gateway: Callable[..., AlipayGateway], alipay_sandbox: AlipaySandbox
) -> None:
    gateway = alipay_make_gateway(alipay_sandbox, timeout=0.3)
    alipay_sandbox.fail_next(GATEWAY_PATH, "timeout", delay=1.5)
    started = datetime.now(SHANGHAI)
    with pytest.raises(GatewayRetryable) as caught:
        gateway.query_order("QH-A-1402")
    assert caught.value.code == "timeout"
    assert datetime.now(SHANGHAI) - started < timedelta(seconds=1.2)


def test_an_unreachable_alipay_is_retryable(
    alipay_make_gateway: Callable[..., AlipayGateway], alipay_sandbox: AlipaySandbox
) -> None:
    gateway = alipay_make_gateway(alipay_sandbox, gateway_url="http://127.0.0.1:9/gateway.do")
    with pytest.raises(GatewayRetryable) as caught:
        gateway.query_order("QH-A-1403")
    assert caught.value.code == "connection_error"


@pytest.mark.parametrize(
    ("errcode", "kind", "code", "provider_code"),
    [
        ("20000/aop.ACQ.SYSTEM_ERROR", GatewayRetryable, "upstream_busy", "aop.ACQ.SYSTEM_ERROR"),
        ("20000/isp.unknow-error", GatewayRetryable, "upstream_unavailable", "isp.unknow-error"),
        ("40004/ACQ.SYSTEM_ERROR", GatewayRetryable, "upstream_busy", "ACQ.SYSTEM_ERROR"),
        ("40004/ACQ.SELLER_BALANCE_NOT_ENOUGH", GatewayRetryable, "seller_balance_insufficient",
         "ACQ.SELLER_BALANCE_NOT_ENOUGH"),
        ("40004/ACQ.REFUND_FEE_ERROR", GatewayTerminal, "refund_amount_invalid", "ACQ.REFUND_FEE_ERROR"),
        ("40004/ACQ.REFUND_AMOUNT_EXCEED", GatewayTerminal, "refund_amount_invalid", "ACQ.REFUND_AMOUNT_EXCEED"),
        ("40002/isv.invalid-signature", GatewayTerminal, "sign_error", "isv.invalid-signature"),
        ("40002/isv.invalid-parameter", GatewayTerminal, "invalid_request", "isv.invalid-parameter"),
        ("40004/ACQ.SOMETHING_NEW", GatewayTerminal, "upstream_error", "ACQ.SOMETHING_NEW"),
    ],
)
def test_alipay_error_codes_map_to_our_two_kinds(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, errcode: str,
    kind: type[GatewayError], code: str, provider_code: str,
) -> None:
    alipay_sandbox.fail_next(GATEWAY_PATH, "errcode", errcode)
    with pytest.raises(GatewayError) as caught:
        alipay_gateway.refund(refund_request("QH-A-1404", "QH-R-8", 100))
    assert_error(caught, kind, code, provider_code)


def test_the_sdks_own_get_requests_are_served_too(
    alipay_app_keys: Any, alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox,
    alipay_prepay_request: MakePrepay,
) -> None:
    """python-alipay-sdk itself sends GET with every parameter in the query string."""
    trade_no = alipay_gateway.prepay(alipay_prepay_request("QH-A-1501", 1)).provider_ref
    sdk = AliPay(appid=ALIPAY_APPID, app_notify_url=None, app_private_key_string=alipay_app_keys.private_pem,
                 alipay_public_key_string=alipay_sandbox.alipay_public_key_pem, sign_type="RSA2")
    sdk._gateway = alipay_sandbox.gateway_url
    answer = sdk.api_alipay_trade_query(out_trade_no="QH-A-1501")
    assert (answer["code"], answer["trade_no"], answer["trade_status"], answer["total_amount"]) == (
        "10000", trade_no, "WAIT_BUYER_PAY", "0.01")
