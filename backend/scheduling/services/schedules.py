"""Building a week of schedules from the templates; release times (放号)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backend.core.audit import audit_record
from backend.scheduling.models import Schedule, ScheduleTemplate


def release_time_for(visit_date: date) -> datetime:
    """放号: BOOKING_RELEASE_DAYS_AHEAD days before the visit, at BOOKING_RELEASE_TIME (Asia/Shanghai)."""
    hour, minute = (int(part) for part in settings.BOOKING_RELEASE_TIME.split(":"))
    day = visit_date - timedelta(days=settings.BOOKING_RELEASE_DAYS_AHEAD)
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


@transaction.atomic
def schedule_week_build(*, week_start: date, actor) -> list[Schedule]:
    """One schedule per active template for the week starting ``week_start`` (a Monday);
    sessions that already exist are left as they are."""
    monday = week_start - timedelta(days=week_start.weekday())
    created = []
    for template in ScheduleTemplate.objects.filter(is_active=True, doctor__is_active=True).select_related("doctor"):
        day = monday + timedelta(days=template.weekday)
        schedule, made = Schedule.objects.get_or_create(
            doctor=template.doctor, date=day, period=template.period, visit_type=template.visit_type,
            defaults={"department_id": template.doctor.department_id, "capacity": template.capacity,
                      "remaining": template.capacity, "fee_fen": template.fee_fen, "starts_at": template.starts_at,
                      "window_minutes": template.window_minutes, "per_window": template.per_window,
                      "release_at": release_time_for(day)})
        if made:
            created.append(schedule)
    audit_record(action="schedule.week_built", actor=actor, detail={"week": monday.isoformat(),
                                                                    "created": len(created)})
    return created
