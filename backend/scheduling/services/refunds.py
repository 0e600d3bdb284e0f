"""Refunding a cancelled booking through payments (after the cancellation committed)."""

from __future__ import annotations

from backend.scheduling.payables import KIND
from payments.services.refunds import payable_refund_remaining

REASONS = {"cancelled": "预约取消全额退款", "stopped": "医生停诊全额退款"}


def booking_refund(*, booking_id: object, kind: str = "cancelled") -> int:
    """Refund what is still refundable on the booking's paid intent; idempotent (0 when nothing is left)."""
    return payable_refund_remaining(payable_type=KIND, payable_id=booking_id,
                                    reason=REASONS.get(kind, REASONS["cancelled"]))
