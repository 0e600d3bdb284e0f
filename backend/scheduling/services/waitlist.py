"""候补: join a full session; a released place is held for the first in line, with a notice."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from backend.accounts.selectors import patient_profile_owned
from backend.core.audit import audit_record
from backend.core.errors import Conflict, DomainError, ValidationFailed
from backend.scheduling.models import Schedule, WaitlistEntry


def waitlist_join(*, account, schedule_id: object, patient_id: object) -> WaitlistEntry:
    patient = patient_profile_owned(owner=account, profile_id=patient_id)
    if not patient.is_verified:
        raise ValidationFailed(_("请先完成就诊人实名认证"), code="profile_not_verified")
    schedule = Schedule.objects.filter(pk=schedule_id).first()
    if schedule is None or schedule.remaining > 0:
        raise Conflict(_("该时段仍有号源，请直接预约"), code="waitlist_not_full")
    try:
        with transaction.atomic():
            entry = WaitlistEntry.objects.create(schedule=schedule, patient=patient, account=account)
    except IntegrityError as exc:
        raise Conflict(_("已在候补队列中"), code="waitlist_duplicate") from exc
    audit_record(action="waitlist.joined", actor=account, obj=entry)
    return entry


def waitlist_offer_on_commit(*, schedule_id: object) -> None:
    from backend.scheduling.tasks import waitlist_offer

    transaction.on_commit(lambda: waitlist_offer.delay(schedule_id=str(schedule_id)), robust=True)


def waitlist_offer(*, schedule_id: object) -> int:
    """Hold released places for the first in line (each gets the usual time to pay, and a notice)."""
    from backend.scheduling.services.bookings import booking_hold
    from backend.scheduling.services.notices import notice_on_commit

    offered = 0
    for entry in WaitlistEntry.objects.filter(schedule_id=schedule_id, status=WaitlistEntry.Status.WAITING):
        try:
            with transaction.atomic():
                booking = booking_hold(account=entry.account, schedule_id=schedule_id, patient_id=entry.patient_id)
                changed = WaitlistEntry.objects.filter(pk=entry.pk, status=WaitlistEntry.Status.WAITING).update(
                    status=WaitlistEntry.Status.OFFERED, booking=booking)
                if not changed:
                    raise Conflict()
                notice_on_commit(booking_id=booking.pk, kind="waitlist_offer")
        except DomainError as exc:
            if exc.code in ("booking_slot_full", "schedule_stopped"):
                break  # no place left: the rest keep waiting
            continue  # this patient cannot take it (limit, credit…): the next one may
        offered += 1
    return offered
