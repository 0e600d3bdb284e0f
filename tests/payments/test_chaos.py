"""Chaos: 200 intents paid through both sandboxes with random duplicates, reorderings, forgeries, lost
notices and altered amounts, some refunded. Afterwards our ledger must equal what the providers say
was paid and refunded — to the fen, for every order."""

from __future__ import annotations

import random

from django.utils import timezone

from payments.models import PaymentIntent, Refund
from payments.selectors import intent_amounts
from payments.services.reconcile import intents_reconcile, refunds_reconcile
from payments.services.refunds import refund_create
from payments.states import IntentStatus, RefundStatus
from tests.payments.conftest import checkout, new_charge

INTENTS = 200
CHAOS = {"duplicate": 0.3, "reorder": 0.2, "corrupt_signature": 0.1, "drop": 0.1, "alter_amount": 0.05}


def _settle_and_deliver(pay) -> None:
    pay.wechat.settle_refunds()
    for _ in range(3):
        pay.wechat.deliver_all_now()
        pay.alipay.deliver_all_now()


def _reconcile() -> None:
    PaymentIntent.objects.filter(status__in=[IntentStatus.CREATED, IntentStatus.PENDING]).update(
        next_check_at=timezone.now(), check_count=0)
    intents_reconcile(limit=1000)
    refunds_reconcile(older_than_seconds=0, limit=1000)


def test_ledger_matches_the_providers_after_chaos(pay, patient_wang, dr_li):
    rng = random.Random(20261123)
    pay.wechat.chaos(seed=11, **CHAOS)
    pay.alipay.chaos(seed=12, **CHAOS)
    orders: dict[str, str] = {}
    for i in range(INTENTS):
        channel = "wechat" if i % 2 else "alipay"
        started = checkout(patient_wang, new_charge(patient_wang.user_id, amount_fen=rng.randint(1, 50_000)), channel)
        orders[started["intent"]["out_trade_no"]] = channel
    for no, channel in orders.items():
        pay.box(channel).pay(no)
    _settle_and_deliver(pay)
    _reconcile()  # finds what forged, lost or altered notices hid

    # refunds meet a flaky provider too: 5xx answers, answers with a forged signature, refused refunds
    pay.wechat.fail_next("/v3/refund/domestic/refunds", "http500", times=4)
    pay.wechat.forge_responses(3)
    pay.alipay.forge_responses(3)
    refunded = 0
    for intent in PaymentIntent.objects.filter(status=IntentStatus.SUCCEEDED).order_by("out_trade_no"):
        if rng.random() < 0.3:
            part = rng.randint(1, intent.amount_fen)
            refund_create(intent_id=intent.pk, amount_fen=part, reason="混沌测试退款", actor=dr_li)
            refunded += 1
    abnormal = list(Refund.objects.filter(intent__channel="wechat", status=RefundStatus.PROCESSING)
                    .values_list("out_refund_no", flat=True)[:3])
    for no in abnormal:
        pay.wechat.settle_refunds(no, status="ABNORMAL")
    for _ in range(3):
        _settle_and_deliver(pay)
        _reconcile()

    truth = {**pay.wechat.truth(), **pay.alipay.truth()}
    ours = {}
    for intent in PaymentIntent.objects.filter(out_trade_no__in=orders):
        amounts = intent_amounts(intent.pk)
        ours[intent.out_trade_no] = {"paid": amounts.paid_fen, "refunded": amounts.refunded_fen}
    assert set(ours) == set(orders) and len(ours) == INTENTS
    wrong = {no: (ours[no], truth.get(no)) for no in orders if ours[no] != truth.get(no)}
    assert not wrong, wrong
    assert refunded > 30
    assert len(abnormal) == 3
    assert set(Refund.objects.exclude(status=RefundStatus.SUCCEEDED).values_list("out_refund_no", flat=True)) == set(
        abnormal)  # refused by the provider: failed and flagged, the rest all went through
    assert PaymentIntent.objects.filter(flag_reason__startswith="refund_failed").count() == 3
    assert PaymentIntent.objects.filter(status=IntentStatus.SUCCEEDED).count() == INTENTS
    chaos_seen = {c for box in (pay.wechat, pay.alipay) for n in box.notifications() for c in (n.get("chaos") or [])}
    assert {"duplicate", "reorder", "corrupt_signature", "drop", "alter_amount"} <= chaos_seen, chaos_seen
