"""Thin Celery tasks for scheduling."""

from __future__ import annotations

from celery import shared_task

from backend.gateways.errors import GatewayRetryable
from backend.scheduling.services import bookings, notices, refunds, reminders, waitlist


@shared_task(acks_late=True)
def bookings_expire_due() -> int:
    return bookings.bookings_expire_due()


@shared_task(acks_late=True, autoretry_for=(GatewayRetryable,), retry_backoff=True, max_retries=8)
def booking_refund(booking_id: str, kind: str = "cancelled") -> int:
    return refunds.booking_refund(booking_id=booking_id, kind=kind)


@shared_task(acks_late=True, autoretry_for=(GatewayRetryable,), retry_backoff=True, max_retries=5)
def booking_notice(booking_id: str, kind: str) -> str:
    return notices.booking_notice_send(booking_id=booking_id, kind=kind)


@shared_task(acks_late=True)
def waitlist_offer(schedule_id: str) -> int:
    return waitlist.waitlist_offer(schedule_id=schedule_id)


@shared_task(acks_late=True)
def reminders_due() -> int:
    return reminders.reminders_due()
