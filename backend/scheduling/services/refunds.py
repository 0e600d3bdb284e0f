"""Refunding a cancelled booking through payments (after the cancellation committed)."""

from __future__ import annotations

from backend.core.errors import Conflict
from backend.scheduling.payables import KIND
from payments.models import PaymentIntent
from payments.selectors import intent_amounts
from payments.services.refunds import refund_create
from payments.states import IntentStatus

REASONS = {"cancelled": "预约取消全额退款", "stopped": "医生停诊全额退款"}


def booking_refund(*, booking_id: object, kind: str = "cancelled") -> int:
    """Refund what is still refundable on the booking's paid intent; idempotent (0 when nothing is left)."""
    intent = PaymentIntent.objects.filter(payable_type=KIND, payable_id=str(booking_id),
                                          status=IntentStatus.SUCCEEDED).first()
    if intent is None:
        return 0
    amount = intent_amounts(intent.pk).refundable_fen
    if amount <= 0:
        return 0
    try:
        refund_create(intent_id=intent.pk, amount_fen=amount, reason=REASONS.get(kind, REASONS["cancelled"]),
                      actor=None)
    except Conflict:  # a concurrent run took it first
        return 0
    return amount
