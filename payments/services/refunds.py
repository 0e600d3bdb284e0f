"""Refunds: partial and repeated, never more than was captured, also under concurrency.

The refund row is created under the intent's row lock (so two refunds cannot both take the
same money); the provider is called after commit; the ledger entry is written only when the
provider says the refund succeeded.
"""

from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backend.core.audit import audit_record
from backend.core.errors import Conflict, ValidationFailed
from backend.gateways.errors import GatewayRetryable, GatewayTerminal
from payments.gateways.base import RefundRequest
from payments.gateways.base import RefundStatus as ProviderRefundStatus
from payments.gateways.factory import gateway_for
from payments.models import PaymentIntent, Refund
from payments.selectors import intent_amounts, payment_intent_qs_for_update, refund_qs_for_update
from payments.services.flags import intent_flag
from payments.services.ledger import refund_succeeded_record
from payments.services.urls import notify_url
from payments.states import IntentStatus, RefundStatus

UNCLEAR_ANSWERS = frozenset({"bad_response_signature", "malformed_response", "bad_response", "timeout"})


def _out_refund_no() -> str:
    return "R" + timezone.localtime().strftime("%Y%m%d%H%M%S") + secrets.token_hex(6).upper()


def refund_create_locked(intent: PaymentIntent, *, amount_fen: int, reason: str, actor, automatic: bool) -> Refund:
    """Caller holds the intent's row lock."""
    if amount_fen <= 0:
        raise ValidationFailed(_("退款金额必须大于0"), code="refund_amount_invalid")
    available = intent_amounts(intent.pk).refundable_fen
    if amount_fen > available:
        raise Conflict(_("退款金额超过可退金额"), code="refund_exceeds_captured",
                       detail={"refundable_fen": available, "requested_fen": amount_fen})
    refund = Refund.objects.create(intent=intent, out_refund_no=_out_refund_no(), amount_fen=amount_fen,
                                   reason=str(reason)[:80], actor=actor, automatic=automatic)
    audit_record(action="payment.refund_requested", actor=actor, obj=intent,
                 detail={"refund": refund.out_refund_no, "amount_fen": amount_fen, "reason": refund.reason,
                         "automatic": automatic})
    from payments.tasks import refund_submit

    # robust: if the broker is down the refund stays "requested" and the reconcile job submits it
    transaction.on_commit(lambda: refund_submit.delay(refund_id=str(refund.pk)), robust=True)
    return refund


@transaction.atomic
def refund_create(*, intent_id: object, amount_fen: int, reason: str, actor, automatic: bool = False) -> Refund:
    intent = payment_intent_qs_for_update().get(pk=intent_id)
    return refund_create_locked(intent, amount_fen=amount_fen, reason=reason, actor=actor, automatic=automatic)


def refund_submit(*, refund_id: object) -> Refund:
    """Send the refund to the provider (outside any transaction) and record its answer."""
    refund = Refund.objects.select_related("intent").get(pk=refund_id)
    if refund.status not in (RefundStatus.REQUESTED, RefundStatus.PROCESSING):
        return refund
    intent = refund.intent
    request = RefundRequest(out_trade_no=intent.out_trade_no, out_refund_no=refund.out_refund_no,
                            amount_fen=refund.amount_fen, total_fen=intent.amount_fen, reason=refund.reason,
                            notify_url=notify_url(intent.channel))
    try:
        status = gateway_for(intent.channel).refund(request)
    except GatewayTerminal as exc:
        # only a refusal frees the money; an answer we could not trust may hide an accepted refund
        state = "processing" if exc.code in UNCLEAR_ANSWERS else "failed"
        return refund_apply_status(refund_id=refund.pk, status=ProviderRefundStatus(
            out_refund_no=refund.out_refund_no, state=state, amount_fen=refund.amount_fen), note=exc.code)
    except GatewayRetryable:
        raise  # the task retries with backoff; the same out_refund_no makes the retry idempotent
    return refund_apply_status(refund_id=refund.pk, status=status, source="submit")


@transaction.atomic
def refund_apply_status(*, refund_id: object, status: ProviderRefundStatus, source: str = "query",
                        note: str = "") -> Refund:
    intent_id = Refund.objects.values_list("intent_id", flat=True).get(pk=refund_id)
    payment_intent_qs_for_update().get(pk=intent_id)  # lock order everywhere: intent, then refund
    refund = refund_qs_for_update().get(pk=refund_id)
    if status.state == "succeeded":
        if status.amount_fen and status.amount_fen != refund.amount_fen:
            intent_flag(refund.intent, f"refund_amount_mismatch:{refund.out_refund_no}")
        else:
            refund_succeeded_record(refund, provider_refund_id=status.provider_refund_id, source=source)
    elif status.state == "processing" and refund.status == RefundStatus.REQUESTED:
        Refund.objects.filter(pk=refund.pk, status=RefundStatus.REQUESTED).update(
            status=RefundStatus.PROCESSING, provider_refund_id=status.provider_refund_id, updated_at=timezone.now())
    elif status.state in ("failed", "closed") and refund.status != RefundStatus.SUCCEEDED:
        refund_mark_failed(refund, reason=note or status.state)
    refund.refresh_from_db()
    return refund


def refund_mark_failed(refund: Refund, *, reason: str) -> None:
    """The provider refused or abandoned the refund: the money is refundable again, and an operator
    is told (a refund that fails usually needs a person: a closed card, a short merchant balance)."""
    updated = Refund.objects.filter(pk=refund.pk).exclude(status__in=[RefundStatus.SUCCEEDED, RefundStatus.FAILED]) \
        .update(status=RefundStatus.FAILED, failure_reason=reason[:200], updated_at=timezone.now())
    if updated:
        intent_flag(refund.intent, f"refund_failed:{refund.out_refund_no}:{reason}")
        audit_record(action="payment.refund_failed", obj=refund.intent,
                     detail={"refund": refund.out_refund_no, "reason": reason, "automatic": refund.automatic})


def payable_refund_remaining(*, payable_type: str, payable_id: object, reason: str) -> int:
    """Refund whatever is still refundable on a payable's captured intent (a full refund after a
    cancellation). Idempotent: 0 when nothing was paid or nothing is left. Call after commit."""
    intent = PaymentIntent.objects.filter(payable_type=payable_type, payable_id=str(payable_id),
                                          status=IntentStatus.SUCCEEDED).first()
    if intent is None:
        return 0
    amount = intent_amounts(intent.pk).refundable_fen
    if amount <= 0:
        return 0
    try:
        refund_create(intent_id=intent.pk, amount_fen=amount, reason=reason, actor=None, automatic=True)
    except Conflict:  # a concurrent run took it first
        return 0
    return amount
