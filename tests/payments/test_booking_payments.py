"""Booking paid through payments, end to end over HTTP: confirmation with sequence and window,
cancellation refunds, 停诊 with notices, late payment for an expired hold, waitlist promotion."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from backend.accounts.models import PatientProfile, VerificationStatus
from backend.scheduling.models import Booking, NoticeLog, Schedule
from backend.scheduling.services.bookings import bookings_expire_due, schedule_stop
from backend.scheduling.states import BookingStatus
from payments.models import PaymentIntent, Refund
from payments.selectors import intent_amounts
from payments.states import RefundStatus
from tests.conftest import ID_WANG, profile_payload
from tests.scheduling.helpers import make_schedule, verified_patient


def _verified_profile(who) -> str:
    created = who.post("/api/patients", profile_payload(id_number=ID_WANG)).json()
    PatientProfile.objects.filter(pk=created["id"]).update(verification_status=VerificationStatus.VERIFIED)
    return created["id"]


def _book_and_pay(pay, who, schedule, patient_id, channel="wechat", deliver=True):
    held = who.post("/api/bookings", {"schedule_id": str(schedule.pk), "patient_id": patient_id})
    assert held.status_code == 201, held.content
    started = who.post("/api/payments/checkout", {"payable_type": "booking", "payable_id": held.json()["id"],
                                                  "channel": channel, "alipay_buyer_id": "2088102177000001"})
    assert started.status_code == 200, started.content
    no = started.json()["intent"]["out_trade_no"]
    pay.box(channel).pay(no)
    if deliver:
        pay.box(channel).deliver_all_now()
    return held.json()["id"], no


def _subscribe(who, sandboxes, *kinds):
    templates = [settings.BOOKING_NOTICE_TEMPLATES[k] for k in kinds]
    assert who.post("/api/subscriptions", {"template_ids": templates}).status_code == 204
    for template in templates:
        sandboxes.wechat.grant_subscription(who.openid, template)


def test_paid_booking_is_confirmed_with_sequence_and_window(pay, patient_wang, dr_li, sandboxes):
    schedule = make_schedule(dr_li, capacity=10)
    _subscribe(patient_wang, sandboxes, "confirmed")
    booking_id, _ = _book_and_pay(pay, patient_wang, schedule, _verified_profile(patient_wang))
    booking = Booking.objects.get(pk=booking_id)
    assert booking.status == BookingStatus.CONFIRMED and booking.seq == 1
    assert timezone.localtime(booking.window_start).strftime("%H:%M") == "08:00"
    assert timezone.localtime(booking.window_end).strftime("%H:%M") == "08:30"
    sent = [m for m in sandboxes.wechat.messages() if m.get("touser") == patient_wang.openid]
    assert len(sent) == 1 and "预约成功" in str(sent[0]["data"])
    assert NoticeLog.objects.get(booking=booking).status == "sent"
    seen = patient_wang.get(f"/api/bookings/{booking_id}").json()
    assert seen["status"] == "confirmed" and seen["seq"] == 1


def test_sixth_visit_is_in_the_second_window(db, dr_li):
    schedule = make_schedule(dr_li, capacity=10)
    assert [timezone.localtime(schedule.window_of(n)[0]).strftime("%H:%M") for n in (1, 5, 6, 10, 11)] == [
        "08:00", "08:00", "08:30", "08:30", "09:00"]


def test_cancel_refunds_in_full_through_the_sandbox(pay, patient_wang, dr_li):
    schedule = make_schedule(dr_li, capacity=2)
    booking_id, no = _book_and_pay(pay, patient_wang, schedule, _verified_profile(patient_wang), channel="alipay")
    resp = patient_wang.post(f"/api/bookings/{booking_id}/cancel", {"reason": "临时有事"})
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled"
    schedule.refresh_from_db()
    assert schedule.remaining == 2
    intent = PaymentIntent.objects.get(out_trade_no=no)
    assert (intent_amounts(intent.pk).paid_fen, intent_amounts(intent.pk).refunded_fen) == (5000, 5000)
    assert pay.alipay.truth()[no] == {"paid": 5000, "refunded": 5000}


def test_cancel_after_the_deadline_is_refused(pay, patient_wang, dr_li):
    schedule = make_schedule(dr_li, days_ahead=0)  # today 08:00: long past the 2-hour deadline
    soon = (timezone.localtime() + timezone.timedelta(hours=1)).time()
    Schedule.objects.filter(pk=schedule.pk).update(starts_at=soon)
    booking_id, _ = _book_and_pay(pay, patient_wang, schedule, _verified_profile(patient_wang))
    resp = patient_wang.post(f"/api/bookings/{booking_id}/cancel", {"reason": "不去了"})
    assert resp.status_code == 409 and resp.json()["code"] == "booking_cancel_too_late"


def test_stopping_a_session_cancels_refunds_and_notifies_everyone(pay, login, dr_li, sandboxes):
    schedule = make_schedule(dr_li, capacity=5)
    paid = []
    for label in ("a", "b"):
        who = login(f"oSTOP_{label}")
        _subscribe(who, sandboxes, "confirmed", "stopped")
        profile = who.post("/api/patients", profile_payload(id_number=ID_WANG)).json()["id"]
        PatientProfile.objects.filter(pk=profile).update(verification_status=VerificationStatus.VERIFIED)
        paid.append(_book_and_pay(pay, who, schedule, profile))
    from backend.accounts.models import User

    holder = User.objects.create(username="wx_holder")
    held = verified_patient(holder)
    from backend.scheduling.services.bookings import booking_hold

    booking_hold(account=holder, schedule_id=schedule.pk, patient_id=held.pk)
    assert schedule_stop(schedule_id=schedule.pk, actor=dr_li, reason="医生临时出诊任务") == 3
    pay.wechat.settle_refunds()
    pay.wechat.deliver_all_now()
    assert set(Booking.objects.filter(schedule=schedule).values_list("status", flat=True)) == {"cancelled"}
    for _, no in paid:
        assert pay.wechat.truth()[no] == {"paid": 5000, "refunded": 5000}
        refund = Refund.objects.get(intent__out_trade_no=no)
        assert refund.status == RefundStatus.SUCCEEDED and refund.reason == "医生停诊全额退款"
    stopped = [m for m in sandboxes.wechat.messages() if "停诊" in str(m.get("data"))]
    assert len(stopped) == 2
    schedule.refresh_from_db()
    assert schedule.status == "stopped" and schedule.remaining == 0


def test_late_payment_for_an_expired_hold_is_refunded(pay, patient_wang, dr_li):
    schedule = make_schedule(dr_li, capacity=1)
    pay.wechat.chaos(drop=1.0)
    booking_id, no = _book_and_pay(pay, patient_wang, schedule, _verified_profile(patient_wang))
    Booking.objects.filter(pk=booking_id).update(hold_expires_at=timezone.now() - timezone.timedelta(seconds=1))
    assert bookings_expire_due() == 1  # the place goes back …
    from payments.services.reconcile import intents_reconcile, refunds_reconcile

    PaymentIntent.objects.filter(out_trade_no=no).update(next_check_at=timezone.now())
    intents_reconcile()  # … then the lost payment is found: captured and refunded, not confirmed
    pay.wechat.settle_refunds()
    refunds_reconcile(older_than_seconds=0)
    assert Booking.objects.get(pk=booking_id).status == BookingStatus.EXPIRED
    assert pay.wechat.truth()[no] == {"paid": 5000, "refunded": 5000}
    schedule.refresh_from_db()
    assert schedule.remaining == 1


def test_waitlist_gets_the_released_place(pay, patient_wang, patient_zhang, dr_li, sandboxes):
    schedule = make_schedule(dr_li, capacity=1)
    first = patient_wang.post("/api/bookings", {"schedule_id": str(schedule.pk),
                                                "patient_id": _verified_profile(patient_wang)})
    assert first.status_code == 201
    zhang_profile = _verified_profile(patient_zhang)
    full = patient_zhang.post("/api/bookings", {"schedule_id": str(schedule.pk), "patient_id": zhang_profile})
    assert full.status_code == 409 and full.json()["code"] == "booking_slot_full"
    _subscribe(patient_zhang, sandboxes, "waitlist_offer")
    joined = patient_zhang.post(f"/api/schedules/{schedule.pk}/waitlist", {"patient_id": zhang_profile})
    assert joined.status_code == 201
    Booking.objects.filter(pk=first.json()["id"]).update(hold_expires_at=timezone.now())
    bookings_expire_due()
    offered = Booking.objects.get(account_id=patient_zhang.user_id)
    assert offered.status == BookingStatus.HELD
    assert any("候补成功" in str(m.get("data")) for m in sandboxes.wechat.messages())
    schedule.refresh_from_db()
    assert schedule.remaining == 0
