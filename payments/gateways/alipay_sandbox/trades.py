"""The sandbox's trade book: what Alipay knows about one seller's trades and refunds.

Rules (as Alipay applies them to ``alipay.trade.create`` trades):
* ``out_trade_no`` is unique per seller; creating it again with the same amount, subject and buyer
  returns the same ``trade_no`` (a retry), otherwise ``ACQ.CONTEXT_INCONSISTENT``; a paid trade
  answers ``ACQ.TRADE_HAS_SUCCESS``, a closed one ``ACQ.TRADE_HAS_CLOSE``;
* ``WAIT_BUYER_PAY`` → ``TRADE_SUCCESS`` (paid) or ``TRADE_CLOSED`` (closed by the seller, or at
  ``time_expire``, default 15 days); closing anything but an unpaid trade is ``ACQ.TRADE_STATUS_ERROR``;
* refunds are synchronous; their sum never exceeds what was paid (``ACQ.REFUND_AMT_NOT_EQUAL_TOTAL``);
  the same ``out_request_no`` again with the same amount is the same refund (``fund_change`` "N");
  a fully refunded trade becomes ``TRADE_CLOSED``.

Times are sandbox-clock unix seconds; amounts integer fen.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DEFAULT_TIMEOUT_SECONDS = 15 * 86400
MAX_AMOUNT_FEN = 100_000_000_00
MESSAGES: Mapping[str, str] = {
    "10000": "Success",
    "20000": "Service Currently Unavailable",
    "20001": "Insufficient Token Permissions",
    "40001": "Missing Required Arguments",
    "40002": "Invalid Arguments",
    "40004": "Business Failed",
    "40006": "Insufficient Permissions",
}
_YUAN = re.compile(r"([0-9]{1,11})(?:\.([0-9]{1,2}))?")
_OUT_NO = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_USER_ID = re.compile(r"2088[0-9]{12}")


class ProviderError(Exception):
    """Answer the current call with this Alipay error (``signed=False``: Alipay cannot sign it)."""

    def __init__(self, code: str, sub_code: str, sub_msg: str, *, signed: bool = True) -> None:
        super().__init__(f"{code} {sub_code}: {sub_msg}")
        self.code, self.sub_code, self.sub_msg, self.signed = code, sub_code, sub_msg, signed

    def payload(self) -> dict[str, str]:
        return {"code": self.code, "msg": MESSAGES.get(self.code, "Error"), "sub_code": self.sub_code,
                "sub_msg": self.sub_msg}


def business_error(sub_code: str, sub_msg: str) -> ProviderError:
    return ProviderError("40004", sub_code, sub_msg)


# --- values ----------------------------------------------------------------------------------------
def yuan(fen: int) -> str:
    whole, cents = divmod(abs(fen), 100)
    return f"{'-' if fen < 0 else ''}{whole}.{cents:02d}"


def parse_yuan(text: Any, name: str) -> int:
    match = _YUAN.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise business_error("ACQ.INVALID_PARAMETER", f"参数无效: {name}")
    return int(match.group(1)) * 100 + int((match.group(2) or "").ljust(2, "0"))


def fmt_time(at: float) -> str:
    return datetime.fromtimestamp(at, SHANGHAI).strftime(TIME_FORMAT)


def fmt_time_ms(at: float) -> str:
    """Alipay's ``gmt_refund`` has milliseconds: ``2015-04-28 15:45:57.320``."""
    moment = datetime.fromtimestamp(at, SHANGHAI)
    return f"{moment.strftime(TIME_FORMAT)}.{moment.microsecond // 1000:03d}"


def parse_time(text: str) -> float:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=SHANGHAI).timestamp()


def masked(user: str) -> str:
    return f"{user[:3]}***{user[-4:]}" if len(user) > 7 else "***"


# --- state -----------------------------------------------------------------------------------------
@dataclass
class Refund:
    out_request_no: str
    amount_fen: int
    reason: str
    at: float
    refunded_after: int  # the trade's cumulative refunds once this one was made


@dataclass
class Trade:
    out_trade_no: str
    trade_no: str
    total_fen: int
    subject: str
    buyer_field: str  # "buyer_id" or "buyer_open_id"
    buyer: str
    notify_url: str
    created_at: float
    expires_at: float
    status: str = "WAIT_BUYER_PAY"
    paid_fen: int = 0
    paid_at: float | None = None
    closed_at: float | None = None
    refunds: dict[str, Refund] = field(default_factory=dict)

    @property
    def refunded_fen(self) -> int:
        return sum(refund.amount_fen for refund in self.refunds.values())

    @property
    def amount_fen(self) -> int:
        """What Alipay reports as total_amount: the amount settled once paid."""
        return self.paid_fen if self.paid_at is not None else self.total_fen

    def snapshot(self) -> dict[str, Any]:
        return {
            "out_trade_no": self.out_trade_no, "trade_no": self.trade_no, "status": self.status,
            "total_fen": self.total_fen, "paid_fen": self.paid_fen, "refunded_fen": self.refunded_fen,
            "subject": self.subject, self.buyer_field: self.buyer, "notify_url": self.notify_url,
            "created_at": self.created_at, "expires_at": self.expires_at, "paid_at": self.paid_at,
            "closed_at": self.closed_at, "refunds": {no: r.amount_fen for no, r in self.refunds.items()},
            "refunded_at": {no: r.at for no, r in self.refunds.items()},
        }


class TradeBook:
    """The trades of one seller, by ``out_trade_no`` (callers hold the sandbox lock)."""

    def __init__(self) -> None:
        self.trades: dict[str, Trade] = {}

    def create(self, biz: Mapping[str, Any], notify_url: str, now: float) -> Trade:
        wanted = _new_trade(biz, notify_url, now)
        existing = self.trades.get(wanted.out_trade_no)
        if existing is None:
            self.trades[wanted.out_trade_no] = wanted
            return wanted
        if existing.status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
            raise business_error("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
        if existing.status == "TRADE_CLOSED":
            raise business_error("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
        if (existing.total_fen, existing.subject, existing.buyer) != (wanted.total_fen, wanted.subject, wanted.buyer):
            raise business_error("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
        return existing

    def find(self, biz: Mapping[str, Any]) -> Trade:
        out_trade_no, trade_no = biz.get("out_trade_no"), biz.get("trade_no")
        if not out_trade_no and not trade_no:
            raise business_error("ACQ.INVALID_PARAMETER", "参数无效: out_trade_no 与 trade_no 不能同时为空")
        for trade in self.trades.values():
            if trade.out_trade_no == out_trade_no or (trade_no and trade.trade_no == trade_no):
                return trade
        raise business_error("ACQ.TRADE_NOT_EXIST", "交易不存在")

    def close(self, biz: Mapping[str, Any], now: float) -> Trade:
        trade = self.find(biz)
        if trade.status != "WAIT_BUYER_PAY":
            raise business_error("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        trade.status, trade.closed_at = "TRADE_CLOSED", now
        return trade

    def pay(self, out_trade_no: str, amount_fen: int | None, now: float) -> Trade:
        trade = self.trades.get(out_trade_no)
        if trade is None:
            raise ValueError(f"no trade {out_trade_no}")
        if trade.status != "WAIT_BUYER_PAY":
            raise ValueError(f"trade {out_trade_no} is {trade.status}: the buyer cannot pay it")
        paid = trade.total_fen if amount_fen is None else int(amount_fen)
        if paid <= 0:
            raise ValueError("amount_fen must be positive")
        trade.status, trade.paid_fen, trade.paid_at = "TRADE_SUCCESS", paid, now
        return trade

    def refund(self, biz: Mapping[str, Any], now: float) -> tuple[Trade, Refund, bool]:
        """(trade, refund, whether money moved now)."""
        trade = self.find(biz)
        amount = parse_yuan(biz.get("refund_amount"), "refund_amount")
        request_no = str(biz.get("out_request_no") or trade.out_trade_no)
        existing = trade.refunds.get(request_no)
        if existing is not None:
            if existing.amount_fen != amount:
                raise business_error("ACQ.INVALID_PARAMETER", "参数无效: 同一退款请求号的退款金额不一致")
            return trade, existing, False
        if trade.paid_at is None:
            raise business_error("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        if amount <= 0 or trade.refunded_fen + amount > trade.paid_fen:
            raise business_error("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
        refund = Refund(request_no, amount, str(biz.get("refund_reason") or ""), now, trade.refunded_fen + amount)
        trade.refunds[request_no] = refund
        if trade.refunded_fen == trade.paid_fen:
            trade.status, trade.closed_at = "TRADE_CLOSED", now
        return trade, refund, True

    def refund_of(self, biz: Mapping[str, Any]) -> tuple[Trade, Refund | None]:
        trade = self.find(biz)
        return trade, trade.refunds.get(str(biz.get("out_request_no") or trade.out_trade_no))

    def expire(self, now: float) -> list[Trade]:
        """Close unpaid trades whose time_expire has passed; returns them."""
        expired = [t for t in self.trades.values() if t.status == "WAIT_BUYER_PAY" and t.expires_at <= now]
        for trade in expired:
            trade.status, trade.closed_at = "TRADE_CLOSED", trade.expires_at
        return expired

    def truth(self) -> dict[str, dict[str, int]]:
        return {no: {"paid": t.paid_fen, "refunded": t.refunded_fen} for no, t in self.trades.items()}


def _new_trade(biz: Mapping[str, Any], notify_url: str, now: float) -> Trade:
    out_trade_no, subject = biz.get("out_trade_no"), biz.get("subject")
    if not isinstance(out_trade_no, str) or not _OUT_NO.fullmatch(out_trade_no):
        raise business_error("ACQ.INVALID_PARAMETER", "参数无效: out_trade_no")
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 256:
        raise business_error("ACQ.INVALID_PARAMETER", "参数无效: subject")
    total = parse_yuan(biz.get("total_amount"), "total_amount")
    if not 1 <= total <= MAX_AMOUNT_FEN:
        raise business_error("ACQ.INVALID_PARAMETER", "参数无效: total_amount")
    buyer_field, buyer = _buyer(biz)
    return Trade(out_trade_no, _trade_no(now), total, subject, buyer_field, buyer, notify_url, now,
                 _expiry(biz, now))


def _buyer(biz: Mapping[str, Any]) -> tuple[str, str]:
    if isinstance(biz.get("buyer_id"), str) and _USER_ID.fullmatch(biz["buyer_id"]):
        return "buyer_id", biz["buyer_id"]
    if isinstance(biz.get("buyer_open_id"), str) and biz["buyer_open_id"] and "buyer_id" not in biz:
        return "buyer_open_id", biz["buyer_open_id"]
    raise business_error("ACQ.INVALID_PARAMETER", "参数无效: buyer_id / buyer_open_id")


def _expiry(biz: Mapping[str, Any], now: float) -> float:
    text = biz.get("time_expire")
    if text is None:
        return now + DEFAULT_TIMEOUT_SECONDS
    try:
        expires_at = parse_time(text)
    except (TypeError, ValueError):
        raise business_error("ACQ.INVALID_PARAMETER", "参数无效: time_expire") from None
    if expires_at <= now:
        raise business_error("ACQ.INVALID_PARAMETER", "参数无效: time_expire 早于当前时间")
    return expires_at


def _trade_no(now: float) -> str:
    """28 digits, like 2024010122001412345678901234."""
    return datetime.fromtimestamp(now, SHANGHAI).strftime("%Y%m%d") + "22001" + f"{secrets.randbelow(10**15):015d}"
