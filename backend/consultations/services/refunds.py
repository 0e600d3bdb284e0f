"""Money back for a cancelled or terminated visit — never lost, never twice.

The obligation is written with the cancellation (``refund_due``, same transaction). A task sends the refund
right after commit; a sweep makes any refund the task never made (broker down, worker lost) and clears the
flag once payments holds a refund. Payments reserves requested refunds under the intent's row lock, so the
task and the sweep racing each other refund once.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from backend.consultations.models import Consultation
from backend.consultations.payables import KIND
from payments.models import Refund
from payments.services.refunds import payable_refund_remaining

SWEEP_AFTER_SECONDS = 60  # the task usually does it within a second; the sweep picks up what it missed


def consultation_refund_on_commit(consultation: Consultation, reason: str) -> None:
    from backend.consultations.tasks import consultation_refund

    transaction.on_commit(lambda: consultation_refund.delay(consultation_id=str(consultation.pk), reason=reason),
                          robust=True)


def consultation_refund(*, consultation_id: object, reason: str) -> int:
    """Refund what is still refundable of the visit's fee, then clear the obligation; idempotent."""
    amount = payable_refund_remaining(payable_type=KIND, payable_id=consultation_id, reason=reason[:80] or "复诊退款")
    if amount or Refund.objects.filter(intent__payable_type=KIND, intent__payable_id=str(consultation_id)).exists():
        Consultation.objects.filter(pk=consultation_id).update(refund_due=False)
    elif not Consultation.objects.filter(pk=consultation_id, paid_at__isnull=False).exists():
        Consultation.objects.filter(pk=consultation_id).update(refund_due=False)  # nothing was ever paid
    return amount


def consultations_refund_sweep(*, limit: int = 200) -> int:
    """Refunds owed for longer than a minute that payments never received."""
    due = Consultation.objects.filter(refund_due=True, ended_at__lte=timezone.now() - timedelta(
        seconds=SWEEP_AFTER_SECONDS)).values_list("pk", "end_reason")[:limit]
    return sum(bool(consultation_refund(consultation_id=pk, reason=reason)) for pk, reason in list(due))
