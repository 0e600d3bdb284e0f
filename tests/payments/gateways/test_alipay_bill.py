"""The daily trade bill: the sandbox's zip of GBK CSVs, downloaded and parsed to exact fen."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from datetime import date, datetime

import pytest

from backend.gateways.errors import GatewayRetryable, GatewayTerminal
from payments.gateways.alipay import SHANGHAI, AlipayGateway, parse_bill_csv, parse_bill_zip
from payments.gateways.alipay.bill import zip_member_name
from payments.gateways.alipay_sandbox import BILL_PATH, AlipaySandbox
from payments.gateways.base import BillRow, PrepayRequest, RefundRequest
from tests.payments.gateways.alipay_fixtures import ALIPAY_SELLER_ID, alipay_set_clock

MakePrepay = Callable[..., PrepayRequest]
BILL_DAY = date(2030, 3, 15)
HEADER = ("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,"
          "订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,"
          "商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注")


@pytest.fixture
def business_day(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, alipay_prepay_request: MakePrepay
) -> dict[str, dict]:
    """On BILL_DAY at 10:00 Shanghai: 0.01, 1234.56 and 88.00 paid, 20.00 of the 88.00 refunded, one
    trade left unpaid; then the clock moves to the next morning. Returns the sandbox's trades."""
    alipay_set_clock(alipay_sandbox, datetime(2030, 3, 15, 10, 0, tzinfo=SHANGHAI))
    for out_trade_no, fen in (("QH-B-1", 1), ("QH-B-2", 123456), ("QH-B-3", 8800), ("QH-B-4", 500)):
        alipay_gateway.prepay(alipay_prepay_request(out_trade_no, fen))
    for out_trade_no in ("QH-B-1", "QH-B-2", "QH-B-3"):
        alipay_sandbox.pay(out_trade_no)
    alipay_gateway.refund(RefundRequest("QH-B-3", "QH-BR-1", 2000, 8800, "部分退款", ""))
    alipay_set_clock(alipay_sandbox, datetime(2030, 3, 16, 9, 30, tzinfo=SHANGHAI))
    return {no: alipay_sandbox.order(no) for no in ("QH-B-1", "QH-B-2", "QH-B-3")}


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(int(seconds), SHANGHAI)


def test_the_bill_parses_to_exact_fen(alipay_gateway: AlipayGateway, business_day: dict[str, dict]) -> None:
    rows = alipay_gateway.download_bill(BILL_DAY)
    one, big, consult = business_day["QH-B-1"], business_day["QH-B-2"], business_day["QH-B-3"]
    assert rows == [
        BillRow("payment", "QH-B-1", 1, one["trade_no"], "", at(one["paid_at"])),
        BillRow("payment", "QH-B-2", 123456, big["trade_no"], "", at(big["paid_at"])),
        BillRow("payment", "QH-B-3", 8800, consult["trade_no"], "", at(consult["paid_at"])),
        BillRow("refund", "QH-B-3", 2000, consult["trade_no"], "QH-BR-1", at(consult["refunded_at"]["QH-BR-1"])),
    ]
    assert all(row.occurred_at is not None and row.occurred_at.date() == BILL_DAY for row in rows)


def test_the_bill_zip_looks_like_alipays(alipay_sandbox: AlipaySandbox, business_day: dict[str, dict]) -> None:
    with zipfile.ZipFile(io.BytesIO(alipay_sandbox.bill_zip(BILL_DAY))) as archive:
        infos = archive.infolist()
        names = [zip_member_name(info) for info in infos]
        detail = archive.read(infos[0]).decode("gbk").split("\r\n")
    account = f"{ALIPAY_SELLER_ID}0156"
    assert names == [f"{account}_20300315_业务明细.csv", f"{account}_20300315_业务明细(汇总).csv"]
    assert all(not info.flag_bits & 0x800 for info in infos)  # GBK names, no UTF-8 flag
    assert detail[:3] == ["#支付宝业务明细查询", f"#账号：[{account}]",
                          "#起始日期：[2030年03月15日 00:00:00]   终止日期：[2030年03月16日 00:00:00]"]
    assert detail[3].startswith("#---") and detail[4] == HEADER
    trade_nos = {no: trade["trade_no"] for no, trade in business_day.items()}
    rows = [line.split(",") for line in detail[5:9]]
    assert [(r[0], r[1], r[2], r[11], r[12], r[21], r[22]) for r in rows] == [
        (trade_nos["QH-B-1"] + "\t", "QH-B-1\t", "交易", "0.01", "0.01", "", "0.00"),
        (trade_nos["QH-B-2"] + "\t", "QH-B-2\t", "交易", "1234.56", "1234.56", "", "-7.41"),
        (trade_nos["QH-B-3"] + "\t", "QH-B-3\t", "交易", "88.00", "88.00", "", "-0.53"),
        (trade_nos["QH-B-3"] + "\t", "QH-B-3\t", "退款", "88.00", "-20.00", "QH-BR-1\t", "0.12"),
    ]
    assert detail[9].startswith("#---") and "业务明细列表结束" in detail[9]
    assert detail[10:12] == ["#交易合计：3笔，商家实收共1322.57元，商家优惠共0.00元",
                             "#退款合计：1笔，商家实收退款共-20.00元，商家优惠退款共0.00元"]
    assert detail[12] == "#导出时间：[2030年03月16日 09:30:00]" and detail[13] == ""


def test_a_bill_for_today_is_not_ready_yet(alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox) -> None:
    today = datetime.fromtimestamp(alipay_sandbox.now(), SHANGHAI).date()
    with pytest.raises(GatewayRetryable) as caught:
        alipay_gateway.download_bill(today)
    assert (caught.value.code, caught.value.provider_code) == ("bill_not_ready", "isp.bill_not_exist")


def test_an_empty_day_has_an_empty_bill(alipay_gateway: AlipayGateway) -> None:
    assert alipay_gateway.download_bill(date(2020, 1, 1)) == []


def test_a_failed_download_is_retryable(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, business_day: dict[str, dict]
) -> None:
    alipay_sandbox.fail_next(BILL_PATH, "http500")
    with pytest.raises(GatewayRetryable) as caught:
        alipay_gateway.download_bill(BILL_DAY)
    assert caught.value.code == "bill_download_failed"
    assert len(alipay_gateway.download_bill(BILL_DAY)) == 4


def test_a_bill_that_is_not_a_zip_is_terminal() -> None:
    with pytest.raises(GatewayTerminal) as caught:
        parse_bill_zip(b"<html>error</html>")
    assert caught.value.code == "bad_bill"


def test_hand_written_bill_variants_parse() -> None:
    """Half-width (元) headers, quoted cells with commas, padding, an unknown row type skipped."""
    header = HEADER.replace("（元）", "(元)")
    text = "\r\n".join([
        "#支付宝业务明细查询", "#账号：[20880000000000010156]", "#-----业务明细列表-----", header,
        '2030031522001000000000000001\t,QH-X-1\t,交易,"问诊,复诊",2030-03-15 09:59:58,2030-03-15 10:00:01,,,,,'
        "abc***@163.com,1234.56,1234.56,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,,-7.41,0.00,",
        "2030031522001000000000000001\t,QH-X-1\t,退款,问诊,2030-03-15 09:59:58,2030-03-15 11:00:00,,,,,"
        "abc***@163.com,1234.56,-0.01,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,QH-XR-1\t,0.00,0.00,",
        "2030031522001000000000000002\t,QH-X-2\t,收费,技术服务费,2030-03-15 09:00:00,2030-03-15 09:00:00,,,,,"
        ",1.00,1.00,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,,0.00,0.00,",
        "#-----业务明细列表结束-----", "#交易合计：1笔",
    ])
    assert parse_bill_csv(text) == [
        BillRow("payment", "QH-X-1", 123456, "2030031522001000000000000001", "",
                datetime(2030, 3, 15, 10, 0, 1, tzinfo=SHANGHAI)),
        BillRow("refund", "QH-X-1", 1, "2030031522001000000000000001", "QH-XR-1",
                datetime(2030, 3, 15, 11, 0, tzinfo=SHANGHAI)),
    ]


def test_a_bill_row_with_a_garbled_amount_is_terminal() -> None:
    archive = io.BytesIO()
    row = "T1\t,QH-Y-1\t,交易,问诊,,2030-03-15 10:00:00,,,,,,12.345,12.35,,,,,,,,,,,,"
    with zipfile.ZipFile(archive, "w") as bill:
        bill.writestr("bill_业务明细.csv", "\r\n".join(["#x", HEADER, row]).encode("gbk"))
    with pytest.raises(GatewayTerminal) as caught:
        parse_bill_zip(archive.getvalue())
    assert caught.value.code == "bad_bill"
