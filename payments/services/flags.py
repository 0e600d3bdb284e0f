"""Marking an intent for operators."""

from __future__ import annotations

from django.utils import timezone

from backend.core.audit import audit_record
from payments.models import PaymentIntent


def intent_flag(intent: PaymentIntent, reason: str) -> None:
    """Mark an intent for operators (wrong amount, wrong merchant, failed refund…); nothing is captured."""
    PaymentIntent.objects.filter(pk=intent.pk).update(flag_reason=reason[:200], updated_at=timezone.now())
    audit_record(action="payment.flagged", obj=intent, detail={"reason": reason})
