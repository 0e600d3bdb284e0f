"""网上预约: departments, doctors, schedules with remaining places, holds, cancellation, waitlist."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from django.db.models import Min
from ninja import Router, Schema, Status

from backend.accounts.models import Department, DoctorProfile
from backend.scheduling.models import Booking
from backend.scheduling.selectors import schedules_bookable
from backend.scheduling.services.bookings import booking_cancel, booking_hold
from backend.scheduling.services.notices import subscriptions_grant
from backend.scheduling.services.waitlist import waitlist_join
from backend.scheduling.states import BookingStatus, Period, VisitType
from miniprogram_api.auth import access_token_auth
from miniprogram_api.errors import ERRORS
from miniprogram_api.schemas import text

router = Router(tags=["booking"], auth=access_token_auth)


class DepartmentOut(Schema):
    id: UUID
    code: str
    name: str


class DoctorOut(Schema):
    id: UUID
    name: str
    title: str
    department: str
    specialties: str
    next_available_date: date | None


class ScheduleOut(Schema):
    id: UUID
    doctor_id: UUID
    doctor_name: str
    department: str
    date: date
    period: Period
    visit_type: VisitType
    fee_fen: int
    capacity: int
    remaining: int


class HoldIn(Schema):
    schedule_id: UUID
    patient_id: UUID


class CancelIn(Schema):
    reason: text(200) = ""


class WaitlistIn(Schema):
    patient_id: UUID


class SubscriptionsIn(Schema):
    template_ids: list[text(64, 1)]


class BookingOut(Schema):
    id: UUID
    schedule_id: UUID
    patient_id: UUID
    status: BookingStatus
    fee_fen: int
    hold_expires_at: datetime
    seq: int | None
    window_start: datetime | None
    window_end: datetime | None


def _booking_out(b: Booking) -> BookingOut:
    return BookingOut(id=b.pk, schedule_id=b.schedule_id, patient_id=b.patient_id, status=b.status, fee_fen=b.fee_fen,
                      hold_expires_at=b.hold_expires_at, seq=b.seq, window_start=b.window_start,
                      window_end=b.window_end)


@router.get("/departments", response={200: list[DepartmentOut], **ERRORS}, auth=None, summary="Departments")
def departments(request):
    return list(Department.objects.filter(is_active=True))


@router.get("/doctors", response={200: list[DoctorOut], **ERRORS}, auth=None, summary="Doctors, with next date")
def doctors(request, department_id: UUID | None = None):
    qs = DoctorProfile.objects.filter(is_active=True).select_related("user", "department")
    if department_id:
        qs = qs.filter(department_id=department_id)
    bookable = schedules_bookable().filter(remaining__gt=0)
    next_dates = dict(bookable.values_list("doctor_id").annotate(d=Min("date")).order_by())
    return [DoctorOut(id=d.pk, name=str(d.user), title=d.get_title_display(), department=d.department.name,
                      specialties=d.specialties, next_available_date=next_dates.get(d.pk)) for d in qs]


@router.get("/schedules", response={200: list[ScheduleOut], **ERRORS}, auth=None,
            summary="Released schedules with remaining places")
def schedules(request, department_id: UUID | None = None, doctor_id: UUID | None = None, on: date | None = None):
    rows = schedules_bookable(department_id=department_id, doctor_id=doctor_id, on=on)[:200]
    return [ScheduleOut(id=s.pk, doctor_id=s.doctor_id, doctor_name=str(s.doctor.user), department=s.department.name,
                        date=s.date, period=s.period, visit_type=s.visit_type, fee_fen=s.fee_fen,
                        capacity=s.capacity, remaining=s.remaining) for s in rows]


@router.post("/bookings", response={201: BookingOut, **ERRORS}, summary="Hold a place (pay within the window)")
def hold(request, payload: HoldIn):
    booking = booking_hold(account=request.auth, schedule_id=payload.schedule_id, patient_id=payload.patient_id)
    return Status(201, _booking_out(booking))


@router.get("/bookings", response={200: list[BookingOut], **ERRORS}, summary="My bookings")
def my_bookings(request):
    return [_booking_out(b) for b in Booking.objects.filter(account=request.auth).order_by("-created_at")[:100]]


@router.get("/bookings/{booking_id}", response={200: BookingOut, **ERRORS}, summary="One booking")
def one_booking(request, booking_id: UUID):
    from backend.core.authz import get_owned_or_404

    return _booking_out(get_owned_or_404(Booking.objects.all(), pk=booking_id, owner_field="account",
                                         owner=request.auth))


@router.post("/bookings/{booking_id}/cancel", response={200: BookingOut, **ERRORS}, summary="Cancel a booking")
def cancel(request, booking_id: UUID, payload: CancelIn):
    return _booking_out(booking_cancel(account=request.auth, booking_id=booking_id, reason=payload.reason))


@router.post("/schedules/{schedule_id}/waitlist", response={201: None, **ERRORS}, summary="Join the waitlist (候补)")
def join_waitlist(request, schedule_id: UUID, payload: WaitlistIn):
    waitlist_join(account=request.auth, schedule_id=schedule_id, patient_id=payload.patient_id)
    return Status(201, None)


@router.post("/subscriptions", response={204: None, **ERRORS},
             summary="Report the subscribe-message templates the patient accepted")
def subscriptions(request, payload: SubscriptionsIn):
    subscriptions_grant(account=request.auth, template_ids=payload.template_ids)
    return Status(204, None)


