"""Holding, confirming, expiring, cancelling and attending bookings — never oversold.

A place is taken by one conditional UPDATE (``remaining > 0``) and given back by one UPDATE
(``remaining + 1``), in the same transaction as the booking's own status change, so the count
and the bookings can never disagree, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backend.accounts.models import User
from backend.accounts.selectors import patient_profile_owned
from backend.core.audit import audit_record
from backend.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from backend.core.transitions import transition
from backend.scheduling.models import Booking, Schedule
from backend.scheduling.selectors import booking_qs_for_update
from backend.scheduling.states import ACTIVE_BOOKING, BookingStatus, ScheduleStatus, VisitType


def _check_credit(account: User) -> None:
    """3 no-shows in 90 days → no booking for 30 days after the last one (all configurable)."""
    since = timezone.now() - timedelta(days=settings.NO_SHOW_WINDOW_DAYS)
    no_shows = list(Booking.objects.filter(account=account, status=BookingStatus.NO_SHOW, no_show_at__gte=since)
                    .order_by("-no_show_at").values_list("no_show_at", flat=True))
    if len(no_shows) >= settings.NO_SHOW_LIMIT:
        until = no_shows[0] + timedelta(days=settings.NO_SHOW_BAN_DAYS)
        if until > timezone.now():
            raise PermissionDenied(_("近期爽约次数过多，暂停预约至%(until)s") % {
                "until": timezone.localtime(until).strftime("%Y-%m-%d")}, code="booking_credit_blocked",
                detail={"until": until.isoformat()})


def _take_place(schedule_id: object) -> None:
    taken = Schedule.objects.filter(pk=schedule_id, status=ScheduleStatus.OPEN, remaining__gt=0,
                                    release_at__lte=timezone.now()).update(remaining=F("remaining") - 1)
    if not taken:
        schedule = Schedule.objects.filter(pk=schedule_id).first()
        if schedule is None:
            raise NotFound(_("排班不存在"), code="schedule_not_found")
        if schedule.status != ScheduleStatus.OPEN:
            raise Conflict(_("该医生本时段已停诊"), code="schedule_stopped")
        if schedule.release_at > timezone.now():
            raise Conflict(_("尚未放号，请于%(at)s后预约") % {
                "at": timezone.localtime(schedule.release_at).strftime("%m-%d %H:%M")}, code="booking_not_released")
        raise Conflict(_("该时段号源已满"), code="booking_slot_full")


def _refuse_if_sold_out(schedule_id: object) -> None:
    """Fast path for a release storm: most requests arrive after the places are gone. Refusing on a
    value a moment stale is harmless; taking a place is still only the conditional UPDATE."""
    row = Schedule.objects.filter(pk=schedule_id).values("remaining", "status", "release_at").first()
    if row and row["remaining"] == 0 and row["status"] == ScheduleStatus.OPEN and row["release_at"] <= timezone.now():
        raise Conflict(_("该时段号源已满"), code="booking_slot_full")


def _give_back_place(schedule_id: object) -> None:
    Schedule.objects.filter(pk=schedule_id, remaining__lt=F("capacity")).update(remaining=F("remaining") + 1)


@transaction.atomic
def booking_hold(*, account: User, schedule_id: object, patient_id: object) -> Booking:
    """Hold one place for a verified 就诊人; it must be paid within BOOKING_HOLD_SECONDS."""
    _refuse_if_sold_out(schedule_id)
    patient = patient_profile_owned(owner=account, profile_id=patient_id)
    if not patient.is_verified:
        raise ValidationFailed(_("请先完成就诊人实名认证"), code="profile_not_verified")
    User.objects.select_for_update().filter(pk=account.pk).first()  # one account's holds in order
    _check_credit(account)
    active = Booking.objects.filter(account=account, status__in=ACTIVE_BOOKING).count()
    if active >= settings.BOOKING_MAX_ACTIVE_PER_ACCOUNT:
        raise Conflict(_("待就诊的预约已达上限"), code="booking_account_limit",
                       detail={"limit": settings.BOOKING_MAX_ACTIVE_PER_ACCOUNT})
    _take_place(schedule_id)
    schedule = Schedule.objects.get(pk=schedule_id)
    if schedule.date < timezone.localdate():
        raise Conflict(_("该排班已过期"), code="schedule_past")
    try:
        with transaction.atomic():
            booking = Booking.objects.create(
                schedule=schedule, patient=patient, account=account, fee_fen=schedule.fee_fen,
                hold_expires_at=timezone.now() + timedelta(seconds=settings.BOOKING_HOLD_SECONDS))
    except IntegrityError as exc:  # the outer transaction rolls the place back too
        raise Conflict(_("该就诊人已预约本时段"), code="booking_duplicate") from exc
    audit_record(action="booking.held", actor=account, obj=booking, detail={"schedule": str(schedule.pk)})
    return booking


def booking_confirm_locked(booking: Booking) -> bool:
    """Paid: held → confirmed with its sequence number and time window. False if no longer held."""
    if booking.status != BookingStatus.HELD:
        return False
    Schedule.objects.filter(pk=booking.schedule_id).update(last_seq=F("last_seq") + 1)
    schedule = Schedule.objects.get(pk=booking.schedule_id)
    start, end = schedule.window_of(schedule.last_seq)
    changed = transition(Booking, pk=booking.pk, source=[BookingStatus.HELD], target=BookingStatus.CONFIRMED,
                         seq=schedule.last_seq, window_start=start, window_end=end, confirmed_at=timezone.now())
    if changed:
        audit_record(action="booking.confirmed", obj=booking, detail={"seq": schedule.last_seq})
        from backend.scheduling.services.notices import notice_on_commit

        notice_on_commit(booking_id=booking.pk, kind="confirmed")
    return changed


def _release(booking: Booking, target: str, **fields) -> bool:
    """Held/confirmed → target, and the place goes back (and to the waitlist), in one transaction."""
    changed = Booking.objects.filter(pk=booking.pk, status__in=ACTIVE_BOOKING).update(status=target, **fields)
    if changed:
        _give_back_place(booking.schedule_id)
        from backend.scheduling.services.waitlist import waitlist_offer_on_commit

        waitlist_offer_on_commit(schedule_id=booking.schedule_id)
    return bool(changed)


@transaction.atomic
def booking_expire(*, booking_id: object) -> bool:
    booking = booking_qs_for_update().get(pk=booking_id)
    if booking.status != BookingStatus.HELD or booking.hold_expires_at > timezone.now():
        return False
    released = _release(booking, BookingStatus.EXPIRED, updated_at=timezone.now())
    if released:
        audit_record(action="booking.expired", obj=booking)
    return released


def bookings_expire_due(*, limit: int = 500) -> int:
    due = Booking.objects.filter(status=BookingStatus.HELD, hold_expires_at__lte=timezone.now())
    return sum(booking_expire(booking_id=pk) for pk in due.values_list("pk", flat=True)[:limit])


def _cancel_deadline(booking: Booking):
    return booking.schedule.visit_starts() - timedelta(hours=settings.BOOKING_CANCEL_DEADLINE_HOURS)


@transaction.atomic
def booking_cancel(*, account: User, booking_id: object, reason: str = "") -> Booking:
    """Free until BOOKING_CANCEL_DEADLINE_HOURS before the session; a paid booking is refunded in full."""
    booking = booking_qs_for_update().select_related("schedule").filter(pk=booking_id, account=account).first()
    if booking is None:
        raise NotFound(_("预约不存在"), code="booking_not_found")
    if booking.status not in (BookingStatus.HELD, BookingStatus.CONFIRMED):
        raise Conflict(_("当前预约状态不能取消"), code="booking_not_cancellable")
    if booking.status == BookingStatus.CONFIRMED and timezone.now() > _cancel_deadline(booking):
        raise Conflict(_("已超过免费取消时间，请联系医院"), code="booking_cancel_too_late")
    was_paid = booking.status == BookingStatus.CONFIRMED
    _release(booking, BookingStatus.CANCELLED, cancelled_at=timezone.now(), cancel_reason=reason[:200] or "患者取消",
             updated_at=timezone.now())
    audit_record(action="booking.cancelled", actor=account, obj=booking, detail={"reason": reason[:200]})
    _after_cancel(booking, was_paid, kind="cancelled")
    booking.refresh_from_db()
    return booking


def _after_cancel(booking: Booking, was_paid: bool, kind: str) -> None:
    from backend.scheduling.services.notices import notice_on_commit
    from backend.scheduling.tasks import booking_refund

    if was_paid:
        transaction.on_commit(lambda: booking_refund.delay(booking_id=str(booking.pk), kind=kind), robust=True)
        notice_on_commit(booking_id=booking.pk, kind=kind)


@transaction.atomic
def schedule_stop(*, schedule_id: object, actor: User, reason: str) -> int:
    """停诊: the session stops; every booking is cancelled with a full refund and a notice."""
    changed = Schedule.objects.filter(pk=schedule_id, status=ScheduleStatus.OPEN).update(
        status=ScheduleStatus.STOPPED, stop_reason=reason[:200], remaining=0, updated_at=timezone.now())
    if not changed:
        raise Conflict(_("该排班已停诊"), code="schedule_stopped")
    cancelled = 0
    for booking in booking_qs_for_update().filter(schedule_id=schedule_id, status__in=ACTIVE_BOOKING):
        was_paid = booking.status in (BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN)
        Booking.objects.filter(pk=booking.pk).update(status=BookingStatus.CANCELLED, cancelled_at=timezone.now(),
                                                     cancel_reason=f"停诊：{reason}"[:200], updated_at=timezone.now())
        _after_cancel(booking, was_paid, kind="stopped")
        cancelled += 1
    audit_record(action="schedule.stopped", actor=actor, object_type="scheduling.schedule",
                 object_id=str(schedule_id), detail={"reason": reason[:200], "cancelled": cancelled})
    return cancelled


@transaction.atomic
def booking_check_in(*, booking_id: object, actor: User) -> Booking:
    booking = booking_qs_for_update().select_related("schedule").get(pk=booking_id)
    if booking.schedule.visit_type != VisitType.OFFLINE:
        raise Conflict(_("线上复诊无需到院签到"), code="check_in_online_visit")
    if booking.schedule.date != timezone.localdate():
        raise Conflict(_("只能在就诊当日签到"), code="check_in_wrong_day")
    transition(Booking, pk=booking.pk, source=[BookingStatus.CONFIRMED], target=BookingStatus.CHECKED_IN,
               checked_in_at=timezone.now())
    audit_record(action="booking.checked_in", actor=actor, obj=booking)
    booking.refresh_from_db()
    return booking


@transaction.atomic
def booking_mark_no_show(*, booking_id: object, actor: User) -> Booking:
    booking = booking_qs_for_update().select_related("schedule").get(pk=booking_id)
    if booking.schedule.visit_starts() > timezone.now():
        raise Conflict(_("就诊时间未到，不能标记爽约"), code="no_show_too_early")
    transition(Booking, pk=booking.pk, source=[BookingStatus.CONFIRMED], target=BookingStatus.NO_SHOW,
               no_show_at=timezone.now())
    audit_record(action="booking.no_show", actor=actor, obj=booking)
    booking.refresh_from_db()
    return booking
