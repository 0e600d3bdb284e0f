"""Thin Celery tasks for consultations."""

from __future__ import annotations

from celery import shared_task

from backend.consultations.payables import KIND
from backend.consultations.services import lifecycle, retention
from backend.gateways.errors import GatewayRetryable
from payments.services.refunds import payable_refund_remaining


@shared_task(acks_late=True, autoretry_for=(GatewayRetryable,), retry_backoff=True, max_retries=8)
def consultation_refund(consultation_id: str, reason: str = "") -> int:
    return payable_refund_remaining(payable_type=KIND, payable_id=consultation_id, reason=reason[:80] or "复诊退款")


@shared_task(acks_late=True)
def consultations_expire_due() -> int:
    return lifecycle.consultations_expire_due()


@shared_task(acks_late=True)
def consultations_end_idle() -> int:
    return lifecycle.consultations_end_idle()


@shared_task(acks_late=True)
def retention_purge() -> dict:
    return retention.retention_purge()
