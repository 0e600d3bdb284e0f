"""Thin Celery tasks: each calls one service."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from backend.gateways.errors import GatewayRetryable
from payments.services import intents, reconcile, refunds


@shared_task(acks_late=True, autoretry_for=(GatewayRetryable,), retry_backoff=True, retry_backoff_max=600,
             max_retries=8)
def refund_submit(refund_id: str) -> str:
    return refunds.refund_submit(refund_id=refund_id).status


@shared_task(acks_late=True, autoretry_for=(GatewayRetryable,), retry_backoff=True, max_retries=6)
def payable_intents_close(payable_type: str, payable_id: str, reason: str) -> int:
    return intents.payable_intents_close(payable_type=payable_type, payable_id=payable_id, reason=reason)


@shared_task(acks_late=True)
def intents_close_expired() -> int:
    return reconcile.intents_close_expired()


@shared_task(acks_late=True)
def intents_reconcile() -> int:
    return reconcile.intents_reconcile() + reconcile.refunds_reconcile()


@shared_task(acks_late=True, autoretry_for=(GatewayRetryable,), retry_backoff=True, max_retries=6)
def bills_reconcile(bill_date: str | None = None) -> int:
    yesterday = timezone.localdate() - timezone.timedelta(days=1)
    day = timezone.datetime.fromisoformat(bill_date).date() if bill_date else yesterday
    return sum(len(reconcile.bill_reconcile(channel=c, bill_date=day)) for c in ("wechat", "alipay"))
