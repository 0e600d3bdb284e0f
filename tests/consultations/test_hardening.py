"""Found in review: refunds that must survive a lost task, doctors racing over a pool visit, the pool's
visibility, malformed payloads, deadlines re-checked under the lock, unpaid cancellations closing the intent,
eligibility from another department's visit, and audited list and media reads."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from backend.accounts.models import DoctorProfile, PatientProfile, VerificationStatus
from backend.consultations.models import Consultation, MediaFile, OnlineService
from backend.consultations.services import lifecycle
from backend.consultations.services.eligibility import StartRequest, consultation_start
from backend.consultations.services.messages import message_post
from backend.consultations.services.refunds import consultations_refund_sweep
from backend.consultations.states import ConsultStatus
from backend.core.errors import NotFound
from backend.core.models import AuditEvent
from payments.models import PaymentIntent, Refund
from payments.states import IntentStatus
from tests.conftest import ID_WANG, profile_payload
from tests.consultations.helpers import (
    TERMS_VERSION,
    consent_terms,
    doctor_service,
    in_progress,
    offline_visit,
    paid,
    patient_client,
    png_bytes,
    staff_client,
)
from tests.scheduling.helpers import patient_account


def _paid_over_http(pay, who, service, patient) -> str:
    body = {"patient_id": str(patient.pk), "service_id": str(service.pk), "terms_version": TERMS_VERSION,
            "offline_visit_id": str(offline_visit(patient).pk)}
    cid = who.post("/api/consultations", body).json()["id"]
    intent = who.post("/api/payments/checkout", {"payable_type": "consultation", "payable_id": cid,
                                                 "channel": "wechat"}).json()["intent"]
    pay.wechat.pay(intent["out_trade_no"])
    pay.wechat.deliver_all_now()
    return cid


@pytest.fixture
def wang_paying(pay, patient_wang, dr_li):
    consent_terms()
    created = patient_wang.post("/api/patients", profile_payload(id_number=ID_WANG)).json()
    PatientProfile.objects.filter(pk=created["id"]).update(verification_status=VerificationStatus.VERIFIED)
    return PatientProfile.objects.get(pk=created["id"]), doctor_service(dr_li)


def test_a_refund_whose_task_was_lost_is_made_by_the_sweep(pay, wang_paying, patient_wang, monkeypatch):
    patient, service = wang_paying
    cid = _paid_over_http(pay, patient_wang, service, patient)
    from backend.consultations import tasks

    def broker_down(**kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.consultation_refund, "delay", broker_down)
    monkeypatch.setattr("channels.layers.InMemoryChannelLayer.group_send", broker_down, raising=False)
    cancelled = patient_wang.post(f"/api/consultations/{cid}/cancel", {})
    assert cancelled.status_code == 200  # committed; the lost task does not turn it into an error
    c = Consultation.objects.get(pk=cid)
    assert c.refund_due and not Refund.objects.filter(intent__payable_id=cid).exists()
    assert consultations_refund_sweep() == 0  # not before the task had its minute
    Consultation.objects.filter(pk=cid).update(ended_at=timezone.now() - timedelta(minutes=2))
    monkeypatch.undo()
    assert consultations_refund_sweep() == 1
    assert Refund.objects.get(intent__payable_id=cid).amount_fen == service.fee_fen
    assert not Consultation.objects.get(pk=cid).refund_due
    assert consultations_refund_sweep() == 0  # never twice


def test_cancelling_before_payment_closes_the_open_intent(pay, wang_paying, patient_wang):
    patient, service = wang_paying
    body = {"patient_id": str(patient.pk), "service_id": str(service.pk), "terms_version": TERMS_VERSION,
            "offline_visit_id": str(offline_visit(patient).pk)}
    cid = patient_wang.post("/api/consultations", body).json()["id"]
    patient_wang.post("/api/payments/checkout", {"payable_type": "consultation", "payable_id": cid,
                                                 "channel": "wechat"})
    assert patient_wang.post(f"/api/consultations/{cid}/cancel", {}).status_code == 200
    assert PaymentIntent.objects.get(payable_id=cid).status == IntentStatus.CLOSED
    assert not Consultation.objects.get(pk=cid).refund_due


def test_a_doctor_cannot_end_a_pool_visit_another_doctor_just_took(db, dr_li, dr_wu, departments, monkeypatch):
    consent_terms()
    pool = OnlineService.objects.create(department=departments["internal"], kind="text", fee_fen=2500)
    user, patient = patient_account("pool_race")
    c = paid(consultation_start(account=user, ip="", req=StartRequest(
        patient_id=patient.pk, service_id=pool.pk, terms_version=TERMS_VERSION,
        offline_visit_id=offline_visit(patient).pk)))
    real = lifecycle.consultation_for_doctor

    def li_accepts_in_between(**kwargs):
        seen = real(**kwargs)  # wu read it while it was still in the pool …
        Consultation.objects.filter(pk=c.pk).update(status=ConsultStatus.IN_PROGRESS,
                                                    doctor=DoctorProfile.objects.get(user=dr_li))
        return seen  # … and li accepted it before wu's lock

    monkeypatch.setattr(lifecycle, "consultation_for_doctor", li_accepts_in_between)
    with pytest.raises(NotFound):
        lifecycle.consultation_terminate(user=dr_wu, consultation_id=c.pk, reason="抢先终止")
    after = Consultation.objects.get(pk=c.pk)  # (the simulated accept rolled back with wu's transaction)
    assert after.status != ConsultStatus.TERMINATED and not after.refund_due


def test_the_pool_shows_only_waiting_visits_and_only_to_qualified_doctors(db, dr_li, dr_wu, departments):
    consent_terms()
    pool = OnlineService.objects.create(department=departments["internal"], kind="text", fee_fen=2500)
    user, patient = patient_account("pool_view")
    c = paid(consultation_start(account=user, ip="", req=StartRequest(
        patient_id=patient.pk, service_id=pool.pk, terms_version=TERMS_VERSION,
        offline_visit_id=offline_visit(patient).pk)))
    wu = staff_client(dr_wu)
    assert [i["id"] for i in wu.get("/api/staff/consultations").json()] == [str(c.pk)]
    assert wu.get(f"/api/staff/consultations/{c.pk}").status_code == 200
    DoctorProfile.objects.filter(user=dr_wu).update(independent_practice_since=timezone.localdate())  # junior
    assert wu.get("/api/staff/consultations").json() == []
    assert wu.get(f"/api/staff/consultations/{c.pk}").status_code == 404
    lifecycle.consultation_cancel(account=user, consultation_id=c.pk)
    assert staff_client(dr_li).get(f"/api/staff/consultations/{c.pk}").status_code == 404  # cancelled: gone


@pytest.mark.parametrize("payload", [
    {"kind": "image", "payload": {"media_id": "x" * 36}},
    {"kind": "image", "payload": {"media_id": ["a"]}},
    {"kind": "tongue_photos", "payload": {"request_seq": "abc", "photos": {}}},
    {"kind": "tongue_photos", "payload": {"request_seq": [1], "photos": {"surface": "x"}}},
    {"kind": "tongue_photos", "payload": {"request_seq": 10**30, "photos": {"surface": "x"}}},
])
def test_malformed_payloads_are_422_not_500(db, dr_li, payload):
    user, patient = patient_account("payloads")
    c = in_progress(user, patient, dr_li)
    resp = patient_client(user).post(f"/api/consultations/{c.pk}/messages", payload, content_type="application/json")
    assert resp.status_code == 422 and resp.json()["code"] in {"message_media_invalid", "tongue_answer_invalid"}


def test_deadlines_are_rechecked_under_the_lock(db, dr_li):
    user, patient = patient_account("recheck")
    c = in_progress(user, patient, dr_li)
    cutoff = timezone.now() - timedelta(hours=1)
    Consultation.objects.filter(pk=c.pk).update(last_activity_at=cutoff - timedelta(hours=1))
    message_post(user=user, consultation_id=c.pk, kind="text", body="我还在")  # arrives after the listing
    ended = lifecycle._expire_one(c.pk, ConsultStatus.IN_PROGRESS, "idle", refund=False, target=ConsultStatus.ENDED,
                                  still_due=lambda v: v.last_activity_at <= cutoff)
    assert ended == 0 and Consultation.objects.get(pk=c.pk).status == ConsultStatus.IN_PROGRESS


def test_another_departments_visit_waits_for_the_doctors_judgement(db, dr_li):
    consent_terms()
    user, patient = patient_account("other_dept")
    visit = offline_visit(patient, diagnosis="腰痛·寒湿证")
    visit.department_name = "骨伤科"
    visit.save()
    c = consultation_start(account=user, ip="", req=StartRequest(
        patient_id=patient.pk, service_id=doctor_service(dr_li).pk, terms_version=TERMS_VERSION,
        offline_visit_id=visit.pk))
    assert c.eligibility_status == "pending_doctor"  # IH-03: the receiving doctor judges


def test_lists_and_media_links_are_audited(db, dr_li):
    user, patient = patient_account("audit_lists")
    c = in_progress(user, patient, dr_li)
    patient_client(user).get("/api/consultations")
    staff_client(dr_li).get("/api/staff/consultations")
    lists = AuditEvent.objects.filter(action="consultation.read_list")
    assert {e.actor_id for e in lists} == {str(user.pk), str(dr_li.pk)}
    assert all(str(c.pk) in e.detail["ids"] for e in lists)


    up = patient_client(user).post(f"/api/consultations/{c.pk}/media",
                                   {"file": SimpleUploadedFile("a.png", png_bytes(), content_type="image/png")})
    assert Client().get(up.json()["url"]).status_code == 200
    read = AuditEvent.objects.get(action="consultation.media_read")
    assert read.object_id == up.json()["id"] and read.detail["consultation"] == str(c.pk)
    assert MediaFile.objects.filter(pk=up.json()["id"]).exists()
