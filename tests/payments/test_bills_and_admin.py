"""The daily bill against the ledger, and the operator refund in the admin."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from backend.accounts.models import Role
from backend.accounts.services.staff import StaffAccount, staff_user_create
from backend.core.models import AuditEvent
from payments.models import BillMismatch, PaymentIntent, Refund
from payments.services.reconcile import bill_reconcile
from payments.tasks import bills_reconcile
from tests.payments.conftest import checkout, new_charge


@pytest.mark.parametrize("channel", ["wechat", "alipay"])
def test_bill_matches_the_ledger_then_reports_a_lost_payment(pay, patient_wang, channel):
    box = pay.box(channel)
    seen = checkout(patient_wang, new_charge(patient_wang.user_id, 1234), channel)["intent"]["out_trade_no"]
    box.pay(seen)
    box.deliver_all_now()
    lost = checkout(patient_wang, new_charge(patient_wang.user_id, 1), channel)["intent"]["out_trade_no"]
    box.chaos(drop=1.0)
    box.pay(lost)
    box.deliver_all_now()
    today = timezone.localdate()
    box.advance_clock(86400)  # the bill of "today" is ready tomorrow
    found = bill_reconcile(channel=channel, bill_date=today)
    assert [(m.kind, m.out_trade_no, m.bill_amount_fen, m.ledger_amount_fen) for m in found] == [
        ("capture", lost, 1, None)]
    assert BillMismatch.objects.get().channel == channel
    # reconciling the same day again does not duplicate the report
    bill_reconcile(channel=channel, bill_date=today)
    assert BillMismatch.objects.count() == 1


def test_the_daily_task_runs_both_channels(pay, patient_wang):
    for channel in ("wechat", "alipay"):
        no = checkout(patient_wang, new_charge(patient_wang.user_id), channel)["intent"]["out_trade_no"]
        pay.box(channel).pay(no)
        pay.box(channel).deliver_all_now()
        pay.box(channel).advance_clock(86400)
    assert bills_reconcile(timezone.localdate().isoformat()) == 0
    assert not BillMismatch.objects.exists()


@pytest.fixture
def operator_client(transactional_db):
    user = staff_user_create(account=StaffAccount("operator_qian", "Operator-Qian-2026!", "钱运营", (Role.OPERATOR,)))
    client = Client()
    client.force_login(user)
    return client


def test_operator_refund_in_the_admin_is_audited(pay, patient_wang, operator_client):
    no = checkout(patient_wang, new_charge(patient_wang.user_id, 5000), "alipay")["intent"]["out_trade_no"]
    pay.alipay.pay(no)
    pay.alipay.deliver_all_now()
    intent = PaymentIntent.objects.get(out_trade_no=no)
    url = f"/admin/payments/paymentintent/{intent.pk}/refund/"
    page = operator_client.get(url)
    assert page.status_code == 200 and "可退 5000" in page.content.decode()
    too_much = operator_client.post(url, {"amount_yuan": "50.01", "reason": "患者申请"})
    assert too_much.status_code == 200 and "退款金额超过可退金额" in too_much.content.decode()
    done = operator_client.post(url, {"amount_yuan": "12.34", "reason": "患者申请部分退款"})
    assert done.status_code == 302
    refund = Refund.objects.get(intent=intent)
    assert refund.amount_fen == 1234 and refund.actor.username == "operator_qian"
    assert AuditEvent.objects.filter(action="payment.refund_requested", actor_label="operator_qian").count() == 1
    assert pay.alipay.truth()[no] == {"paid": 5000, "refunded": 1234}
    assert operator_client.get(f"/admin/payments/paymentintent/{intent.pk}/change/").status_code == 200


def test_a_fixed_difference_disappears_when_the_day_is_reconciled_again(pay, patient_wang):
    box = pay.alipay
    no = checkout(patient_wang, new_charge(patient_wang.user_id), "alipay")["intent"]["out_trade_no"]
    box.chaos(drop=1.0)
    box.pay(no)
    box.deliver_all_now()
    box.advance_clock(86400)
    today = timezone.localdate()
    assert len(bill_reconcile(channel="alipay", bill_date=today)) == 1
    PaymentIntent.objects.filter(out_trade_no=no).update(next_check_at=timezone.now())
    from payments.services.reconcile import intents_reconcile

    intents_reconcile()
    assert bill_reconcile(channel="alipay", bill_date=today) == []
    assert not BillMismatch.objects.exists()
