"""Payments end to end over HTTP: our API → the provider sandboxes → notifications to our live server."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections
from django.utils import timezone

from backend.core.errors import Conflict
from backend.demo.models import DemoCharge
from payments.models import InboundNotification, PaymentIntent, PaymentTransaction, Refund
from payments.selectors import intent_amounts
from payments.services.reconcile import intents_close_expired, intents_reconcile, refunds_reconcile
from payments.services.refunds import refund_create
from payments.states import IntentStatus, NotificationOutcome, RefundStatus
from tests.payments.conftest import checkout, new_charge

CHANNELS = ["wechat", "alipay"]


def _intent(out_trade_no: str) -> PaymentIntent:
    return PaymentIntent.objects.get(out_trade_no=out_trade_no)


def _pay_and_deliver(pay, channel: str, out_trade_no: str) -> None:
    pay.box(channel).pay(out_trade_no)
    pay.box(channel).deliver_all_now()


@pytest.mark.parametrize("channel", CHANNELS)
def test_pay_end_to_end(pay, patient_wang, channel):
    charge = new_charge(patient_wang.user_id)
    started = checkout(patient_wang, charge, channel)
    assert started["intent"]["status"] == "pending" and started["intent"]["amount_fen"] == 3000
    expected = {"timeStamp", "nonceStr", "package", "signType", "paySign"} if channel == "wechat" else {"tradeNO"}
    assert set(started["client_params"]) == expected
    no = started["intent"]["out_trade_no"]
    _pay_and_deliver(pay, channel, no)
    intent = _intent(no)
    assert intent.status == IntentStatus.SUCCEEDED and intent.provider_trade_no
    assert intent_amounts(intent.pk).paid_fen == 3000
    charge.refresh_from_db()
    assert charge.status == DemoCharge.Status.PAID
    seen = patient_wang.get(f"/api/payments/intents/{intent.pk}").json()
    assert seen["status"] == "succeeded" and seen["paid_fen"] == 3000


@pytest.mark.parametrize("channel", CHANNELS)
def test_the_same_notification_twice_captures_once(pay, patient_wang, channel):
    no = checkout(patient_wang, new_charge(patient_wang.user_id), channel)["intent"]["out_trade_no"]
    pay.box(channel).chaos(duplicate=1.0)
    _pay_and_deliver(pay, channel, no)
    deliveries = [n for n in pay.box(channel).notifications() if n["out_trade_no"] == no]
    assert len(deliveries) >= 2
    assert PaymentTransaction.objects.filter(intent__out_trade_no=no).count() == 1
    assert InboundNotification.objects.filter(out_trade_no=no).count() == 1


@pytest.mark.parametrize("channel", CHANNELS)
def test_forged_signature_is_rejected_and_changes_nothing(pay, patient_wang, channel):
    no = checkout(patient_wang, new_charge(patient_wang.user_id), channel)["intent"]["out_trade_no"]
    pay.box(channel).chaos(corrupt_signature=1.0)
    _pay_and_deliver(pay, channel, no)
    assert _intent(no).status == IntentStatus.PENDING
    assert not PaymentTransaction.objects.filter(intent__out_trade_no=no).exists()
    assert InboundNotification.objects.filter(outcome=NotificationOutcome.REJECTED).count() >= 1
    # the money is real, though: the reconcile job finds it by asking the provider
    PaymentIntent.objects.filter(out_trade_no=no).update(next_check_at=timezone.now())
    intents_reconcile()
    assert _intent(no).status == IntentStatus.SUCCEEDED


@pytest.mark.parametrize("channel", CHANNELS)
def test_wrong_amount_is_flagged_not_captured(pay, patient_wang, channel):
    no = checkout(patient_wang, new_charge(patient_wang.user_id), channel)["intent"]["out_trade_no"]
    pay.box(channel).chaos(alter_amount=1.0)
    _pay_and_deliver(pay, channel, no)
    intent = _intent(no)
    assert intent.status == IntentStatus.PENDING and intent.flag_reason.startswith("amount_mismatch")
    assert not PaymentTransaction.objects.filter(intent=intent).exists()
    assert InboundNotification.objects.filter(out_trade_no=no, outcome=NotificationOutcome.FLAGGED).count() == 1


@pytest.mark.parametrize("channel", CHANNELS)
def test_lost_notification_is_found_by_reconcile(pay, patient_wang, channel):
    no = checkout(patient_wang, new_charge(patient_wang.user_id), channel)["intent"]["out_trade_no"]
    pay.box(channel).chaos(drop=1.0)
    _pay_and_deliver(pay, channel, no)
    assert _intent(no).status == IntentStatus.PENDING
    assert intents_reconcile() == 0  # not due yet: the first check waits PAYMENT_RECONCILE_FIRST_CHECK_SECONDS
    PaymentIntent.objects.filter(out_trade_no=no).update(next_check_at=timezone.now())
    assert intents_reconcile() == 1
    assert _intent(no).status == IntentStatus.SUCCEEDED


@pytest.mark.parametrize("channel", CHANNELS)
def test_payment_for_a_released_payable_is_refunded_automatically(pay, patient_wang, channel):
    charge = new_charge(patient_wang.user_id)
    no = checkout(patient_wang, charge, channel)["intent"]["out_trade_no"]
    DemoCharge.objects.filter(pk=charge.pk).update(status=DemoCharge.Status.CANCELLED)
    _pay_and_deliver(pay, channel, no)
    intent = _intent(no)
    refund = Refund.objects.get(intent=intent)
    assert refund.automatic and refund.amount_fen == 3000
    if channel == "wechat":
        pay.wechat.settle_refunds()
        pay.wechat.deliver_all_now()
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    amounts = intent_amounts(intent.pk)
    assert (amounts.paid_fen, amounts.refunded_fen) == (3000, 3000)
    assert pay.box(channel).truth()[no] == {"paid": 3000, "refunded": 3000}


@pytest.mark.parametrize("channel", CHANNELS)
def test_expired_intent_is_closed_after_asking_the_provider(pay, patient_wang, channel):
    charge = new_charge(patient_wang.user_id)
    no = checkout(patient_wang, charge, channel)["intent"]["out_trade_no"]
    PaymentIntent.objects.filter(out_trade_no=no).update(expires_at=timezone.now())
    assert intents_close_expired() == 1
    assert _intent(no).status == IntentStatus.CLOSED
    with pytest.raises(Exception):  # noqa: B017 - the sandbox refuses to take money for a closed order
        pay.box(channel).pay(no)
    # a new checkout for the same charge gets a new intent
    again = checkout(patient_wang, charge, channel)["intent"]["out_trade_no"]
    assert again != no


@pytest.mark.parametrize("channel", CHANNELS)
def test_expiry_job_captures_a_payment_whose_notice_was_lost(pay, patient_wang, channel):
    no = checkout(patient_wang, new_charge(patient_wang.user_id), channel)["intent"]["out_trade_no"]
    pay.box(channel).chaos(drop=1.0)
    _pay_and_deliver(pay, channel, no)
    PaymentIntent.objects.filter(out_trade_no=no).update(expires_at=timezone.now())
    intents_close_expired()
    assert _intent(no).status == IntentStatus.SUCCEEDED  # asked first: paid, so captured, not closed


def test_refund_notice_before_payment_notice_still_ends_right(pay, patient_wang, dr_li, monkeypatch):
    no = checkout(patient_wang, new_charge(patient_wang.user_id), "wechat")["intent"]["out_trade_no"]
    # hold the payment notice 10 s (compressed): the default 60 ms hold ran out on a loaded machine before the refund
    monkeypatch.setattr(pay.wechat._notifier, "hold_seconds", 10_000)
    pay.wechat.chaos(reorder=1.0)
    pay.wechat.pay(no)  # the payment notice is held back
    patient_wang.post(f"/api/payments/intents/{_intent(no).pk}/sync")  # the mini-program asks after paying
    refund_create(intent_id=_intent(no).pk, amount_fen=1000, reason="部分退款", actor=dr_li)
    pay.wechat.settle_refunds()
    pay.wechat.deliver_all_now()
    order = [n["kind"] for n in pay.wechat.notifications() if n["out_trade_no"] == no and n["status"]]
    assert order.index("refund") < order.index("payment")  # the refund notice really came first
    amounts = intent_amounts(_intent(no).pk)
    assert (amounts.paid_fen, amounts.refunded_fen) == (3000, 1000)
    assert PaymentTransaction.objects.filter(intent__out_trade_no=no).count() == 2


def test_two_concurrent_refunds_cannot_exceed_the_capture(pay, patient_wang, dr_li):
    no = checkout(patient_wang, new_charge(patient_wang.user_id), "alipay")["intent"]["out_trade_no"]
    _pay_and_deliver(pay, "alipay", no)
    intent_id = _intent(no).pk

    def refund(_: int) -> str:
        try:
            refund_create(intent_id=intent_id, amount_fen=2000, reason="并发退款", actor=dr_li)
            return "ok"
        except Conflict as exc:
            return exc.code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(refund, range(2)))
    assert outcomes == ["ok", "refund_exceeds_captured"]
    refunds_reconcile(older_than_seconds=0)
    amounts = intent_amounts(intent_id)
    assert (amounts.paid_fen, amounts.refunded_fen) == (3000, 2000)
    assert pay.alipay.truth()[no] == {"paid": 3000, "refunded": 2000}


def test_partial_and_repeated_refunds_up_to_the_capture(pay, patient_wang, dr_li):
    no = checkout(patient_wang, new_charge(patient_wang.user_id), "wechat")["intent"]["out_trade_no"]
    _pay_and_deliver(pay, "wechat", no)
    intent_id = _intent(no).pk
    for amount in (1000, 1500, 500):
        refund_create(intent_id=intent_id, amount_fen=amount, reason="分次退款", actor=dr_li)
    with pytest.raises(Conflict):
        refund_create(intent_id=intent_id, amount_fen=1, reason="超额", actor=dr_li)
    pay.wechat.settle_refunds()
    pay.wechat.deliver_all_now()
    amounts = intent_amounts(intent_id)
    assert (amounts.paid_fen, amounts.refunded_fen, amounts.refundable_fen) == (3000, 3000, 0)
    assert DemoCharge.objects.get(pk=_intent(no).payable_id).refunded_fen == 3000


def test_another_accounts_intent_is_404(pay, patient_wang, patient_zhang):
    started = checkout(patient_wang, new_charge(patient_wang.user_id), "wechat")
    url = f"/api/payments/intents/{started['intent']['id']}"
    assert patient_zhang.get(url).status_code == 404
    assert patient_zhang.post(url + "/sync").status_code == 404
    theirs = new_charge(patient_wang.user_id)
    resp = patient_zhang.post("/api/payments/checkout", {"payable_type": "demo_charge", "payable_id": str(theirs.pk),
                                                         "channel": "wechat"})
    assert resp.status_code == 404 and resp.json()["code"] == "payable_not_found"


def test_a_refund_that_never_reached_the_provider_is_submitted_by_reconcile(pay, patient_wang, dr_li):
    no = checkout(patient_wang, new_charge(patient_wang.user_id), "wechat")["intent"]["out_trade_no"]
    _pay_and_deliver(pay, "wechat", no)
    pay.wechat.fail_next("/v3/refund/domestic/refunds", "http500", times=20)  # the provider is down
    # the submit after commit fails (eager Celery gives up at once; a worker would retry with backoff),
    # and the request that created the refund still succeeds
    refund_create(intent_id=_intent(no).pk, amount_fen=800, reason="退款", actor=dr_li)
    assert len(pay.wechat.calls("/v3/refund/domestic/refunds")) == 1
    refund = Refund.objects.get(intent__out_trade_no=no)
    assert refund.status == RefundStatus.REQUESTED and pay.wechat.truth()[no]["refunded"] == 0
    pay.wechat.clear_failures()
    assert refunds_reconcile(older_than_seconds=0) == 1
    pay.wechat.settle_refunds()
    pay.wechat.deliver_all_now()
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED and pay.wechat.truth()[no]["refunded"] == 800


def test_money_on_a_closed_intent_is_captured_and_refunded(pay, patient_wang):
    """The intent was closed on our side (replaced, expired) but the payer's money still arrived."""
    charge = new_charge(patient_wang.user_id)
    no = checkout(patient_wang, charge, "alipay")["intent"]["out_trade_no"]
    pay.alipay.chaos(drop=1.0)
    pay.alipay.pay(no)
    PaymentIntent.objects.filter(out_trade_no=no).update(status=IntentStatus.CLOSED, close_reason="replaced")
    from payments.services.intents import intent_sync

    intent = intent_sync(intent_id=_intent(no).pk)
    assert intent.status == IntentStatus.CLOSED  # stays closed: another intent may pay the payable
    refund = Refund.objects.get(intent=intent)
    assert refund.automatic and refund.status == RefundStatus.SUCCEEDED
    assert (intent_amounts(intent.pk).paid_fen, intent_amounts(intent.pk).refunded_fen) == (3000, 3000)
    charge.refresh_from_db()
    assert charge.status == DemoCharge.Status.UNPAID  # nothing was delivered for it


def test_switching_channel_asks_the_old_provider_first(pay, patient_wang):
    charge = new_charge(patient_wang.user_id)
    no = checkout(patient_wang, charge, "wechat")["intent"]["out_trade_no"]
    pay.wechat.chaos(drop=1.0)
    pay.wechat.pay(no)  # paid in WeChat, the notice is lost; the patient then tries Alipay
    resp = patient_wang.post("/api/payments/checkout", {"payable_type": "demo_charge", "payable_id": str(charge.pk),
                                                        "channel": "alipay", "alipay_buyer_id": "2088102177000001"})
    assert resp.status_code == 409 and resp.json()["code"] == "payable_already_paid"
    assert _intent(no).status == IntentStatus.SUCCEEDED
    assert PaymentIntent.objects.filter(payable_id=str(charge.pk)).count() == 1


def test_an_untrustworthy_refund_answer_keeps_the_money_reserved(pay, patient_wang, dr_li):
    """The provider may have accepted a refund whose answer we could not verify: never free that money."""
    no = checkout(patient_wang, new_charge(patient_wang.user_id), "alipay")["intent"]["out_trade_no"]
    _pay_and_deliver(pay, "alipay", no)
    pay.alipay.chaos(drop=1.0)  # and its notice is lost too
    pay.alipay.forge_responses(1)
    refund_create(intent_id=_intent(no).pk, amount_fen=2000, reason="退款", actor=dr_li)
    refund = Refund.objects.get(intent__out_trade_no=no)
    assert refund.status == RefundStatus.PROCESSING
    assert intent_amounts(refund.intent_id).refundable_fen == 1000
    with pytest.raises(Conflict):
        refund_create(intent_id=refund.intent_id, amount_fen=1001, reason="再退", actor=dr_li)
    refunds_reconcile(older_than_seconds=0)
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED
    assert pay.alipay.truth()[no] == {"paid": 3000, "refunded": 2000}
    assert intent_amounts(refund.intent_id).refunded_fen == 2000


def test_an_abnormal_refund_is_failed_flagged_and_refundable_again(pay, patient_wang, dr_li):
    no = checkout(patient_wang, new_charge(patient_wang.user_id), "wechat")["intent"]["out_trade_no"]
    _pay_and_deliver(pay, "wechat", no)
    refund_create(intent_id=_intent(no).pk, amount_fen=3000, reason="退款", actor=dr_li)
    pay.wechat.settle_refunds(status="ABNORMAL")
    pay.wechat.deliver_all_now()
    refund = Refund.objects.get(intent__out_trade_no=no)
    assert refund.status == RefundStatus.FAILED and refund.failure_reason == "failed"
    intent = _intent(no)
    assert intent.flag_reason.startswith("refund_failed:")
    assert intent_amounts(intent.pk).refundable_fen == 3000
    from backend.core.models import AuditEvent

    assert AuditEvent.objects.filter(action="payment.refund_failed", object_id=str(intent.pk)).count() == 1


def test_a_coupon_does_not_stop_the_capture(pay, patient_wang):
    no = checkout(patient_wang, new_charge(patient_wang.user_id), "wechat")["intent"]["out_trade_no"]
    pay.wechat.pay(no, payer_total=2500)  # a 5-yuan WeChat coupon: the order amount is still 3000
    pay.wechat.deliver_all_now()
    intent = _intent(no)
    assert intent.status == IntentStatus.SUCCEEDED and intent_amounts(intent.pk).paid_fen == 3000


def test_checking_out_again_reuses_the_order(pay, patient_wang):
    charge = new_charge(patient_wang.user_id)
    first = checkout(patient_wang, charge, "wechat")
    again = patient_wang.post("/api/payments/checkout", {"payable_type": "demo_charge",
                                                         "payable_id": str(charge.pk), "channel": "wechat"},
                              REMOTE_ADDR="10.0.0.2")
    assert again.status_code == 200, again.content
    assert again.json()["intent"]["id"] == first["intent"]["id"]
    assert again.json()["client_params"]["package"] == first["client_params"]["package"]
    assert len(pay.wechat.calls("/v3/pay/transactions/jsapi")) == 1


def test_notification_with_nul_bytes_or_another_merchant_is_not_a_500(pay, patient_wang):
    from django.test import Client

    nul = Client().post("/payments/notify/alipay", data=b"a=1&b=\x00", content_type="application/x-www-form-urlencoded")
    assert nul.status_code == 200 and nul.content == b"fail"
    assert InboundNotification.objects.get().outcome == NotificationOutcome.REJECTED
    no = checkout(patient_wang, new_charge(patient_wang.user_id), "alipay")["intent"]["out_trade_no"]
    forged = pay.alipay.signed_form({
        "notify_time": "2026-11-23 10:00:00", "notify_type": "trade_status_sync", "notify_id": "N-OTHER-SELLER",
        "app_id": "2021000000000001", "seller_id": "2088999999999999", "trade_no": "2026112322001", "charset": "utf-8",
        "out_trade_no": no, "trade_status": "TRADE_SUCCESS", "total_amount": "30.00", "version": "1.0",
        "gmt_payment": "2026-11-23 10:00:00", "sign_type": "RSA2"})
    resp = Client().post("/payments/notify/alipay", data=forged, content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 200 and resp.content == b"success"
    intent = _intent(no)
    assert intent.status == IntentStatus.PENDING and intent.flag_reason.startswith("merchant_mismatch")
    assert not PaymentTransaction.objects.filter(intent=intent).exists()


def test_a_refund_notice_ahead_of_any_capture_is_deferred(pay, patient_wang):
    """Defensive: a refund notice for an order we have not captured yet is answered "not yet"
    (the provider retries) and changes nothing."""
    from payments.gateways.base import PaymentNotification
    from payments.services.notifications import _process

    no = checkout(patient_wang, new_charge(patient_wang.user_id), "wechat")["intent"]["out_trade_no"]
    refund = Refund.objects.create(intent=_intent(no), out_refund_no="R-EARLY", amount_fen=1000, reason="测试")
    note = PaymentNotification(kind="refund", dedupe_key="EV-EARLY", out_trade_no=no, amount_fen=1000,
                               state="succeeded", out_refund_no="R-EARLY", appid="", mchid=pay.wechat.mchid)
    assert _process("wechat", note) == (NotificationOutcome.DEFERRED, "refund before capture")
    refund.refresh_from_db()
    assert refund.status == RefundStatus.REQUESTED and not PaymentTransaction.objects.exists()


@pytest.mark.parametrize("channel", CHANNELS)
def test_payment_after_expiry_is_refunded_automatically(pay, patient_wang, channel):
    """Paid in the last second; the notice is lost; the hold is released at its deadline. The expiry
    job asks the provider first, captures the money and, the payable being gone, refunds it."""
    charge = new_charge(patient_wang.user_id)
    DemoCharge.objects.filter(pk=charge.pk).update(pay_before=timezone.now() + timezone.timedelta(minutes=5))
    no = checkout(patient_wang, charge, channel)["intent"]["out_trade_no"]
    assert _intent(no).expires_at <= timezone.now() + timezone.timedelta(minutes=5)  # never past the hold
    pay.box(channel).chaos(drop=1.0)
    pay.box(channel).pay(no)
    pay.box(channel).deliver_all_now()
    past = timezone.now() - timezone.timedelta(seconds=1)  # time passes: hold and intent expire
    DemoCharge.objects.filter(pk=charge.pk).update(pay_before=past)
    PaymentIntent.objects.filter(out_trade_no=no).update(expires_at=past)
    intents_close_expired()
    if channel == "wechat":
        pay.wechat.settle_refunds()
    refunds_reconcile(older_than_seconds=0)  # the refund notice is lost as well (chaos still drops)
    intent = _intent(no)
    refund = Refund.objects.get(intent=intent)
    assert refund.automatic and refund.status == RefundStatus.SUCCEEDED
    assert (intent_amounts(intent.pk).paid_fen, intent_amounts(intent.pk).refunded_fen) == (3000, 3000)
    assert pay.box(channel).truth()[no] == {"paid": 3000, "refunded": 3000}
    charge.refresh_from_db()
    assert charge.status == DemoCharge.Status.UNPAID
