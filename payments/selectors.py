"""Reads for payments, and the named lock helpers."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet, Sum

from backend.core.authz import get_owned_or_404
from payments.models import PaymentIntent, PaymentTransaction, Refund
from payments.states import LIVE_REFUND, TransactionKind


def payment_intent_qs_for_update() -> QuerySet[PaymentIntent]:
    return PaymentIntent.objects.select_for_update()


def refund_qs_for_update() -> QuerySet[Refund]:
    return Refund.objects.select_for_update()


@dataclass(frozen=True)
class IntentAmounts:
    paid_fen: int  # captured, from the ledger
    refunded_fen: int  # succeeded refunds, from the ledger
    reserved_fen: int  # refunds requested or processing, not yet in the ledger

    @property
    def refundable_fen(self) -> int:
        return self.paid_fen - self.refunded_fen - self.reserved_fen


def intent_amounts(intent_id: object) -> IntentAmounts:
    """Paid and refunded are computed from the ledger, never stored."""
    totals = PaymentTransaction.objects.filter(intent_id=intent_id).aggregate(
        paid=Sum("amount_fen", filter=Q(kind=TransactionKind.CAPTURE)),
        refunded=Sum("amount_fen", filter=Q(kind=TransactionKind.REFUND)))
    reserved = Refund.objects.filter(intent_id=intent_id, status__in=LIVE_REFUND,
                                     transaction__isnull=True).aggregate(s=Sum("amount_fen"))["s"]
    return IntentAmounts(totals["paid"] or 0, totals["refunded"] or 0, reserved or 0)


def intent_of_account(*, account, intent_id: object) -> PaymentIntent:
    return get_owned_or_404(PaymentIntent.objects.all(), pk=intent_id, owner_field="account", owner=account)
