"""Eligibility before payment over HTTP (IH-01/03/04/06/13/24), paid through the real payment sandboxes."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from backend.accounts.models import DoctorProfile, PatientProfile, VerificationStatus
from backend.consultations.models import ConsentRecord, Consultation, OnlineService
from backend.core.models import AuditEvent
from payments.models import PaymentIntent, Refund
from payments.states import RefundStatus
from tests.conftest import ID_WANG, profile_payload
from tests.consultations.helpers import (
    TERMS_VERSION,
    consent_terms,
    doctor_service,
    offline_visit,
    png_bytes,
    staff_client,
)


def _verified(who) -> PatientProfile:
    created = who.post("/api/patients", profile_payload(id_number=ID_WANG)).json()
    PatientProfile.objects.filter(pk=created["id"]).update(verification_status=VerificationStatus.VERIFIED)
    return PatientProfile.objects.get(pk=created["id"])


def _start(who, patient, service, **extra):
    body = {"patient_id": str(patient.pk), "service_id": str(service.pk), "terms_version": TERMS_VERSION,
            "complaint": "胃脘隐痛两周，喜温喜按"} | extra
    return who.post("/api/consultations", body)


def _pay(pay, who, consultation_id: str) -> None:
    started = who.post("/api/payments/checkout", {"payable_type": "consultation", "payable_id": consultation_id,
                                                  "channel": "wechat"})
    assert started.status_code == 200, started.content
    pay.box("wechat").pay(started.json()["intent"]["out_trade_no"])
    pay.box("wechat").deliver_all_now()


@pytest.fixture
def setup(pay, patient_wang, dr_li):
    consent_terms()
    return _verified(patient_wang), doctor_service(dr_li)


def test_no_prior_diagnosis_is_a_clear_error_and_nothing_to_pay(setup, patient_wang):
    patient, service = setup
    resp = _start(patient_wang, patient, service)
    assert resp.status_code == 422
    assert resp.json()["code"] == "prior_diagnosis_required" and "复诊" in resp.json()["message"]
    assert not Consultation.objects.exists() and not PaymentIntent.objects.exists()
    assert not ConsentRecord.objects.exists()


def test_with_a_hospital_record_the_consultation_opens(setup, pay, patient_wang, dr_li):
    patient, service = setup
    visit = offline_visit(patient)
    listed = patient_wang.get(f"/api/patients/{patient.pk}/offline-visits").json()
    assert [v["id"] for v in listed] == [str(visit.pk)] and "胃脘痛" in listed[0]["diagnosis"]
    resp = _start(patient_wang, patient, service, offline_visit_id=str(visit.pk))
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body["status"] == "awaiting_payment" and body["eligibility_status"] == "confirmed"
    consent = ConsentRecord.objects.get()
    assert consent.terms.version == TERMS_VERSION and consent.ip == "127.0.0.1" and consent.accepted_at
    _pay(pay, patient_wang, body["id"])
    assert patient_wang.get(f"/api/consultations/{body['id']}").json()["status"] == "waiting"
    accepted = staff_client(dr_li).post(f"/api/staff/consultations/{body['id']}/accept", {},
                                   content_type="application/json")
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["status"] == "in_progress"
    kinds = [m["body"] for m in patient_wang.get(f"/api/consultations/{body['id']}/messages").json()]
    assert kinds == ["已支付，等待医生接诊", "李医生已接诊"]


def test_someone_elses_hospital_record_is_refused(setup, patient_wang, patient_zhang):
    patient, service = setup
    other = PatientProfile.objects.create(
        owner_id=patient_zhang.user_id, name="张三", id_type="resident_id", id_number="11010119900307001X",
        sex="male", birth_date=date(1990, 3, 7), relation="self", verification_status=VerificationStatus.VERIFIED)
    visit = offline_visit(other)
    resp = _start(patient_wang, patient, service, offline_visit_id=str(visit.pk))
    assert resp.status_code == 422 and resp.json()["code"] == "prior_visit_not_found"
    old = offline_visit(patient, days_ago=400)
    resp = _start(patient_wang, patient, service, offline_visit_id=str(old.pk))
    assert resp.status_code == 422 and resp.json()["code"] == "prior_visit_not_found"


def test_uploaded_proof_needs_the_doctor_and_a_rejection_refunds(setup, pay, patient_wang, dr_li):
    patient, service = setup
    bad = patient_wang.client.post("/api/consult/proofs", {"file": _upload(b"not an image", "x.jpg")},
                                   **patient_wang.auth())
    assert bad.status_code == 422 and bad.json()["code"] == "upload_type_invalid"
    proof = patient_wang.client.post("/api/consult/proofs", {"file": _upload(png_bytes(), "p.png")},
                                     **patient_wang.auth())
    assert proof.status_code == 201, proof.content
    missing = _start(patient_wang, patient, service, proof_media_ids=[proof.json()["id"]])
    assert missing.status_code == 422 and missing.json()["code"] == "proof_diagnosis_required"
    resp = _start(patient_wang, patient, service, proof_media_ids=[proof.json()["id"]],
                  proof_kind="outpatient_record", stated_diagnosis="慢性胃炎（外院门诊）")
    assert resp.status_code == 201 and resp.json()["eligibility_status"] == "pending_doctor"
    cid = resp.json()["id"]
    _pay(pay, patient_wang, cid)
    doctor = staff_client(dr_li)
    seen = doctor.get(f"/api/staff/consultations/{cid}").json()
    assert [p["id"] for p in seen["proofs"]] == [proof.json()["id"]]
    assert doctor.get(seen["proofs"][0]["url"]).status_code == 200
    refused = doctor.post(f"/api/staff/consultations/{cid}/accept", {}, content_type="application/json")
    assert refused.status_code == 422 and refused.json()["code"] == "prior_diagnosis_confirmation_required"
    rejected = doctor.post(f"/api/staff/consultations/{cid}/reject-eligibility", {"reason": "证明材料与所述诊断不符"},
                           content_type="application/json")
    assert rejected.status_code == 200 and rejected.json()["status"] == "cancelled"
    pay.wechat.settle_refunds()
    pay.box("wechat").deliver_all_now()
    refund = Refund.objects.get(intent__payable_id=cid)
    assert refund.amount_fen == service.fee_fen and refund.status == RefundStatus.SUCCEEDED


def test_proof_confirmed_by_the_doctor_opens_the_visit(setup, pay, patient_wang, dr_li):
    patient, service = setup
    proof = patient_wang.client.post("/api/consult/proofs", {"file": _upload(png_bytes(fmt="JPEG"), "p.jpg")},
                                     **patient_wang.auth()).json()
    cid = _start(patient_wang, patient, service, proof_media_ids=[proof["id"]], proof_kind="discharge_summary",
                 stated_diagnosis="冠心病").json()["id"]
    _pay(pay, patient_wang, cid)
    ok = staff_client(dr_li).post(f"/api/staff/consultations/{cid}/accept", {"prior_confirmed": True},
                             content_type="application/json")
    assert ok.status_code == 200 and ok.json()["eligibility_status"] == "confirmed"


def test_consent_to_the_current_terms_is_required(setup, patient_wang):
    patient, service = setup
    visit = offline_visit(patient)
    resp = _start(patient_wang, patient, service, offline_visit_id=str(visit.pk), terms_version="2025.0")
    assert resp.status_code == 422 and resp.json()["code"] == "consent_required"
    assert resp.json()["detail"] == {"current_version": TERMS_VERSION}
    terms = patient_wang.get("/api/consult/terms").json()
    assert terms["version"] == TERMS_VERSION and terms["title"]


def test_unverified_patient_and_junior_doctor_are_refused(setup, patient_wang, dr_li):
    patient, service = setup
    visit = offline_visit(patient)
    PatientProfile.objects.filter(pk=patient.pk).update(verification_status=VerificationStatus.UNVERIFIED)
    resp = _start(patient_wang, patient, service, offline_visit_id=str(visit.pk))
    assert resp.status_code == 422 and resp.json()["code"] == "profile_not_verified"
    PatientProfile.objects.filter(pk=patient.pk).update(verification_status=VerificationStatus.VERIFIED)
    junior_since = timezone.localdate() - timedelta(days=400)
    DoctorProfile.objects.filter(user=dr_li).update(independent_practice_since=junior_since)
    resp = _start(patient_wang, patient, service, offline_visit_id=str(visit.pk))
    assert resp.status_code == 403 and resp.json()["code"] == "doctor_practice_years_insufficient"
    OnlineService.objects.filter(pk=service.pk).update(is_open=False)
    resp = _start(patient_wang, patient, service, offline_visit_id=str(visit.pk))
    assert resp.status_code == 404 and resp.json()["code"] == "online_service_unavailable"


def test_child_under_six_needs_guardian_and_accompanyingstaff_client(setup, pay, patient_wang, dr_li):
    guardian, service = setup
    child = PatientProfile.objects.create(
        owner_id=patient_wang.user_id, name="王小宝", id_type="resident_id", id_number="110101202201010011",
        sex="male", birth_date=timezone.localdate() - timedelta(days=3 * 365), relation="child", guardian=guardian,
        verification_status=VerificationStatus.VERIFIED)
    visit = offline_visit(child, diagnosis="咳嗽·风寒袭肺证")
    resp = _start(patient_wang, child, service, offline_visit_id=str(visit.pk))
    assert resp.status_code == 422 and resp.json()["code"] == "child_companions_required"
    resp = _start(patient_wang, child, service, offline_visit_id=str(visit.pk), guardian_present=True,
                  accompanying_doctor="社区卫生服务中心 赵医生")
    assert resp.status_code == 201, resp.content
    cid = resp.json()["id"]
    _pay(pay, patient_wang, cid)
    doctor = staff_client(dr_li)
    summary = doctor.get(f"/api/staff/consultations/{cid}").json()["patient"]
    assert summary["guardian_name"] == guardian.name and "赵医生" in summary["accompanying_doctor"]
    refused = doctor.post(f"/api/staff/consultations/{cid}/accept", {}, content_type="application/json")
    assert refused.status_code == 422 and refused.json()["code"] == "child_companions_confirmation_required"
    ok = doctor.post(f"/api/staff/consultations/{cid}/accept", {"companions_confirmed": True},
                     content_type="application/json")
    assert ok.status_code == 200 and ok.json()["patient"]["companions_confirmed_at"]


def test_first_visit_policy_can_be_lifted(setup, patient_wang, settings):
    settings.ONLINE_FIRST_VISIT_FORBIDDEN = False  # e.g. a 互联网首诊 pilot (tcm-rules §6 trend)
    patient, service = setup
    resp = _start(patient_wang, patient, service, stated_diagnosis="")
    assert resp.status_code == 201 and Consultation.objects.get().eligibility_basis == "none"


def test_cancel_and_terminate_refund_in_full(setup, pay, patient_wang, dr_li):
    patient, service = setup
    cid = _start(patient_wang, patient, service, offline_visit_id=str(offline_visit(patient).pk)).json()["id"]
    _pay(pay, patient_wang, cid)
    cancelled = patient_wang.post(f"/api/consultations/{cid}/cancel", {"reason": "症状已缓解"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    cid2 = _start(patient_wang, patient, service, offline_visit_id=str(offline_visit(patient).pk)).json()["id"]
    _pay(pay, patient_wang, cid2)
    doctor = staff_client(dr_li)
    accepted = doctor.post(f"/api/staff/consultations/{cid2}/accept", {}, content_type="application/json")
    assert accepted.status_code == 200
    late = patient_wang.post(f"/api/consultations/{cid2}/cancel", {})
    assert late.status_code == 409 and late.json()["code"] == "consultation_not_cancellable"
    no_reason = doctor.post(f"/api/staff/consultations/{cid2}/terminate", {"reason": ""},
                            content_type="application/json")
    assert no_reason.status_code == 422
    done = doctor.post(f"/api/staff/consultations/{cid2}/terminate", {"reason": "腹痛加重，需到院检查"},
                       content_type="application/json")
    assert done.json()["status"] == "terminated_for_offline_care" and "需到院检查" in done.json()["end_reason"]
    pay.wechat.settle_refunds()
    pay.box("wechat").deliver_all_now()
    refunds = Refund.objects.filter(intent__payable_type="consultation").order_by("created_at")
    assert [(r.intent.payable_id, r.status) for r in refunds] == [(cid, "succeeded"), (cid2, "succeeded")]
    assert AuditEvent.objects.filter(action="consultation.terminated_for_offline_care").count() == 1


def _upload(data: bytes, name: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="image/jpeg")
