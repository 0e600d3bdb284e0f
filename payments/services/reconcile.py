"""Timers: close expired intents, reconcile open intents and refunds with backoff, the daily bill."""

from __future__ import annotations

import logging
from datetime import date, timedelta

from django.conf import settings
from django.db.models import F, Sum
from django.utils import timezone

from backend.gateways.errors import GatewayError
from payments.gateways.factory import gateway_for
from payments.models import BillMismatch, PaymentIntent, PaymentTransaction, Refund
from payments.services.intents import intent_close, intent_sync
from payments.services.refunds import refund_apply_status, refund_submit
from payments.states import OPEN_INTENT, RefundStatus, TransactionKind

logger = logging.getLogger(__name__)


def intents_close_expired(*, limit: int = 200) -> int:
    """Close intents past their deadline — after asking the provider, so a payment is never lost."""
    closed = 0
    due = PaymentIntent.objects.filter(status__in=OPEN_INTENT, expires_at__lte=timezone.now())
    for intent_id in due.values_list("pk", flat=True)[:limit]:
        try:
            intent_close(intent_id=intent_id, reason="expired")
            closed += 1
        except GatewayError as exc:
            logger.warning("closing intent %s failed: %s (retried next run)", intent_id, exc.code)
        except Exception:  # one broken payable must not stop the batch
            logger.exception("closing intent %s failed", intent_id)
    return closed


def _backoff(count: int) -> timedelta:
    return timedelta(seconds=settings.PAYMENT_RECONCILE_FIRST_CHECK_SECONDS * (2 ** min(count, 10)))


def intents_reconcile(*, limit: int = 200) -> int:
    """主动查单 for open intents whose next check is due (lost notifications), with backoff."""
    now = timezone.now()
    due = PaymentIntent.objects.filter(status__in=OPEN_INTENT, next_check_at__lte=now,
                                       check_count__lt=settings.PAYMENT_RECONCILE_MAX_CHECKS)
    checked = 0
    for intent_id, count in due.values_list("pk", "check_count")[:limit]:
        PaymentIntent.objects.filter(pk=intent_id, status__in=OPEN_INTENT).update(
            check_count=F("check_count") + 1, next_check_at=now + _backoff(count + 1))
        try:
            intent_sync(intent_id=intent_id)
            checked += 1
        except GatewayError as exc:
            logger.warning("reconciling intent %s failed: %s", intent_id, exc.code)
        except Exception:  # one broken payable must not stop the batch
            logger.exception("reconciling intent %s failed", intent_id)
    return checked


def refunds_reconcile(*, older_than_seconds: int = 60, limit: int = 200) -> int:
    """Refunds not final after a while: submit the ones that may never have reached the provider
    (the same out_refund_no makes that idempotent), query the ones it is processing."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    due = Refund.objects.filter(status__in=[RefundStatus.REQUESTED, RefundStatus.PROCESSING], updated_at__lte=cutoff)
    done = 0
    for refund in due.select_related("intent")[:limit]:
        try:
            if refund.status == RefundStatus.REQUESTED:
                refund_submit(refund_id=refund.pk)
            else:
                status = gateway_for(refund.intent.channel).query_refund(refund.out_refund_no,
                                                                         refund.intent.out_trade_no)
                refund_apply_status(refund_id=refund.pk, status=status, source="query")
        except GatewayError as exc:
            logger.warning("refund %s reconcile failed: %s", refund.out_refund_no, exc.code)
            continue
        done += 1
    return done


def _ledger_for_day(channel: str, bill_date: date) -> tuple[dict[str, int], dict[str, int]]:
    start = timezone.make_aware(timezone.datetime.combine(bill_date, timezone.datetime.min.time()))
    day = PaymentTransaction.objects.filter(intent__channel=channel, created_at__gte=start,
                                            created_at__lt=start + timedelta(days=1))
    captures = dict(day.filter(kind=TransactionKind.CAPTURE).values_list("intent__out_trade_no")
                    .annotate(s=Sum("amount_fen")))
    refunds = dict(day.filter(kind=TransactionKind.REFUND).values_list("refund__out_refund_no")
                   .annotate(s=Sum("amount_fen")))
    return captures, refunds


def bill_reconcile(*, channel: str, bill_date: date) -> list[BillMismatch]:
    """Compare the provider's daily bill with our ledger; record every difference for operators."""
    rows = gateway_for(channel).download_bill(bill_date)
    captures, refunds = _ledger_for_day(channel, bill_date)
    # a re-run replaces the open differences of that day (fixed ones disappear, resolved ones stay)
    BillMismatch.objects.filter(channel=channel, bill_date=bill_date, resolved=False).delete()
    bill_captures = {r.out_trade_no: r.amount_fen for r in rows if r.kind == "payment"}
    bill_refunds = {r.out_refund_no: (r.out_trade_no, r.amount_fen) for r in rows if r.kind == "refund"}
    found: list[BillMismatch] = []
    for no in set(bill_captures) | set(captures):
        if bill_captures.get(no) != captures.get(no):
            found.append(_mismatch(channel, bill_date, "capture", no, "", bill_captures.get(no), captures.get(no)))
    for no in set(bill_refunds) | set(refunds):
        trade_no, amount = bill_refunds.get(no, ("", None))
        if amount != refunds.get(no):
            trade_no = trade_no or Refund.objects.filter(out_refund_no=no).values_list(
                "intent__out_trade_no", flat=True).first() or ""
            found.append(_mismatch(channel, bill_date, "refund", trade_no, no, amount, refunds.get(no)))
    return found


def _mismatch(channel, bill_date, kind, out_trade_no, out_refund_no, bill_fen, ledger_fen) -> BillMismatch:
    row, _ = BillMismatch.objects.update_or_create(
        channel=channel, bill_date=bill_date, kind=kind, out_trade_no=out_trade_no, out_refund_no=out_refund_no,
        defaults={"bill_amount_fen": bill_fen, "ledger_amount_fen": ledger_fen})
    return row
