"""Consultations implement the payments contract (payments.payables)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils import timezone

from backend.consultations.models import Consultation
from backend.consultations.states import ConsultStatus
from backend.core.errors import NotFound
from payments.payables import PayableInfo

KIND = "consultation"


class ConsultationPayable:
    def describe(self, payable_id: str) -> PayableInfo:
        try:
            c = Consultation.objects.select_related("department", "doctor__user").get(pk=payable_id)
        except (Consultation.DoesNotExist, ValidationError, ValueError) as exc:
            raise NotFound() from exc
        who = f"{c.doctor.user}" if c.doctor_id else f"{c.department.name}"
        payable = c.status == ConsultStatus.AWAITING_PAYMENT and c.pay_before > timezone.now()
        return PayableInfo(account_id=str(c.account_id), amount_fen=c.fee_fen,
                           description=f"{c.get_kind_display()} {c.department.name} {who}"[:127],
                           payable_now=payable, pay_before=c.pay_before)

    def on_paid(self, payable_id: str, intent_id: str) -> bool:
        from backend.consultations.services.lifecycle import consultation_on_paid_locked

        consultation = Consultation.objects.filter(pk=payable_id).first()
        return consultation is not None and consultation_on_paid_locked(consultation)

    def on_closed(self, payable_id: str, intent_id: str) -> None:
        return None  # the payment window expires on its own clock (consultations_expire_due)

    def on_refunded(self, payable_id: str, intent_id: str, amount_fen: int) -> None:
        return None  # refunds follow a cancellation or termination already recorded on the visit
