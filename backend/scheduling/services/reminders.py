"""The day-before and 30-minutes-before reminders (run by beat every few minutes)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from backend.scheduling.models import Booking, NoticeLog
from backend.scheduling.services.notices import notice_on_commit
from backend.scheduling.states import BookingStatus

DUE = {"day_before": timedelta(hours=24), "soon": timedelta(minutes=30)}


def reminders_due() -> int:
    """Queue each reminder once, when its time has come and the visit has not started."""
    now = timezone.now()
    queued = 0
    for kind, ahead in DUE.items():
        due = (Booking.objects.filter(status=BookingStatus.CONFIRMED, window_start__gt=now,
                                      window_start__lte=now + ahead)
               .exclude(pk__in=NoticeLog.objects.filter(kind=kind).exclude(status="retrying").values("booking_id")))
        for booking_id in due.values_list("pk", flat=True)[:500]:
            notice_on_commit(booking_id=booking_id, kind=kind)
            queued += 1
    return queued
