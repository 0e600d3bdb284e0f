"""A demo charge: the simplest real payable, so the demo can take a payment end to end before
booking, consultations and prescriptions (the real payables) exist."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from backend.core.models import BaseModel


class DemoCharge(BaseModel):
    class Status(models.TextChoices):
        UNPAID = "unpaid", _("待支付")
        PAID = "paid", _("已支付")
        CANCELLED = "cancelled", _("已取消")

    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    amount_fen = models.PositiveBigIntegerField(_("金额（分）"))
    description = models.CharField(_("说明"), max_length=127)
    status = models.CharField(_("状态"), max_length=16, choices=Status.choices, default=Status.UNPAID)
    refunded_fen = models.PositiveBigIntegerField(_("已退款（分）"), default=0)
    pay_before = models.DateTimeField(_("支付截止"), null=True, blank=True)  # like a booking hold

    class Meta:
        verbose_name = _("演示收费")
        verbose_name_plural = _("演示收费")

    def __str__(self) -> str:
        return f"{self.description} {self.amount_fen}分"
