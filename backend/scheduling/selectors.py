"""Reads for scheduling, and the named lock helpers."""

from __future__ import annotations

from datetime import date

from django.db.models import QuerySet
from django.utils import timezone

from backend.scheduling.models import Booking, Schedule
from backend.scheduling.states import ScheduleStatus


def booking_qs_for_update() -> QuerySet[Booking]:
    return Booking.objects.select_for_update()


def schedules_bookable(*, department_id=None, doctor_id=None, on: date | None = None) -> QuerySet[Schedule]:
    """Released, open, not in the past; remaining counts come with the rows (no per-row query)."""
    today = timezone.localdate()
    qs = Schedule.objects.filter(status=ScheduleStatus.OPEN, release_at__lte=timezone.now(), date__gte=today)
    if department_id:
        qs = qs.filter(department_id=department_id)
    if doctor_id:
        qs = qs.filter(doctor_id=doctor_id)
    if on:
        qs = qs.filter(date=on)
    return qs.select_related("doctor__user", "department").order_by("date", "period", "starts_at")
