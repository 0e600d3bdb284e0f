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


def test_week_is_built_from_templates_with_release_times(db, dr_li, settings):
    from datetime import date, time

    from backend.accounts.models import DoctorProfile
    from backend.scheduling.models import ScheduleTemplate
    from backend.scheduling.services.schedules import schedule_week_build

    settings.BOOKING_RELEASE_DAYS_AHEAD, settings.BOOKING_RELEASE_TIME = 7, "08:00"
    doctor = DoctorProfile.objects.get(user=dr_li)
    for weekday in (0, 2):
        ScheduleTemplate.objects.create(doctor=doctor, weekday=weekday, period="morning", visit_type="offline",
                                        capacity=20, fee_fen=5000, starts_at=time(8, 0))
    created = schedule_week_build(week_start=date(2026, 12, 2), actor=dr_li)  # any day of that week
    assert sorted(s.date.isoformat() for s in created) == ["2026-11-30", "2026-12-02"]
    monday = next(s for s in created if s.date == date(2026, 11, 30))
    assert timezone.localtime(monday.release_at).strftime("%Y-%m-%d %H:%M") == "2026-11-23 08:00"
    assert monday.remaining == monday.capacity == 20
    assert schedule_week_build(week_start=date(2026, 11, 30), actor=dr_li) == []  # idempotent


def test_doctor_sees_the_days_list(db, dr_li, client):
    schedule = make_schedule(dr_li, days_ahead=0)
    user, patient = patient_account("dayview")
    booking = booking_hold(account=user, schedule_id=schedule.pk, patient_id=patient.pk)
    Booking.objects.filter(pk=booking.pk).update(status=BookingStatus.CONFIRMED, seq=1)
    assert client.get("/api/staff/my-day").status_code == 401
    client.force_login(dr_li)
    rows = client.get("/api/staff/my-day").json()
    assert [(r["seq"], r["patient_name"], r["status"]) for r in rows] == [(1, "王测试", "confirmed")]
    client.force_login(user)
    assert client.get("/api/staff/my-day").status_code == 403


def test_reminders_are_queued_once_when_due(db, dr_li):
    from backend.scheduling.models import NoticeLog
    from backend.scheduling.services.reminders import reminders_due

    schedule = make_schedule(dr_li, days_ahead=1)
    user, patient = patient_account("remind")
    booking = booking_hold(account=user, schedule_id=schedule.pk, patient_id=patient.pk)
    soon = timezone.now() + timezone.timedelta(minutes=20)
    Booking.objects.filter(pk=booking.pk).update(status=BookingStatus.CONFIRMED, window_start=soon)
    with django_capture_on_commit_callbacks_ctx() as callbacks:
        assert reminders_due() == 2  # the day-before and the 30-minute reminders are both due now
    assert len(callbacks) == 2
    NoticeLog.objects.create(booking=booking, kind="day_before", status="not_subscribed")
    NoticeLog.objects.create(booking=booking, kind="soon", status="sent")
    assert reminders_due() == 0


def django_capture_on_commit_callbacks_ctx():
    from django.test import TestCase

    return TestCase.captureOnCommitCallbacks(execute=False)


def test_staff_check_in_and_no_show_endpoints(db, dr_li, pharmacist_zhao):
    from django.test import Client

    schedule = make_schedule(dr_li, days_ahead=0)
    user, patient = patient_account("staffcheck")
    booking = booking_hold(account=user, schedule_id=schedule.pk, patient_id=patient.pk)
    Booking.objects.filter(pk=booking.pk).update(status=BookingStatus.CONFIRMED, seq=1)
    stranger = Client(enforce_csrf_checks=False)
    stranger.force_login(pharmacist_zhao)
    assert stranger.post(f"/api/staff/bookings/{booking.pk}/check-in").status_code == 404
    doctor = Client()
    doctor.force_login(dr_li)
    resp = doctor.post(f"/api/staff/bookings/{booking.pk}/check-in")
    assert resp.status_code == 200 and resp.json()["status"] == "checked_in"


def test_online_visits_are_not_checked_in(db, dr_li):
    schedule = make_schedule(dr_li, days_ahead=0, visit_type="online_text")
    user, patient = patient_account("online")
    booking = booking_hold(account=user, schedule_id=schedule.pk, patient_id=patient.pk)
    Booking.objects.filter(pk=booking.pk).update(status=BookingStatus.CONFIRMED)
    with pytest.raises(DomainError) as exc:
        booking_check_in(booking_id=booking.pk, actor=dr_li)
    assert exc.value.code == "check_in_online_visit"


def test_a_notice_that_meets_a_busy_wechat_is_retried_and_not_lost(db, dr_li, sandboxes, settings):
    from backend.accounts.models import WeChatIdentity
    from backend.gateways.errors import GatewayRetryable
    from backend.scheduling.models import NoticeLog, SubscriptionGrant
    from backend.scheduling.services.notices import booking_notice_send, subscriptions_grant

    schedule = make_schedule(dr_li)
    user, patient = patient_account("notice")
    WeChatIdentity.objects.create(user=user, appid=settings.WECHAT_APPID, openid="oNOTICE")
    booking = booking_hold(account=user, schedule_id=schedule.pk, patient_id=patient.pk)
    template = settings.BOOKING_NOTICE_TEMPLATES["confirmed"]
    subscriptions_grant(account=user, template_ids=[template])
    sandboxes.wechat.grant_subscription("oNOTICE", template)
    sandboxes.wechat.fail_next("/cgi-bin/message/subscribe/send", "http500")
    with pytest.raises(GatewayRetryable):
        booking_notice_send(booking_id=booking.pk, kind="confirmed")
    assert SubscriptionGrant.objects.get(account=user).remaining == 1  # not spent by the failure
    assert booking_notice_send(booking_id=booking.pk, kind="confirmed") == "sent"
    assert booking_notice_send(booking_id=booking.pk, kind="confirmed") == "already_sent"
    assert list(NoticeLog.objects.filter(booking=booking).values_list("status", flat=True).order_by("id")) == [
        "retrying", "sent"]
    assert len([m for m in sandboxes.wechat.messages() if m.get("touser") == "oNOTICE"]) >= 1


def test_without_a_subscription_nothing_is_sent_and_that_is_recorded(db, dr_li, sandboxes, settings):
    from backend.accounts.models import WeChatIdentity
    from backend.scheduling.models import NoticeLog
    from backend.scheduling.services.notices import booking_notice_send

    schedule = make_schedule(dr_li)
    user, patient = patient_account("nosub")
    WeChatIdentity.objects.create(user=user, appid=settings.WECHAT_APPID, openid="oNOSUB")
    booking = booking_hold(account=user, schedule_id=schedule.pk, patient_id=patient.pk)
    assert booking_notice_send(booking_id=booking.pk, kind="confirmed") == "not_subscribed"
    assert not [m for m in sandboxes.wechat.messages() if m.get("touser") == "oNOSUB"]
    assert NoticeLog.objects.get(booking=booking).status == "not_subscribed"
