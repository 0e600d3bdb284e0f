"""What payments needs from a payment provider (WeChat Pay v3, Alipay), and nothing more.

Every method raises only ``GatewayRetryable`` or ``GatewayTerminal`` (backend.gateways.errors),
except ``parse_notification``, which raises ``NotificationRejected`` for anything that must not
be acted upon (bad or missing signature, stale timestamp, undecryptable body). Amounts are
integer fen everywhere; times are aware datetimes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Protocol, runtime_checkable

Channel = Literal["wechat", "alipay"]
OrderState = Literal["pending", "paid", "closed", "refunded", "unknown"]
RefundState = Literal["processing", "succeeded", "failed", "closed"]


class NotificationRejected(Exception):
    """An inbound notification that must not be acted upon; ``reason`` is a short code."""

    def __init__(self, reason: str, message: str = "") -> None:
        self.reason = reason
        super().__init__(message or reason)


@dataclass(frozen=True)
class PrepayRequest:
    out_trade_no: str
    amount_fen: int
    description: str
    payer_id: str  # WeChat: the payer's openid; Alipay: buyer_id / buyer_open_id
    expires_at: datetime
    client_ip: str
    notify_url: str


@dataclass(frozen=True)
class PrepayResult:
    provider_ref: str  # WeChat prepay_id; Alipay trade_no
    client_params: Mapping[str, str]  # exactly what the mini-program passes to the payment API


@dataclass(frozen=True)
class OrderStatus:
    out_trade_no: str
    state: OrderState
    amount_fen: int  # what the payer paid (0 when not paid)
    provider_trade_no: str = ""
    paid_at: datetime | None = None


@dataclass(frozen=True)
class RefundRequest:
    out_trade_no: str
    out_refund_no: str
    amount_fen: int
    total_fen: int
    reason: str
    notify_url: str


@dataclass(frozen=True)
class RefundStatus:
    out_refund_no: str
    state: RefundState
    amount_fen: int
    provider_refund_id: str = ""
    succeeded_at: datetime | None = None


@dataclass(frozen=True)
class PaymentNotification:
    """A verified (signature, timestamp) and decrypted provider notification."""

    kind: Literal["payment", "refund"]
    dedupe_key: str  # the provider's notification id (WeChat `id`; Alipay `notify_id`)
    out_trade_no: str
    amount_fen: int  # payment: amount paid; refund: amount refunded
    state: str  # payment: "paid" | other provider states; refund: RefundState
    provider_trade_no: str = ""
    out_refund_no: str = ""
    provider_refund_id: str = ""
    appid: str = ""
    mchid: str = ""  # WeChat mchid; Alipay seller_id
    occurred_at: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NotificationAck:
    status: int
    content_type: str
    body: bytes


@dataclass(frozen=True)
class BillRow:
    """One line of the provider's daily bill."""

    kind: Literal["payment", "refund"]
    out_trade_no: str
    amount_fen: int
    provider_trade_no: str = ""
    out_refund_no: str = ""
    occurred_at: datetime | None = None


@runtime_checkable
class PaymentGateway(Protocol):
    channel: Channel
    appid: str
    mchid: str

    def prepay(self, request: PrepayRequest) -> PrepayResult: ...

    def resume_params(self, provider_ref: str) -> Mapping[str, str]:
        """The client's pay parameters again for an order already created (no new prepay)."""
        ...

    def query_order(self, out_trade_no: str) -> OrderStatus: ...

    def close_order(self, out_trade_no: str) -> None:
        """Close an unpaid order; an already closed order is not an error. Terminal
        ``order_paid`` if it was paid meanwhile."""
        ...

    def refund(self, request: RefundRequest) -> RefundStatus: ...

    def query_refund(self, out_refund_no: str, out_trade_no: str) -> RefundStatus: ...

    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> PaymentNotification: ...

    def notification_ack(self, accepted: bool) -> NotificationAck:
        """The provider's reply format: WeChat 200/204 + JSON or 4xx/5xx + FAIL; Alipay ``success`` / ``fail``."""
        ...

    def download_bill(self, bill_date: date) -> list[BillRow]: ...
