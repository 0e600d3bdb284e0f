"""Thin Celery tasks for consultations."""

from __future__ import annotations

from celery import shared_task

from backend.consultations.services import lifecycle, refunds, retention
from backend.gateways.errors import GatewayRetryable


@shared_task(acks_late=True, autoretry_for=(GatewayRetryable,), retry_backoff=True, max_retries=8)
def consultation_refund(consultation_id: str, reason: str = "") -> int:
    return refunds.consultation_refund(consultation_id=consultation_id, reason=reason)


@shared_task(acks_late=True)
def consultations_refund_sweep() -> int:
    return refunds.consultations_refund_sweep()


@shared_task(acks_late=True)
def consultations_expire_due() -> int:
    return lifecycle.consultations_expire_due()


@shared_task(acks_late=True)
def consultations_end_idle() -> int:
    return lifecycle.consultations_end_idle()


@shared_task(acks_late=True)
def retention_purge() -> dict:
    return retention.retention_purge()
