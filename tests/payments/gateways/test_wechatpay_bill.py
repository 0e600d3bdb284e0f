"""The daily trade bill: downloaded from the sandbox (SHA1-checked) and parsed to exact fen."""

from __future__ import annotations

from datetime import datetime

import pytest

from backend.gateways.errors import GatewayRetryable, GatewayTerminal
from payments.gateways.base import BillRow, RefundRequest
from payments.gateways.wechatpay import SHANGHAI, parse_trade_bill, yuan_to_fen
from tests.gateways.helpers import assert_gateway_error

HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
    "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
    "手续费,费率,订单金额,申请退款金额,费率备注"
)
SAMPLE = "\r\n".join([
    HEADER,
    "`2026-01-05 09:01:02,`wx0paytest0000001,`1900000109,`0,`,`4200000001202601050000000001,`QH0001,`oA,`JSAPI,"
    "`SUCCESS,`OTHERS,`CNY,`0.01,`0.00,`0,`0,`0.00,`0.00,`,`,`挂号费,`,`0.00006,`0.60%,`0.01,`0.00,`",
    "`2026-01-05 10:11:12,`wx0paytest0000001,`1900000109,`0,`,`4200000001202601050000000002,`QH0002,`oB,`JSAPI,"
    "`SUCCESS,`OTHERS,`CNY,`1234.56,`0.00,`0,`0,`0.00,`0.00,`,`,`\"中药饮片,7剂\",`,`7.40736,`0.60%,`1234.56,`0.00,`",
    "`2026-01-05 23:59:59,`wx0paytest0000001,`1900000109,`0,`,`4200000001202601050000000002,`QH0002,`oB,`JSAPI,"
    "`REFUND,`OTHERS,`CNY,`0.00,`0.00,`50300000012026010500000000001,`RF0002,`100.10,`0.00,`ORIGINAL,`SUCCESS,"
    "`中药饮片,`,`-0.60060,`0.60%,`0.00,`100.10,`",
    "`2026-01-05 23:59:59,`wx0paytest0000001,`1900000109,`0,`,`4200000001202601050000000002,`QH0002,`oB,`JSAPI,"
    "`REFUND,`OTHERS,`CNY,`0.00,`0.00,`50300000012026010500000000002,`RF0003,`5.00,`0.00,`ORIGINAL,`PROCESSING,"
    "`中药饮片,`,`0.00000,`0.60%,`0.00,`5.00,`",
    "`2026-01-05 12:00:00,`wx0paytest0000001,`1900000109,`0,`,`4200000001202601050000000003,`QH0003,`oC,`JSAPI,"
    "`REVOKED,`OTHERS,`CNY,`0.00,`0.00,`0,`0,`0.00,`0.00,`,`,`挂号费,`,`0.00000,`0.60%,`9.00,`0.00,`",
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额",
    "`4,`1234.57,`105.10,`0.00,`6.80682,`1234.57,`105.10",
    "",
])


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)


@pytest.mark.parametrize("text, fen", [
    ("0.01", 1), ("0.10", 10), ("0.1", 10), ("1", 100), ("1234.56", 123456), ("99999999.99", 9_999_999_999),
    ("0.00", 0), (" 12.30 ", 1230),
])
def test_yuan_to_fen_is_exact(text, fen):
    assert yuan_to_fen(text) == fen


@pytest.mark.parametrize("text", ["", "1.005", "-1.00", "1e3", "1,234.56", "¥1.00", "1.", ".5", "NaN"])
def test_yuan_to_fen_refuses_anything_else(text):
    with pytest.raises(ValueError):
        yuan_to_fen(text)


def test_parse_a_wechat_trade_bill():
    rows = parse_trade_bill(("\ufeff" + SAMPLE).encode("utf-8"))

    assert rows == [
        BillRow(kind="payment", out_trade_no="QH0001", amount_fen=1,
                provider_trade_no="4200000001202601050000000001", occurred_at=at("2026-01-05 09:01:02")),
        BillRow(kind="payment", out_trade_no="QH0002", amount_fen=123456,
                provider_trade_no="4200000001202601050000000002", occurred_at=at("2026-01-05 10:11:12")),
        BillRow(kind="refund", out_trade_no="QH0002", amount_fen=10010, out_refund_no="RF0002",
                provider_trade_no="4200000001202601050000000002", occurred_at=at("2026-01-05 23:59:59")),
    ]


def test_parse_a_bill_with_a_broken_amount_is_terminal():
    with pytest.raises(GatewayTerminal) as caught:
        parse_trade_bill(SAMPLE.replace("`1234.56", "`1234.5x", 1).encode())
    assert caught.value.code == "bad_bill"


def test_download_and_parse_the_sandbox_bill(
    wechatpay_gateway, wechatpay_sandbox, wechatpay_prepay_request, wechatpay_receiver
):
    for out_trade_no, amount in (("QH20260105000401", 1), ("QH20260105000402", 123456), ("QH20260105000403", 500)):
        wechatpay_gateway.prepay(wechatpay_prepay_request(out_trade_no, amount))
    first = wechatpay_sandbox.pay("QH20260105000401")
    second = wechatpay_sandbox.pay("QH20260105000402")
    wechatpay_gateway.refund(RefundRequest("QH20260105000402", "RF20260105000402", 10010, 123456, "", ""))
    wechatpay_gateway.refund(RefundRequest("QH20260105000402", "RF2026010500040202", 1, 123456, "", ""))
    wechatpay_sandbox.settle_refunds("RF20260105000402")  # the other one is still processing

    rows = wechatpay_gateway.download_bill(datetime.now(SHANGHAI).date())

    assert [(r.kind, r.out_trade_no, r.amount_fen, r.provider_trade_no, r.out_refund_no) for r in rows] == [
        ("payment", "QH20260105000401", 1, first, ""),
        ("payment", "QH20260105000402", 123456, second, ""),
        ("refund", "QH20260105000402", 10010, second, "RF20260105000402"),
    ]
    assert all(r.occurred_at is not None and abs((datetime.now(SHANGHAI) - r.occurred_at).total_seconds()) < 5
               for r in rows)
    assert wechatpay_sandbox.calls()[-2:] == ["/v3/bill/tradebill", "/v3/billdownload/file"]


def test_a_day_without_trades_has_an_empty_bill(wechatpay_gateway, wechatpay_sandbox):
    assert wechatpay_gateway.download_bill(datetime.now(SHANGHAI).date()) == []
    assert wechatpay_sandbox.calls() == ["/v3/bill/tradebill"]


def test_a_future_bill_date_is_refused(wechatpay_gateway):
    with pytest.raises(GatewayTerminal) as caught:
        wechatpay_gateway.download_bill(datetime.now(SHANGHAI).date().replace(year=2099))
    assert_gateway_error(caught, GatewayTerminal, "param_error", "PARAM_ERROR")


def test_a_corrupted_download_fails_the_sha1_check(wechatpay_gateway, wechatpay_sandbox, wechatpay_prepay_request):
    wechatpay_gateway.prepay(wechatpay_prepay_request("QH20260105000404", 100))
    wechatpay_sandbox.pay("QH20260105000404")
    wechatpay_sandbox.corrupt_next_bill()

    with pytest.raises(GatewayRetryable) as caught:
        wechatpay_gateway.download_bill(datetime.now(SHANGHAI).date())
    assert_gateway_error(caught, GatewayRetryable, "bill_hash_mismatch", None)
    assert len(wechatpay_gateway.download_bill(datetime.now(SHANGHAI).date())) == 1


def test_bill_endpoint_failures_are_retryable(wechatpay_gateway, wechatpay_sandbox, wechatpay_prepay_request):
    wechatpay_gateway.prepay(wechatpay_prepay_request("QH20260105000405", 100))
    wechatpay_sandbox.pay("QH20260105000405")
    wechatpay_sandbox.fail_next("/v3/billdownload/file", "http500")

    with pytest.raises(GatewayRetryable) as caught:
        wechatpay_gateway.download_bill(datetime.now(SHANGHAI).date())
    assert_gateway_error(caught, GatewayRetryable, "server_error", None)
