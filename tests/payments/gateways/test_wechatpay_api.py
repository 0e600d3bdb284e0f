"""WeChatPayGateway against WeChatPaySandbox over real HTTP on 127.0.0.1: prepay, query, close,
refund, the merchant's and the platform's signatures, and how failures are classified."""

from __future__ import annotations

import base64
import socket
import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from backend.gateways.errors import GatewayRetryable, GatewayTerminal
from backend.gateways.loopback import SandboxControl
from payments.gateways.base import PaymentGateway, RefundRequest
from payments.gateways.wechatpay_sandbox import SandboxConflict
from tests.gateways.helpers import assert_gateway_error
from tests.payments.gateways.wechatpay_fixtures import WECHATPAY_APPID, WECHATPAY_MCHID

JSAPI = "/v3/pay/transactions/jsapi"


def refund_request(out_trade_no: str, out_refund_no: str, amount: int, total: int = 3000) -> RefundRequest:
    return RefundRequest(out_trade_no=out_trade_no, out_refund_no=out_refund_no, amount_fen=amount, total_fen=total,
                         reason="患者取消复诊", notify_url="http://127.0.0.1:9/refund-notify")


def test_gateway_implements_the_protocol(wechatpay_gateway):
    assert isinstance(wechatpay_gateway, PaymentGateway)
    assert (wechatpay_gateway.channel, wechatpay_gateway.appid, wechatpay_gateway.mchid) == (
        "wechat", WECHATPAY_APPID, WECHATPAY_MCHID)


def test_prepay_gives_request_payment_params_signed_like_wechat(
    wechatpay_gateway, wechatpay_sandbox, wechatpay_prepay_request, wechatpay_keys
):
    before = int(time.time())
    result = wechatpay_gateway.prepay(wechatpay_prepay_request("QH20260105000001", 3000))

    params = dict(result.client_params)
    assert set(params) == {"timeStamp", "nonceStr", "package", "signType", "paySign"}
    assert result.provider_ref.startswith("wx")
    assert params["package"] == f"prepay_id={result.provider_ref}"
    assert params["signType"] == "RSA"
    assert before <= int(params["timeStamp"]) <= int(time.time())
    assert 16 <= len(params["nonceStr"]) <= 32
    # What WeChat does when the mini-program calls wx.requestPayment: RSA-SHA256 over four lines.
    message = f"{WECHATPAY_APPID}\n{params['timeStamp']}\n{params['nonceStr']}\n{params['package']}\n".encode()
    merchant_public = serialization.load_pem_public_key(wechatpay_keys["merchant"].public_pem.encode())
    merchant_public.verify(base64.b64decode(params["paySign"]), message, padding.PKCS1v15(), hashes.SHA256())
    order = wechatpay_sandbox.order("QH20260105000001")
    assert (order["trade_state"], order["amount"]["total"], order["payer"]["openid"]) == (
        "NOTPAY", 3000, "oPATIENT_WANG")
    assert wechatpay_sandbox.calls() == [JSAPI]


def test_prepay_sends_time_expire_and_the_sandbox_enforces_it(
    wechatpay_gateway, wechatpay_sandbox, wechatpay_prepay_request
):
    expires_at = datetime.now(UTC) + timedelta(minutes=5)
    wechatpay_gateway.prepay(wechatpay_prepay_request("QH20260105000002", expires_at=expires_at))
    wechatpay_sandbox.advance_clock(5 * 60 + 1)

    with pytest.raises(SandboxConflict, match="expired"):
        wechatpay_sandbox.pay("QH20260105000002")
    assert wechatpay_gateway.query_order("QH20260105000002").state == "pending"


def test_repeated_prepay_returns_the_same_prepay_id_and_a_changed_one_is_refused(
    wechatpay_gateway, wechatpay_prepay_request
):
    request = wechatpay_prepay_request("QH20260105000003", 3000)
    first = wechatpay_gateway.prepay(request)
    again = wechatpay_gateway.prepay(request)
    assert again.provider_ref == first.provider_ref

    with pytest.raises(GatewayTerminal) as caught:
        wechatpay_gateway.prepay(wechatpay_prepay_request("QH20260105000003", 3100, expires_at=request.expires_at))
    assert_gateway_error(caught, GatewayTerminal, "invalid_request", "INVALID_REQUEST")


def test_prepay_of_a_paid_order_is_refused(wechatpay_gateway, wechatpay_sandbox, wechatpay_prepay_request):
    request = wechatpay_prepay_request("QH20260105000004")
    wechatpay_gateway.prepay(request)
    wechatpay_sandbox.pay("QH20260105000004")

    with pytest.raises(GatewayTerminal) as caught:
        wechatpay_gateway.prepay(request)
    assert_gateway_error(caught, GatewayTerminal, "order_paid", "ORDERPAID")


@pytest.mark.parametrize("amount", [0, -5])
def test_prepay_of_a_non_positive_amount_is_refused(wechatpay_gateway, wechatpay_prepay_request, amount):
    with pytest.raises(GatewayTerminal) as caught:
        wechatpay_gateway.prepay(wechatpay_prepay_request("QH20260105000005", amount))
    assert_gateway_error(caught, GatewayTerminal, "param_error", "PARAM_ERROR")


def test_wrong_merchant_key_is_refused_with_sign_error(
    wechatpay_make_gateway, wechatpay_sandbox, wechatpay_keys, wechatpay_prepay_request
):
    stranger_pem = wechatpay_keys["stranger"].private_pem
    impostor = wechatpay_make_gateway(wechatpay_sandbox, merchant_private_key_pem=stranger_pem)

    with pytest.raises(GatewayTerminal) as caught:
        impostor.prepay(wechatpay_prepay_request("QH20260105000006"))
    assert_gateway_error(caught, GatewayTerminal, "sign_error", "SIGN_ERROR")
    assert wechatpay_sandbox.truth() == {}


@pytest.mark.parametrize("override", [{"merchant_serial_no": "0123456789ABCDEF"}, {"mchid": "1900000999"}])
def test_wrong_serial_or_mchid_is_refused_with_sign_error(
    wechatpay_make_gateway, wechatpay_sandbox, override
):
    gateway = wechatpay_make_gateway(wechatpay_sandbox, **override)

    with pytest.raises(GatewayTerminal) as caught:
        gateway.query_order("QH20260105000007")
    assert_gateway_error(caught, GatewayTerminal, "sign_error", "SIGN_ERROR")


def test_answer_signed_with_another_key_is_rejected(wechatpay_gateway, wechatpay_sandbox, wechatpay_prepay_request):
    wechatpay_sandbox.forge_responses(times=1)

    with pytest.raises(GatewayTerminal) as caught:
        wechatpay_gateway.prepay(wechatpay_prepay_request("QH20260105000008"))
    assert_gateway_error(caught, GatewayTerminal, "bad_response_signature", None)
    # The next, properly signed answer is accepted (the sandbox did create the order).
    assert wechatpay_gateway.query_order("QH20260105000008").state == "pending"


def test_gateway_with_unknown_serial_rejects_a_successful_answer(
    wechatpay_make_gateway, wechatpay_gateway, wechatpay_sandbox, wechatpay_keys, wechatpay_prepay_request
):
    wechatpay_gateway.prepay(wechatpay_prepay_request("QH20260105000010"))
    distrustful = wechatpay_make_gateway(
        wechatpay_sandbox, platform_public_key_pem=wechatpay_keys["platform"].public_pem,
        platform_public_key_id="PUB_KEY_ID_0000000000000000000000000000")

    with pytest.raises(GatewayTerminal) as caught:
        distrustful.query_order("QH20260105000010")
    assert_gateway_error(caught, GatewayTerminal, "bad_response_signature", None)
    assert "/v3/certificates" not in wechatpay_sandbox.calls()


def test_query_order_through_its_states(wechatpay_gateway, wechatpay_sandbox, wechatpay_prepay_request):
    wechatpay_gateway.prepay(wechatpay_prepay_request("QH20260105000011", 3000))
    assert wechatpay_gateway.query_order("QH20260105000011").state == "pending"

    transaction_id = wechatpay_sandbox.pay("QH20260105000011", payer_total=2800)  # a 2-yuan coupon
    paid = wechatpay_gateway.query_order("QH20260105000011")
    assert (paid.state, paid.amount_fen, paid.provider_trade_no) == ("paid", 3000, transaction_id)
    assert paid.paid_at is not None and paid.paid_at.utcoffset() == timedelta(hours=8)
    assert abs(paid.paid_at.timestamp() - time.time()) < 5

    wechatpay_gateway.refund(refund_request("QH20260105000011", "RF20260105000011", 800))
    refunded = wechatpay_gateway.query_order("QH20260105000011")
    assert (refunded.state, refunded.amount_fen) == ("refunded", 3000)


def test_query_of_an_unknown_order_is_terminal_not_found(wechatpay_gateway):
    with pytest.raises(GatewayTerminal) as caught:
        wechatpay_gateway.query_order("QH20260105999999")
    assert_gateway_error(caught, GatewayTerminal, "order_not_found", "ORDER_NOT_EXIST")


def test_close_an_unpaid_order_twice_then_it_cannot_be_paid(
    wechatpay_gateway, wechatpay_sandbox, wechatpay_prepay_request
):
    wechatpay_gateway.prepay(wechatpay_prepay_request("QH20260105000012"))
    wechatpay_gateway.close_order("QH20260105000012")
    wechatpay_gateway.close_order("QH20260105000012")  # already closed: not an error

    closed = wechatpay_gateway.query_order("QH20260105000012")
    assert (closed.state, closed.amount_fen, closed.provider_trade_no) == ("closed", 0, "")
    with pytest.raises(SandboxConflict):
        wechatpay_sandbox.pay("QH20260105000012")
    with pytest.raises(GatewayTerminal) as caught:
        wechatpay_gateway.prepay(wechatpay_prepay_request("QH20260105000012"))
    assert_gateway_error(caught, GatewayTerminal, "order_closed", "ORDER_CLOSED")


def test_close_of_a_paid_order_is_terminal_order_paid(wechatpay_gateway, wechatpay_sandbox, wechatpay_prepay_request):
    wechatpay_gateway.prepay(wechatpay_prepay_request("QH20260105000013"))
    wechatpay_sandbox.pay("QH20260105000013")

    with pytest.raises(GatewayTerminal) as caught:
        wechatpay_gateway.close_order("QH20260105000013")
    assert_gateway_error(caught, GatewayTerminal, "order_paid", "ORDERPAID")
    assert wechatpay_gateway.query_order("QH20260105000013").state == "paid"


def test_refund_then_query_until_it_succeeds(wechatpay_gateway, wechatpay_sandbox, wechatpay_prepay_request):
    wechatpay_gateway.prepay(wechatpay_prepay_request("QH20260105000014", 3000))
    wechatpay_sandbox.pay("QH20260105000014")

    started = wechatpay_gateway.refund(refund_request("QH20260105000014", "RF20260105000014", 1000))
    assert (started.out_refund_no, started.state, started.amount_fen, started.succeeded_at) == (
        "RF20260105000014", "processing", 1000, None)
    assert started.provider_refund_id
    assert wechatpay_gateway.query_refund("RF20260105000014", "QH20260105000014") == started

    assert wechatpay_sandbox.settle_refunds() == ["RF20260105000014"]
    done = wechatpay_gateway.query_refund("RF20260105000014", "QH20260105000014")
    assert (done.state, done.amount_fen, done.provider_refund_id) == ("succeeded", 1000, started.provider_refund_id)
    assert done.succeeded_at is not None
    assert wechatpay_sandbox.truth() == {"QH20260105000014": {"paid": 3000, "refunded": 1000}}


def test_repeated_refund_request_returns_the_same_refund(
    wechatpay_gateway, wechatpay_sandbox, wechatpay_prepay_request
):
    wechatpay_gateway.prepay(wechatpay_prepay_request("QH20260105000015", 3000))
    wechatpay_sandbox.pay("QH20260105000015")
    request = refund_request("QH20260105000015", "RF20260105000015", 3000)

    first, again = wechatpay_gateway.refund(request), wechatpay_gateway.refund(request)
    assert again == first
    wechatpay_sandbox.settle_refunds()
    assert wechatpay_sandbox.truth()["QH20260105000015"] == {"paid": 3000, "refunded": 3000}


@pytest.mark.parametrize("status, state", [("ABNORMAL", "failed"), ("CLOSED", "closed")])
def test_refund_that_does_not_succeed(wechatpay_gateway, wechatpay_sandbox, wechatpay_prepay_request, status, state):
    wechatpay_gateway.prepay(wechatpay_prepay_request("QH20260105000016"))
    wechatpay_sandbox.pay("QH20260105000016")
    wechatpay_gateway.refund(refund_request("QH20260105000016", "RF20260105000016", 500))
    wechatpay_sandbox.settle_refunds("RF20260105000016", status=status)

    result = wechatpay_gateway.query_refund("RF20260105000016", "QH20260105000016")
    assert (result.state, result.amount_fen, result.succeeded_at) == (state, 500, None)
    assert wechatpay_sandbox.truth()["QH20260105000016"]["refunded"] == 0


def test_refund_above_the_paid_amount_is_terminal(wechatpay_gateway, wechatpay_sandbox, wechatpay_prepay_request):
    wechatpay_gateway.prepay(wechatpay_prepay_request("QH20260105000017", 3000))
    wechatpay_sandbox.pay("QH20260105000017")

    with pytest.raises(GatewayTerminal) as caught:
        wechatpay_gateway.refund(refund_request("QH20260105000017", "RF20260105000017", 3001))
    assert_gateway_error(caught, GatewayTerminal, "invalid_request", "INVALID_REQUEST")
    wechatpay_gateway.refund(refund_request("QH20260105000017", "RF2026010500001701", 2000))
    with pytest.raises(GatewayTerminal) as caught:  # 2000 + 1001 > 3000, even while the first is processing
        wechatpay_gateway.refund(refund_request("QH20260105000017", "RF2026010500001702", 1001))
    assert_gateway_error(caught, GatewayTerminal, "invalid_request", "INVALID_REQUEST")
    assert wechatpay_gateway.refund(refund_request("QH20260105000017", "RF2026010500001703", 1000)).amount_fen == 1000


def test_refund_of_an_unpaid_or_unknown_order_is_terminal(wechatpay_gateway, wechatpay_prepay_request):
    wechatpay_gateway.prepay(wechatpay_prepay_request("QH20260105000018"))
    with pytest.raises(GatewayTerminal) as caught:
        wechatpay_gateway.refund(refund_request("QH20260105000018", "RF20260105000018", 100))
    assert_gateway_error(caught, GatewayTerminal, "invalid_request", "INVALID_REQUEST")
    with pytest.raises(GatewayTerminal) as caught:
        wechatpay_gateway.refund(refund_request("QH20260105999998", "RF20260105999998", 100))
    assert_gateway_error(caught, GatewayTerminal, "order_not_found", "RESOURCE_NOT_EXISTS")


def test_query_refund_unknown_or_of_another_order(wechatpay_gateway, wechatpay_sandbox, wechatpay_prepay_request):
    with pytest.raises(GatewayTerminal) as caught:
        wechatpay_gateway.query_refund("RF20260105999997", "QH20260105000019")
    assert_gateway_error(caught, GatewayTerminal, "refund_not_found", "RESOURCE_NOT_EXISTS")

    wechatpay_gateway.prepay(wechatpay_prepay_request("QH20260105000019"))
    wechatpay_sandbox.pay("QH20260105000019")
    wechatpay_gateway.refund(refund_request("QH20260105000019", "RF20260105000019", 100))
    with pytest.raises(GatewayTerminal) as caught:
        wechatpay_gateway.query_refund("RF20260105000019", "QH20260105000020")
    assert caught.value.code == "refund_order_mismatch"


def test_refund_settles_by_itself_after_the_delay(
    wechatpay_start_sandbox, wechatpay_make_gateway, wechatpay_prepay_request
):
    sandbox = wechatpay_start_sandbox(refund_settle_delay=60)
    gateway = wechatpay_make_gateway(sandbox)
    gateway.prepay(wechatpay_prepay_request("QH20260105000021"))
    sandbox.pay("QH20260105000021")
    gateway.refund(refund_request("QH20260105000021", "RF20260105000021", 3000))
    assert gateway.query_refund("RF20260105000021", "QH20260105000021").state == "processing"

    sandbox.advance_clock(61)
    deadline = time.monotonic() + 5
    while gateway.query_refund("RF20260105000021", "QH20260105000021").state != "succeeded":
        assert time.monotonic() < deadline, "the refund never settled"
        time.sleep(0.02)


def test_http_500_is_retryable_and_the_next_call_works(wechatpay_gateway, wechatpay_sandbox, wechatpay_prepay_request):
    wechatpay_sandbox.fail_next(JSAPI, "http500")
    request = wechatpay_prepay_request("QH20260105000022")

    with pytest.raises(GatewayRetryable) as caught:
        wechatpay_gateway.prepay(request)
    assert_gateway_error(caught, GatewayRetryable, "server_error", None)
    assert wechatpay_gateway.prepay(request).provider_ref
    assert wechatpay_sandbox.calls(JSAPI) == [JSAPI, JSAPI]


@pytest.mark.parametrize("errcode, code", [("SYSTEM_ERROR", "system_error"), ("FREQUENCY_LIMITED", "rate_limited")])
def test_provider_busy_codes_are_retryable(wechatpay_gateway, wechatpay_sandbox, errcode, code):
    path = "/v3/pay/transactions/out-trade-no/QH20260105000023"
    wechatpay_sandbox.fail_next(path, "errcode", errcode=errcode)

    with pytest.raises(GatewayRetryable) as caught:
        wechatpay_gateway.query_order("QH20260105000023")
    assert_gateway_error(caught, GatewayRetryable, code, errcode)


def test_timeout_is_retryable(wechatpay_make_gateway, wechatpay_sandbox):
    gateway = wechatpay_make_gateway(wechatpay_sandbox, timeout=0.3)
    wechatpay_sandbox.fail_next("/v3/pay/transactions/out-trade-no/QH20260105000024", "timeout", delay=1.5)

    started = time.monotonic()
    with pytest.raises(GatewayRetryable) as caught:
        gateway.query_order("QH20260105000024")
    assert_gateway_error(caught, GatewayRetryable, "timeout", None)
    assert time.monotonic() - started < 1.2


def test_connection_refused_is_retryable(wechatpay_make_gateway, wechatpay_sandbox):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = wechatpay_make_gateway(wechatpay_sandbox, api_base=f"http://127.0.0.1:{port}")

    with pytest.raises(GatewayRetryable) as caught:
        gateway.query_order("QH20260105000025")
    assert_gateway_error(caught, GatewayRetryable, "connection_error", None)


def test_control_routes_over_http(wechatpay_gateway, wechatpay_sandbox, wechatpay_prepay_request):
    control = SandboxControl(wechatpay_sandbox.base_url)
    wechatpay_gateway.prepay(wechatpay_prepay_request("QH20260105000026", 1500))

    paid = control.call("POST", "pay", {"out_trade_no": "QH20260105000026"})
    assert paid["transaction_id"] == wechatpay_gateway.query_order("QH20260105000026").provider_trade_no
    with pytest.raises(RuntimeError, match="HTTP 409"):
        control.call("POST", "pay", {"out_trade_no": "QH20260105000026"})
    assert control.call("GET", "truth") == {"QH20260105000026": {"paid": 1500, "refunded": 0}}
    control.call("POST", "chaos", {"drop": 1})
    control.fail_next(JSAPI, "http500")
    with pytest.raises(GatewayRetryable):
        wechatpay_gateway.prepay(wechatpay_prepay_request("QH20260105000027"))
