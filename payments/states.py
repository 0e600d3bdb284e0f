"""Statuses and allowed transitions of payment intents and refunds."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Channel(models.TextChoices):
    WECHAT = "wechat", _("微信支付")
    ALIPAY = "alipay", _("支付宝")


class IntentStatus(models.TextChoices):
    CREATED = "created", _("已创建")
    PENDING = "pending", _("待支付")
    SUCCEEDED = "succeeded", _("已支付")
    CLOSED = "closed", _("已关闭")


OPEN_INTENT = (IntentStatus.CREATED, IntentStatus.PENDING)
INTENT_TRANSITIONS: dict[str, frozenset[str]] = {
    IntentStatus.CREATED: frozenset({IntentStatus.PENDING, IntentStatus.SUCCEEDED, IntentStatus.CLOSED}),
    IntentStatus.PENDING: frozenset({IntentStatus.SUCCEEDED, IntentStatus.CLOSED}),
    # money that arrives after the intent was closed is captured in the ledger and refunded
    # automatically; the intent itself stays closed (another intent may have paid the payable)
    IntentStatus.CLOSED: frozenset(),
    IntentStatus.SUCCEEDED: frozenset(),
}


class RefundStatus(models.TextChoices):
    REQUESTED = "requested", _("已申请")
    PROCESSING = "processing", _("退款中")
    SUCCEEDED = "succeeded", _("已退款")
    FAILED = "failed", _("退款失败")


LIVE_REFUND = (RefundStatus.REQUESTED, RefundStatus.PROCESSING, RefundStatus.SUCCEEDED)


class TransactionKind(models.TextChoices):
    CAPTURE = "capture", _("收款")
    REFUND = "refund", _("退款")


class NotificationOutcome(models.TextChoices):
    RECEIVED = "received", _("已接收")
    PROCESSED = "processed", _("已处理")
    REJECTED = "rejected", _("验签失败")
    FLAGGED = "flagged", _("需人工核对")
    DEFERRED = "deferred", _("暂缓处理")
