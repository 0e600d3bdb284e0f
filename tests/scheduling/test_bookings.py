"""Booking rules and the never-oversold guarantee, on the real PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from django.utils import timezone

from backend.core.errors import DomainError
from backend.scheduling.models import Booking, Schedule
from backend.scheduling.services.bookings import (
    booking_check_in,
    booking_hold,
    booking_mark_no_show,
    bookings_expire_due,
)
from backend.scheduling.states import BookingStatus
from tests.scheduling.helpers import make_schedule, patient_account, verified_patient


@pytest.mark.django_db(transaction=True)
def test_200_racers_for_10_places_never_oversell(dr_li):
    schedule = make_schedule(dr_li, capacity=10)
    racers = [patient_account(f"racer{i}") for i in range(200)]

    def race(pair) -> str:
        user, patient = pair
        try:
            booking_hold(account=user, schedule_id=schedule.pk, patient_id=patient.pk)
            return "held"
        except DomainError as exc:
            return exc.code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(race, racers))
    assert outcomes.count("held") == 10
    assert outcomes.count("booking_slot_full") == 190
    schedule.refresh_from_db()
    assert schedule.remaining == 0
    assert Booking.objects.filter(schedule=schedule, status=BookingStatus.HELD).count() == 10


def test_hold_rules(db, dr_li):
    schedule = make_schedule(dr_li, capacity=3)
    user, patient = patient_account("rules")
    booking_hold(account=user, schedule_id=schedule.pk, patient_id=patient.pk)
    with pytest.raises(DomainError) as dup:
        booking_hold(account=user, schedule_id=schedule.pk, patient_id=patient.pk)
    assert dup.value.code == "booking_duplicate"
    schedule.refresh_from_db()
    assert schedule.remaining == 2  # the failed duplicate gave its place back
    unverified = verified_patient(user, "李未实名")
    unverified.verification_status = "unverified"
    unverified.save()
    with pytest.raises(DomainError) as not_verified:
        booking_hold(account=user, schedule_id=schedule.pk, patient_id=unverified.pk)
    assert not_verified.value.code == "profile_not_verified"
    later = make_schedule(dr_li, days_ahead=8, released=False)
    with pytest.raises(DomainError) as early:
        booking_hold(account=user, schedule_id=later.pk, patient_id=patient.pk)
    assert early.value.code == "booking_not_released"


def test_another_accounts_patient_is_404(db, dr_li):
    schedule = make_schedule(dr_li)
    user, _ = patient_account("mine")
    _, theirs = patient_account("theirs")
    with pytest.raises(DomainError) as exc:
        booking_hold(account=user, schedule_id=schedule.pk, patient_id=theirs.pk)
    assert exc.value.status == 404


def test_account_cap(db, dr_li, settings):
    settings.BOOKING_MAX_ACTIVE_PER_ACCOUNT = 2
    user, patient = patient_account("cap")
    for days in (1, 2):
        booking_hold(account=user, schedule_id=make_schedule(dr_li, days_ahead=days).pk, patient_id=patient.pk)
    with pytest.raises(DomainError) as exc:
        booking_hold(account=user, schedule_id=make_schedule(dr_li, days_ahead=3).pk, patient_id=patient.pk)
    assert exc.value.code == "booking_account_limit"


def test_expiry_releases_the_place(db, dr_li):
    schedule = make_schedule(dr_li, capacity=1)
    user, patient = patient_account("expire")
    booking = booking_hold(account=user, schedule_id=schedule.pk, patient_id=patient.pk)
    assert bookings_expire_due() == 0  # not yet
    Booking.objects.filter(pk=booking.pk).update(hold_expires_at=timezone.now() - timezone.timedelta(seconds=1))
    assert bookings_expire_due() == 1
    booking.refresh_from_db()
    schedule.refresh_from_db()
    assert booking.status == BookingStatus.EXPIRED and schedule.remaining == 1


def test_no_show_credit_rule(db, dr_li, settings):
    settings.NO_SHOW_LIMIT = 2
    user, patient = patient_account("noshow")
    for days in (1, 2):
        schedule = make_schedule(dr_li, days_ahead=days)
        booking = booking_hold(account=user, schedule_id=schedule.pk, patient_id=patient.pk)
        Booking.objects.filter(pk=booking.pk).update(status=BookingStatus.CONFIRMED)
        Schedule.objects.filter(pk=schedule.pk).update(date=timezone.localdate() - timezone.timedelta(days=days))
        booking_mark_no_show(booking_id=booking.pk, actor=dr_li)
    with pytest.raises(DomainError) as exc:
        booking_hold(account=user, schedule_id=make_schedule(dr_li, days_ahead=5).pk, patient_id=patient.pk)
    assert exc.value.code == "booking_credit_blocked"


def test_check_in_on_the_day(db, dr_li):
    schedule = make_schedule(dr_li, days_ahead=0)
    user, patient = patient_account("checkin")
    booking = booking_hold(account=user, schedule_id=schedule.pk, patient_id=patient.pk)
    Booking.objects.filter(pk=booking.pk).update(status=BookingStatus.CONFIRMED)
    assert booking_check_in(booking_id=booking.pk, actor=dr_li).status == BookingStatus.CHECKED_IN
