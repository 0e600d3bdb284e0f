"""The sandbox's own books: orders and refunds, with WeChat Pay's rules and error codes.

Nothing here speaks HTTP; ``PayError`` carries the status and v3 error code the API answers
with, ``SandboxConflict`` refuses a user action (paying a closed order, say).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from payments.gateways.wechatpay_sandbox.crypto import SHANGHAI, parse_rfc3339, rfc3339

PAID_STATES = ("SUCCESS", "REFUND")
REFUND_OUTCOMES = ("SUCCESS", "ABNORMAL", "CLOSED")
TRADE_STATE_DESC = {"NOTPAY": "订单未支付", "SUCCESS": "支付成功", "CLOSED": "已关闭", "REFUND": "转入退款"}
_OUT_NO = re.compile(r"[0-9A-Za-z_\-|*]{6,32}")
_OUT_REFUND_NO = re.compile(r"[0-9A-Za-z_\-|*@]{1,64}")


class PayError(Exception):
    """Answer the current API call with this HTTP status and v3 ``{"code", "message"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class SandboxConflict(Exception):
    """A user action the sandbox refuses (e.g. paying a closed or expired order)."""


@dataclass
class Order:
    out_trade_no: str
    openid: str
    total: int
    description: str
    notify_url: str
    params: Mapping[str, Any]  # the prepay request, to recognise a repeat
    prepay_id: str
    created_at: float
    time_expire: float | None
    state: str = "NOTPAY"
    transaction_id: str = ""
    payer_total: int = 0
    success_time: float | None = None

    def expired(self, now: float) -> bool:
        return self.state == "NOTPAY" and self.time_expire is not None and now >= self.time_expire


@dataclass
class Refund:
    out_refund_no: str
    out_trade_no: str
    refund_id: str
    amount: int
    reason: str
    notify_url: str
    params: Mapping[str, Any]
    created_at: float
    settle_at: float | None
    status: str = "PROCESSING"
    success_time: float | None = None


class Ledger:
    """Orders and refunds of one merchant (``mchid``) and mini-program (``appid``)."""

    def __init__(self, appid: str, mchid: str) -> None:
        self.appid, self.mchid = appid, mchid
        self.orders: dict[str, Order] = {}
        self.refunds: dict[str, Refund] = {}

    # --- orders ------------------------------------------------------------------------------
    def prepay(self, payload: Mapping[str, Any], now: float) -> Order:
        fields = _prepay_fields(payload)
        if fields["appid"] != self.appid or fields["mchid"] != self.mchid:
            raise PayError(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
        existing = self.orders.get(fields["out_trade_no"])
        if existing is not None:
            return _repeat_prepay(existing, payload)
        order = Order(
            out_trade_no=fields["out_trade_no"], openid=fields["openid"], total=fields["total"],
            description=fields["description"], notify_url=fields["notify_url"], params=dict(payload),
            prepay_id=f"wx{_stamp(now)}{secrets.token_hex(11)}", created_at=now, time_expire=fields["time_expire"],
        )
        self.orders[order.out_trade_no] = order
        return order

    def order(self, out_trade_no: str) -> Order:
        order = self.orders.get(out_trade_no)
        if order is None:
            raise PayError(404, "ORDER_NOT_EXIST", "订单不存在")
        return order

    def close(self, out_trade_no: str) -> Order:
        order = self.order(out_trade_no)
        if order.state in PAID_STATES:
            raise PayError(400, "ORDERPAID", "该订单已支付")
        order.state = "CLOSED"
        return order

    def pay(self, out_trade_no: str, payer_total: int | None, now: float) -> Order:
        order = self.orders.get(out_trade_no)
        if order is None:
            raise SandboxConflict(f"no order {out_trade_no!r}")
        if order.state != "NOTPAY" or order.expired(now):
            state = "expired" if order.expired(now) else order.state
            raise SandboxConflict(f"order {out_trade_no} cannot be paid: {state}")
        paid = order.total if payer_total is None else int(payer_total)
        if not 0 < paid <= order.total:
            raise ValueError(f"payer_total must be in 1..{order.total}")
        order.state, order.payer_total, order.success_time = "SUCCESS", paid, now
        order.transaction_id = "4200" + _digits(24)
        return order

    # --- refunds -------------------------------------------------------------------------------
    def refund(self, payload: Mapping[str, Any], now: float, settle_delay: float | None) -> Refund:
        fields = _refund_fields(payload)
        order = self._order_for_refund(payload)
        existing = self.refunds.get(fields["out_refund_no"])
        if existing is not None:
            if existing.params != payload:
                raise PayError(400, "INVALID_REQUEST", "商户退款单号重复，且请求参数与原请求不一致")
            return existing
        if fields["total"] != order.total:
            raise PayError(400, "PARAM_ERROR", "订单金额与原订单金额不一致")
        if self._refunded_or_pending(order.out_trade_no) + fields["refund"] > order.payer_total:
            raise PayError(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
        refund = Refund(
            out_refund_no=fields["out_refund_no"], out_trade_no=order.out_trade_no,
            refund_id="5030" + _digits(25), amount=fields["refund"], reason=fields["reason"],
            notify_url=fields["notify_url"], params=dict(payload), created_at=now,
            settle_at=None if settle_delay is None else now + settle_delay,
        )
        self.refunds[refund.out_refund_no] = refund
        order.state = "REFUND"
        return refund

    def refund_of(self, out_refund_no: str) -> Refund:
        refund = self.refunds.get(out_refund_no)
        if refund is None:
            raise PayError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
        return refund

    def settle(self, now: float, out_refund_no: str | None = None, status: str = "SUCCESS") -> list[Refund]:
        """Finish PROCESSING refunds (one, or all) as SUCCESS, ABNORMAL or CLOSED."""
        if status not in REFUND_OUTCOMES:
            raise ValueError(f"status must be one of {REFUND_OUTCOMES}")
        chosen = [self.refund_of(out_refund_no)] if out_refund_no else list(self.refunds.values())
        settled = [refund for refund in chosen if refund.status == "PROCESSING"]
        for refund in settled:
            refund.status, refund.settle_at = status, None
            refund.success_time = now if status == "SUCCESS" else None
        return settled

    def due_refunds(self, now: float) -> list[str]:
        return [no for no, refund in self.refunds.items() if refund.settle_at is not None and refund.settle_at <= now]

    def truth(self) -> dict[str, dict[str, int]]:
        return {
            no: {
                "paid": order.payer_total if order.state in PAID_STATES else 0,
                "refunded": sum(
                    r.amount for r in self.refunds.values() if r.out_trade_no == no and r.status == "SUCCESS"
                ),
            }
            for no, order in self.orders.items()
        }

    def _order_for_refund(self, payload: Mapping[str, Any]) -> Order:
        out_trade_no, transaction_id = payload.get("out_trade_no"), payload.get("transaction_id")
        found = self.orders.get(out_trade_no) if out_trade_no else None
        if found is None and transaction_id:
            found = next((o for o in self.orders.values() if o.transaction_id == transaction_id), None)
        if found is None:
            raise PayError(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        if found.state not in PAID_STATES:
            raise PayError(400, "INVALID_REQUEST", "订单未支付，不能发起退款")
        return found

    def _refunded_or_pending(self, out_trade_no: str) -> int:
        return sum(r.amount for r in self.refunds.values() if r.out_trade_no == out_trade_no and r.status != "CLOSED")

    # --- JSON as the API shows it ----------------------------------------------------------------
    def order_json(self, order: Order) -> dict[str, Any]:
        data: dict[str, Any] = {
            "appid": self.appid, "mchid": self.mchid, "out_trade_no": order.out_trade_no,
            "trade_type": "JSAPI", "trade_state": order.state, "trade_state_desc": TRADE_STATE_DESC[order.state],
            "attach": "", "payer": {"openid": order.openid},
            "amount": {"total": order.total, "currency": "CNY", "payer_currency": "CNY"},
        }
        if order.state in PAID_STATES:
            data.update(transaction_id=order.transaction_id, bank_type="OTHERS",
                        success_time=rfc3339(order.success_time or 0))
            data["amount"]["payer_total"] = order.payer_total
        return data

    def refund_json(self, refund: Refund) -> dict[str, Any]:
        order = self.orders[refund.out_trade_no]
        data: dict[str, Any] = {
            "refund_id": refund.refund_id, "out_refund_no": refund.out_refund_no,
            "transaction_id": order.transaction_id, "out_trade_no": order.out_trade_no, "channel": "ORIGINAL",
            "user_received_account": "支付用户零钱", "create_time": rfc3339(refund.created_at),
            "status": refund.status, "funds_account": "AVAILABLE",
            "amount": {
                "total": order.total, "refund": refund.amount, "payer_total": order.payer_total,
                "payer_refund": refund.amount, "settlement_refund": refund.amount,
                "settlement_total": order.payer_total, "discount_refund": 0, "currency": "CNY",
            },
        }
        if refund.success_time is not None:
            data["success_time"] = rfc3339(refund.success_time)
        return data


def _repeat_prepay(existing: Order, payload: Mapping[str, Any]) -> Order:
    if existing.state in PAID_STATES:
        raise PayError(400, "ORDERPAID", "该订单已支付")
    if existing.state == "CLOSED":
        raise PayError(400, "ORDER_CLOSED", "该订单已关闭")
    if existing.params != payload:
        raise PayError(400, "INVALID_REQUEST", "201 商户订单号重复")
    return existing


def _prepay_fields(payload: Mapping[str, Any]) -> dict[str, Any]:
    amount, payer = payload.get("amount"), payload.get("payer")
    fields = {
        "appid": payload.get("appid"), "mchid": payload.get("mchid"), "description": payload.get("description"),
        "out_trade_no": payload.get("out_trade_no"), "notify_url": payload.get("notify_url"),
        "total": amount.get("total") if isinstance(amount, dict) else None,
        "openid": payer.get("openid") if isinstance(payer, dict) else None,
    }
    _require(fields)
    if not _OUT_NO.fullmatch(str(fields["out_trade_no"])):
        raise PayError(400, "PARAM_ERROR", "out_trade_no 格式错误")
    _check_positive_fen(fields["total"], "total")
    if amount.get("currency", "CNY") != "CNY":
        raise PayError(400, "PARAM_ERROR", "currency 仅支持 CNY")
    fields["time_expire"] = _time_expire(payload.get("time_expire"))
    return fields


def _refund_fields(payload: Mapping[str, Any]) -> dict[str, Any]:
    amount = payload.get("amount")
    fields = {
        "out_refund_no": payload.get("out_refund_no"),
        "refund": amount.get("refund") if isinstance(amount, dict) else None,
        "total": amount.get("total") if isinstance(amount, dict) else None,
    }
    _require(fields)
    if not payload.get("out_trade_no") and not payload.get("transaction_id"):
        raise PayError(400, "PARAM_ERROR", "out_trade_no 与 transaction_id 必须二选一")
    if not _OUT_REFUND_NO.fullmatch(str(fields["out_refund_no"])):
        raise PayError(400, "PARAM_ERROR", "out_refund_no 格式错误")
    _check_positive_fen(fields["refund"], "refund")
    _check_positive_fen(fields["total"], "total")
    if amount.get("currency", "CNY") != "CNY":
        raise PayError(400, "PARAM_ERROR", "currency 仅支持 CNY")
    return {**fields, "reason": str(payload.get("reason") or ""), "notify_url": str(payload.get("notify_url") or "")}


def _require(fields: Mapping[str, Any]) -> None:
    for name, value in fields.items():
        if value is None or value == "":
            message = f"输入源“/body/{name}”映射到字段“{name}”必填性规则校验失败，此字段为必填项"
            raise PayError(400, "PARAM_ERROR", message)


def _check_positive_fen(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise PayError(400, "PARAM_ERROR", f"{name} 必须为正整数（单位：分）")


def _time_expire(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return parse_rfc3339(str(value))
    except ValueError:
        raise PayError(400, "PARAM_ERROR", "time_expire 格式错误，应为 rfc3339 格式") from None


def _stamp(unix: float) -> str:
    return datetime.fromtimestamp(unix, SHANGHAI).strftime("%Y%m%d%H%M%S")


def _digits(count: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(count))
