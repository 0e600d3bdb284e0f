"""Writing the ledger: captures and succeeded refunds. Callers hold the intent's row lock."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backend.core.audit import audit_record
from backend.core.transitions import transition
from payments.models import PaymentIntent, PaymentTransaction, Refund
from payments.payables import payable_for
from payments.selectors import intent_amounts
from payments.services.flags import intent_flag
from payments.states import INTENT_TRANSITIONS, IntentStatus, RefundStatus, TransactionKind

LATE_PAYMENT_REASON = _("支付超时或订单已失效，系统自动退款")


def _sources_for(target: str) -> list[str]:
    return [s for s, targets in INTENT_TRANSITIONS.items() if target in targets]


def capture_record(intent: PaymentIntent, *, amount_fen: int, provider_trade_no: str, source: str) -> bool:
    """Record the capture once; deliver the payable, or refund automatically if it is gone.

    Returns False when the capture was already recorded (a duplicate or a replay).
    """
    try:
        with transaction.atomic():
            PaymentTransaction.objects.create(intent=intent, kind=TransactionKind.CAPTURE, amount_fen=amount_fen,
                                              provider_ref=provider_trade_no, source=source)
    except IntegrityError:
        return False
    was_open = intent.status in (IntentStatus.CREATED, IntentStatus.PENDING)
    if was_open:
        transition(PaymentIntent, pk=intent.pk, source=_sources_for(IntentStatus.SUCCEEDED),
                   target=IntentStatus.SUCCEEDED, succeeded_at=timezone.now(), provider_trade_no=provider_trade_no,
                   next_check_at=None)
        intent.refresh_from_db()
    audit_record(action="payment.captured", obj=intent,
                 detail={"amount_fen": amount_fen, "source": source, "late": not was_open})
    delivered = was_open and payable_for(intent.payable_type).on_paid(intent.payable_id, str(intent.pk))
    if not delivered:
        from payments.services.refunds import refund_create_locked

        refund_create_locked(intent, amount_fen=amount_fen, reason=str(LATE_PAYMENT_REASON), actor=None, automatic=True)
    return True


def refund_succeeded_record(refund: Refund, *, provider_refund_id: str, source: str) -> bool:
    """The refund is final: one ledger entry, the payable told. False if already recorded."""
    if refund.status == RefundStatus.SUCCEEDED and hasattr(refund, "transaction"):
        return False
    amounts = intent_amounts(refund.intent_id)
    if amounts.refunded_fen + refund.amount_fen > amounts.paid_fen:  # never more out than in
        intent_flag(refund.intent, f"refund_exceeds_capture:{refund.out_refund_no}")
        return False
    try:
        with transaction.atomic():
            PaymentTransaction.objects.create(intent_id=refund.intent_id, kind=TransactionKind.REFUND,
                                              amount_fen=refund.amount_fen, refund=refund,
                                              provider_ref=provider_refund_id, source=source)
    except IntegrityError:
        return False
    Refund.objects.filter(pk=refund.pk).update(status=RefundStatus.SUCCEEDED, succeeded_at=timezone.now(),
                                               provider_refund_id=provider_refund_id, updated_at=timezone.now())
    intent = refund.intent
    audit_record(action="payment.refunded", obj=intent, detail={"refund": refund.out_refund_no,
                                                                "amount_fen": refund.amount_fen})
    if not refund.automatic:
        payable_for(intent.payable_type).on_refunded(intent.payable_id, str(intent.pk), refund.amount_fen)
    return True
