"""The daily trade bill (交易账单) as WeChat Pay v3 serves it: CSV, every value prefixed with a
backtick, amounts in yuan with two decimals (fees with five), then two summary lines."""

from __future__ import annotations

import csv
import io
from datetime import date

from payments.gateways.wechatpay_sandbox.crypto import shanghai
from payments.gateways.wechatpay_sandbox.ledger import Ledger, Order, Refund

HEADER = [
    "交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号", "用户标识", "交易类型",
    "交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额", "微信退款单号", "商户退款单号", "退款金额",
    "充值券退款金额", "退款类型", "退款状态", "商品名称", "商户数据包", "手续费", "费率", "订单金额", "申请退款金额",
    "费率备注",
]
SUMMARY = [
    "总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额", "订单总金额", "申请退款总金额",
]
BILL_TYPES = ("ALL", "SUCCESS", "REFUND")
FEE_RATE = "0.60%"
FEE_UNITS_PER_FEN = 6  # 0.6 % of 1 fen, in units of 0.00001 yuan


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def fee(units: int) -> str:
    sign = "-" if units < 0 else ""
    return f"{sign}{abs(units) // 100_000}.{abs(units) % 100_000:05d}"


def trade_bill(ledger: Ledger, bill_date: date, bill_type: str = "ALL") -> bytes | None:
    """The bill of ``bill_date`` (Asia/Shanghai), or None when nothing happened that day."""
    rows: list[tuple[float, list[str], dict[str, int]]] = []
    if bill_type in ("ALL", "SUCCESS"):
        rows += [_payment_row(ledger, order) for order in ledger.orders.values() if _on(order.success_time, bill_date)]
    if bill_type in ("ALL", "REFUND"):
        rows += [
            _refund_row(ledger, refund)
            for refund in ledger.refunds.values()
            if refund.status == "SUCCESS" and _on(refund.success_time, bill_date)
        ]
    if not rows:
        return None
    rows.sort(key=lambda row: row[0])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(_ticked(fields) for _, fields, _ in rows)
    writer.writerow(SUMMARY)
    writer.writerow(_ticked(_summary([sums for _, _, sums in rows])))
    return out.getvalue().encode("utf-8")


def _on(unix: float | None, bill_date: date) -> bool:
    return unix is not None and shanghai(unix).date() == bill_date


def _ticked(fields: list[str]) -> list[str]:
    return ["`" + value for value in fields]


def _common(ledger: Ledger, order: Order, unix: float) -> list[str]:
    when = shanghai(unix).strftime("%Y-%m-%d %H:%M:%S")
    return [when, ledger.appid, ledger.mchid, "0", "", order.transaction_id, order.out_trade_no, order.openid, "JSAPI"]


def _payment_row(ledger: Ledger, order: Order) -> tuple[float, list[str], dict[str, int]]:
    unix = order.success_time or 0.0
    settled, coupon = order.payer_total, order.total - order.payer_total
    fee_units = settled * FEE_UNITS_PER_FEN
    fields = [
        *_common(ledger, order, unix), "SUCCESS", "OTHERS", "CNY", yuan(settled), yuan(coupon), "0", "0",
        "0.00", "0.00", "", "", order.description, "", fee(fee_units), FEE_RATE, yuan(order.total), "0.00", "",
    ]
    return unix, fields, {"settled": settled, "refund": 0, "fee": fee_units, "total": order.total, "applied": 0}


def _refund_row(ledger: Ledger, refund: Refund) -> tuple[float, list[str], dict[str, int]]:
    order = ledger.orders[refund.out_trade_no]
    unix = refund.success_time or 0.0
    fee_units = -refund.amount * FEE_UNITS_PER_FEN
    fields = [
        *_common(ledger, order, unix), "REFUND", "OTHERS", "CNY", "0.00", "0.00", refund.refund_id,
        refund.out_refund_no, yuan(refund.amount),
        "0.00", "ORIGINAL", "SUCCESS", order.description, "", fee(fee_units), FEE_RATE, "0.00",
        yuan(refund.amount), "",
    ]
    return unix, fields, {"settled": 0, "refund": refund.amount, "fee": fee_units, "total": 0, "applied": refund.amount}


def _summary(sums: list[dict[str, int]]) -> list[str]:
    def total(key: str) -> int:
        return sum(row[key] for row in sums)

    return [
        str(len(sums)), yuan(total("settled")), yuan(total("refund")), "0.00", fee(total("fee")),
        yuan(total("total")), yuan(total("applied")),
    ]
