"""Payment intents, the ledger from which "paid" and "refunded" are computed, refunds, and the
stored inbound notifications. Money is integer fen (DESIGN rule 4)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from backend.core.models import BaseModel
from payments.states import Channel, IntentStatus, NotificationOutcome, RefundStatus, TransactionKind


class PaymentIntent(BaseModel):
    """One attempt to pay for one payable thing (a booking, a consultation, a prescription order)."""

    payable_type = models.CharField(_("支付对象类型"), max_length=32)
    payable_id = models.CharField(_("支付对象"), max_length=64)
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payment_intents",
                                verbose_name=_("付款账户"))
    channel = models.CharField(_("支付渠道"), max_length=16, choices=Channel.choices)
    amount_fen = models.PositiveBigIntegerField(_("金额（分）"))
    currency = models.CharField(_("币种"), max_length=3, default="CNY")
    description = models.CharField(_("商品描述"), max_length=127)
    out_trade_no = models.CharField(_("商户订单号"), max_length=32, unique=True)
    payer_id = models.CharField(_("付款人标识"), max_length=64, blank=True)
    provider_ref = models.CharField(_("预支付标识"), max_length=64, blank=True)
    provider_trade_no = models.CharField(_("渠道交易号"), max_length=64, blank=True)
    status = models.CharField(_("状态"), max_length=16, choices=IntentStatus.choices, default=IntentStatus.CREATED)
    expires_at = models.DateTimeField(_("支付截止时间"))
    succeeded_at = models.DateTimeField(_("支付时间"), null=True, blank=True)
    closed_at = models.DateTimeField(_("关闭时间"), null=True, blank=True)
    close_reason = models.CharField(_("关闭原因"), max_length=64, blank=True)
    flag_reason = models.CharField(_("异常标记"), max_length=200, blank=True)
    next_check_at = models.DateTimeField(_("下次查单时间"), null=True, blank=True, db_index=True)
    check_count = models.PositiveIntegerField(_("查单次数"), default=0)

    class Meta:
        verbose_name = _("支付单")
        verbose_name_plural = _("支付单")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["payable_type", "payable_id"],
                condition=Q(status__in=[IntentStatus.CREATED, IntentStatus.PENDING, IntentStatus.SUCCEEDED]),
                name="uniq_live_intent_per_payable"),
        ]
        indexes = [models.Index(fields=["status", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.out_trade_no} {self.amount_fen}分 {self.get_status_display()}"


class PaymentTransaction(models.Model):
    """The ledger: one capture per intent, one entry per succeeded refund. Never updated."""

    id = models.BigAutoField(primary_key=True)
    intent = models.ForeignKey(PaymentIntent, on_delete=models.PROTECT, related_name="transactions")
    kind = models.CharField(_("类型"), max_length=16, choices=TransactionKind.choices)
    amount_fen = models.PositiveBigIntegerField(_("金额（分）"))
    refund = models.OneToOneField("payments.Refund", on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="transaction")
    provider_ref = models.CharField(_("渠道流水号"), max_length=64, blank=True)
    source = models.CharField(_("来源"), max_length=16)  # notification | query | bill
    created_at = models.DateTimeField(_("记账时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("账务流水")
        verbose_name_plural = _("账务流水")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["intent"], condition=Q(kind=TransactionKind.CAPTURE),
                                    name="uniq_capture_per_intent"),
            models.CheckConstraint(condition=Q(kind=TransactionKind.CAPTURE) | Q(refund__isnull=False),
                                   name="refund_entry_has_refund"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount_fen}分"


class Refund(BaseModel):
    intent = models.ForeignKey(PaymentIntent, on_delete=models.PROTECT, related_name="refunds")
    out_refund_no = models.CharField(_("商户退款单号"), max_length=64, unique=True)
    amount_fen = models.PositiveBigIntegerField(_("退款金额（分）"))
    reason = models.CharField(_("退款原因"), max_length=80)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                              related_name="+", verbose_name=_("操作人"))
    automatic = models.BooleanField(_("系统自动退款"), default=False)
    status = models.CharField(_("状态"), max_length=16, choices=RefundStatus.choices, default=RefundStatus.REQUESTED)
    provider_refund_id = models.CharField(_("渠道退款单号"), max_length=64, blank=True)
    succeeded_at = models.DateTimeField(_("退款成功时间"), null=True, blank=True)
    failure_reason = models.CharField(_("失败原因"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("退款单")
        verbose_name_plural = _("退款单")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.out_refund_no} {self.amount_fen}分 {self.get_status_display()}"


class InboundNotification(models.Model):
    """Every provider callback, stored before it is acted upon (DESIGN rule 6)."""

    id = models.BigAutoField(primary_key=True)
    provider = models.CharField(_("渠道"), max_length=16, choices=Channel.choices)
    dedupe_key = models.CharField(_("通知标识"), max_length=128)
    received_at = models.DateTimeField(_("接收时间"), auto_now_add=True)
    headers = models.JSONField(_("请求头"), default=dict)
    body = models.TextField(_("原始报文"))
    kind = models.CharField(_("类型"), max_length=16, blank=True)
    out_trade_no = models.CharField(_("商户订单号"), max_length=32, blank=True, db_index=True)
    outcome = models.CharField(_("处理结果"), max_length=16, choices=NotificationOutcome.choices,
                               default=NotificationOutcome.RECEIVED)
    detail = models.CharField(_("说明"), max_length=200, blank=True)
    processed_at = models.DateTimeField(_("处理时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("支付通知")
        verbose_name_plural = _("支付通知")
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["provider", "dedupe_key"], name="uniq_inbound_notification")]

    def __str__(self) -> str:
        return f"{self.provider}:{self.dedupe_key}"


class BillMismatch(models.Model):
    """A difference between the provider's daily bill and our ledger, for operators."""

    id = models.BigAutoField(primary_key=True)
    channel = models.CharField(_("渠道"), max_length=16, choices=Channel.choices)
    bill_date = models.DateField(_("账单日期"))
    kind = models.CharField(_("类型"), max_length=16, choices=TransactionKind.choices)
    out_trade_no = models.CharField(_("商户订单号"), max_length=32)
    out_refund_no = models.CharField(_("商户退款单号"), max_length=64, blank=True)
    bill_amount_fen = models.BigIntegerField(_("账单金额（分）"), null=True, blank=True)
    ledger_amount_fen = models.BigIntegerField(_("本地金额（分）"), null=True, blank=True)
    detected_at = models.DateTimeField(_("发现时间"), auto_now_add=True)
    resolved = models.BooleanField(_("已处理"), default=False)

    class Meta:
        verbose_name = _("对账差异")
        verbose_name_plural = _("对账差异")
        constraints = [models.UniqueConstraint(fields=["channel", "bill_date", "kind", "out_trade_no", "out_refund_no"],
                                               name="uniq_bill_mismatch")]

    def __str__(self) -> str:
        return f"{self.bill_date} {self.out_trade_no}"
