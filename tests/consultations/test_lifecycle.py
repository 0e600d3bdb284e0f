"""Eligibility before payment, the lifecycle and the message stream, through the services and the HTTP API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from backend.consultations.models import Consultation, Message
from backend.consultations.services.lifecycle import consultations_end_idle, consultations_expire_due
from backend.consultations.services.messages import message_post, message_recall
from backend.consultations.states import ConsultStatus
from backend.core.errors import Conflict, NotFound, TooManyRequests
from tests.consultations.helpers import in_progress, paid, started
from tests.scheduling.helpers import patient_account


@pytest.fixture
def wang(db):
    return patient_account("wang")


def test_messages_are_numbered_idempotent_and_only_for_the_parties(wang, dr_li, pharmacist_zhao):
    user, patient = wang
    c = in_progress(user, patient, dr_li)
    first, created = message_post(user=user, consultation_id=c.pk, kind="text", body="医生好", client_msg_id="m1")
    again, created_again = message_post(user=user, consultation_id=c.pk, kind="text", body="医生好",
                                        client_msg_id="m1")
    reply, _ = message_post(user=dr_li, consultation_id=c.pk, kind="text", body="请描述症状")
    assert created and not created_again and again.pk == first.pk
    seqs = list(Message.objects.filter(consultation=c).values_list("seq", "sender_role"))
    assert seqs == [(1, "system"), (2, "system"), (3, "patient"), (4, "doctor")]
    assert reply.seq == 4
    with pytest.raises(NotFound):
        message_post(user=pharmacist_zhao, consultation_id=c.pk, kind="text", body="hi")


def test_recall_within_two_minutes_keeps_the_original_in_the_audit_log(wang, dr_li):
    from backend.core.models import AuditEvent

    user, patient = wang
    c = in_progress(user, patient, dr_li)
    m, _ = message_post(user=user, consultation_id=c.pk, kind="text", body="发错了")
    notice = message_recall(user=user, consultation_id=c.pk, seq=m.seq)
    m.refresh_from_db()
    assert m.recalled_at and m.body == "" and notice.kind == "recall" and notice.payload == {"seq": m.seq}
    assert AuditEvent.objects.filter(action="consultation.message_recalled", detail__body="发错了").exists()
    old, _ = message_post(user=user, consultation_id=c.pk, kind="text", body="旧消息")
    Message.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=3))
    with pytest.raises(Conflict):
        message_recall(user=user, consultation_id=c.pk, seq=old.seq)
    with pytest.raises(NotFound):
        message_recall(user=dr_li, consultation_id=c.pk, seq=old.seq)


def test_rate_limit(wang, dr_li, settings):
    settings.CONSULT_MESSAGE_RATE = "3/60"
    user, patient = wang
    c = in_progress(user, patient, dr_li)
    for i in range(3):
        message_post(user=user, consultation_id=c.pk, kind="text", body=f"第{i}条")
    with pytest.raises(TooManyRequests):
        message_post(user=user, consultation_id=c.pk, kind="text", body="太快了")


def test_follow_up_window_allows_a_few_patient_messages(wang, dr_li, settings):
    from backend.consultations.services.lifecycle import consultation_end

    settings.CONSULT_FOLLOW_UP_MESSAGES = 2
    user, patient = wang
    c = in_progress(user, patient, dr_li)
    consultation_end(user=dr_li, consultation_id=c.pk)
    message_post(user=user, consultation_id=c.pk, kind="text", body="追问一")
    message_post(user=user, consultation_id=c.pk, kind="text", body="追问二")
    with pytest.raises(Conflict) as exc:
        message_post(user=user, consultation_id=c.pk, kind="text", body="追问三")
    assert exc.value.code == "follow_up_used_up"
    message_post(user=dr_li, consultation_id=c.pk, kind="text", body="医生回复追问")
    Consultation.objects.filter(pk=c.pk).update(follow_up_until=timezone.now() - timedelta(seconds=1))
    with pytest.raises(Conflict):
        message_post(user=dr_li, consultation_id=c.pk, kind="text", body="窗口已关")


def test_unpaid_and_unaccepted_visits_expire(wang, dr_li):
    user, patient = wang
    unpaid = started(user, patient, dr_li)
    Consultation.objects.filter(pk=unpaid.pk).update(pay_before=timezone.now() - timedelta(seconds=1))
    assert consultations_expire_due() == 1
    unpaid.refresh_from_db()
    assert unpaid.status == ConsultStatus.CANCELLED and "支付超时" in unpaid.end_reason
    assert not unpaid.refund_due  # nothing was paid
    waiting = paid(started(user, patient, dr_li))
    Consultation.objects.filter(pk=waiting.pk).update(accept_before=timezone.now() - timedelta(seconds=1))
    assert consultations_expire_due() == 1
    waiting.refresh_from_db()
    assert waiting.status == ConsultStatus.CANCELLED and "未在规定时间内接诊" in waiting.end_reason
    assert waiting.refund_due  # the fee is owed back, recorded with the cancellation
    assert consultations_expire_due() == 0


def test_idle_visits_end_and_open_the_follow_up_window(wang, dr_li, settings):
    user, patient = wang
    c = in_progress(user, patient, dr_li)
    Consultation.objects.filter(pk=c.pk).update(last_activity_at=timezone.now() - timedelta(hours=25))
    assert consultations_end_idle() == 1
    c.refresh_from_db()
    assert c.status == ConsultStatus.ENDED and c.follow_up_until > timezone.now()
