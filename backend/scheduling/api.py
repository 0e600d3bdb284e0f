"""Staff surface of scheduling: a doctor's list of the day (session auth, the staff console)."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from ninja import Router, Schema
from ninja.security import django_auth

from backend.accounts.models import DoctorProfile
from backend.core.admin_access import is_operator
from backend.core.errors import NotFound, PermissionDenied
from backend.scheduling.models import Booking
from backend.scheduling.services.bookings import booking_check_in, booking_mark_no_show
from backend.scheduling.states import BookingStatus, Period, VisitType
from miniprogram_api.errors import ERRORS

router = Router(tags=["staff: scheduling"], auth=django_auth)


class DayVisitOut(Schema):
    booking_id: UUID
    period: Period
    visit_type: VisitType
    seq: int | None
    window_start: datetime | None
    patient_name: str
    patient_sex: str
    patient_age: int
    status: BookingStatus


@router.get("/staff/my-day", response={200: list[DayVisitOut], **ERRORS},
            summary="The doctor's visits of a day (default today)")
def my_day(request, on: date | None = None):
    doctor = DoctorProfile.objects.filter(user=request.user).first()
    if doctor is None:
        raise PermissionDenied(_("仅医生可查看"), code="doctor_only")
    day = on or timezone.localdate()
    visits = (Booking.objects.filter(schedule__doctor=doctor, schedule__date=day,
                                     status__in=[BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN,
                                                 BookingStatus.COMPLETED, BookingStatus.NO_SHOW])
              .select_related("schedule", "patient").order_by("schedule__period", "seq"))
    return [DayVisitOut(booking_id=b.pk, period=b.schedule.period, visit_type=b.schedule.visit_type, seq=b.seq,
                        window_start=b.window_start, patient_name=b.patient.name,
                        patient_sex=b.patient.get_sex_display(), patient_age=b.patient.age(day), status=b.status)
            for b in visits]


class BookingStatusOut(Schema):
    booking_id: UUID
    status: BookingStatus


@router.post("/staff/bookings/{booking_id}/check-in", response={200: BookingStatusOut, **ERRORS},
             summary="Check a patient in at the clinic (offline visits)")
def check_in(request, booking_id: UUID):
    booking = booking_check_in(booking_id=_staff_booking(request, booking_id), actor=request.user)
    return BookingStatusOut(booking_id=booking.pk, status=booking.status)


@router.post("/staff/bookings/{booking_id}/no-show", response={200: BookingStatusOut, **ERRORS},
             summary="Mark a patient who did not come (counts toward the credit rule)")
def no_show(request, booking_id: UUID):
    booking = booking_mark_no_show(booking_id=_staff_booking(request, booking_id), actor=request.user)
    return BookingStatusOut(booking_id=booking.pk, status=booking.status)


def _staff_booking(request, booking_id: UUID) -> UUID:
    """Doctors act on their own sessions' bookings, operators on any; anything else is 404."""
    qs = Booking.objects.filter(pk=booking_id)
    if not is_operator(request.user):
        qs = qs.filter(schedule__doctor__user=request.user)
    if not qs.exists():
        raise NotFound(_("预约不存在"), code="booking_not_found")
    return booking_id
