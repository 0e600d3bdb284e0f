"""The TCM outpatient record: drafts, SM2 signatures, amendments, verification (tampering), access, the code table."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection, connections
from django.test import Client

from backend.consultations.models import ClinicalRecord, ClinicalRecordVersion, DiagnosisCode, SigningKey
from backend.consultations.services.records import (
    record_amend,
    record_save_draft,
    record_sign,
    record_verify,
    signing_key_for,
)
from backend.consultations.services.records.fields import canonical_bytes
from backend.core.crypto import sm3_hex
from backend.core.errors import Conflict, ValidationFailed
from backend.core.models import AuditEvent
from backend.core.sm2 import sm2_verify
from tests.consultations.helpers import in_progress, paid, patient_client, started
from tests.consultations.helpers import staff_client as staff
from tests.scheduling.helpers import patient_account


@pytest.fixture
def wang(db):
    user, patient = patient_account("wang_record")
    patient.allergies = "青霉素"
    patient.save(update_fields=["allergies"])
    return user, patient


@pytest.fixture
def visit(wang, dr_li):
    user, patient = wang
    return in_progress(user, patient, dr_li)


def draft(codes, **overrides) -> dict:
    data = {
        "chief_complaint": "胃脘隐痛反复发作2年，加重1周", "present_illness": "喜温喜按，空腹痛甚，得食痛减",
        "tongue_body": "pale", "tongue_coating": "thin_white", "tongue_note": "边有齿痕",
        "pulse": ["deep", "thready"], "treatment_principle": "温中健脾，和胃止痛", "advice": "忌生冷，饭后半小时服药",
        "tcm_disease_id": codes("tcm_disease", "胃脘痛").pk, "tcm_syndrome_id": codes("tcm_syndrome", "脾胃虚寒证").pk,
        "western_diagnosis_id": codes("icd10", "慢性胃炎").pk,
    }
    data.update(overrides)
    return data


def signed(visit, dr_li, codes) -> ClinicalRecord:
    record_save_draft(user=dr_li, consultation_id=visit.pk, data=draft(codes))
    return record_sign(user=dr_li, consultation_id=visit.pk)


def put(client: Client, path: str, data: dict):
    return client.put(path, json.dumps(data, default=str), content_type="application/json")


def post(client: Client, path: str, data: dict | None = None):
    return client.post(path, json.dumps(data or {}, default=str), content_type="application/json")


# --- signing and verification -------------------------------------------------------------------------------------

def test_sign_stores_a_signed_canonical_version_and_verifies(visit, dr_li, codes):
    record = record_save_draft(user=dr_li, consultation_id=visit.pk, data=draft(codes))
    assert record.status == "draft" and record.allergy_history == "青霉素"  # prefilled from the profile
    record = record_sign(user=dr_li, consultation_id=visit.pk)
    assert (record.status, record.version) == ("signed", 1)
    v1 = ClinicalRecordVersion.objects.select_related("key").get(record=record)
    content = v1.content
    assert content["tcm_disease"] == {"system": "tcm_disease", "code": "QH-D-001", "name": "胃脘痛"}
    assert content["western_diagnosis"] == {"system": "icd10", "code": "K29.5", "name": "慢性胃炎"}
    assert content["pulse"] == [{"code": "deep", "label": "沉"}, {"code": "thready", "label": "细"}]
    assert content["tongue_body"] == {"code": "pale", "label": "淡白舌"}
    assert (content["version"], content["amendment"], content["allergy_history"]) == (1, None, "青霉素")
    assert content["consultation_id"] == str(visit.pk) and content["patient_id"] == str(visit.patient_id)
    assert (content["patient_name"], content["doctor_name"]) == ("王测试", "李医生")
    assert content["signed_at"].endswith("+00:00") and content["signed_at"] == v1.signed_at.isoformat()
    message = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    assert message == canonical_bytes(content) and v1.digest == sm3_hex(message)
    assert v1.key.owner_id == dr_li.pk and sm2_verify(v1.key.public_key, message, v1.signature)
    result = record_verify(consultation_id=visit.pk)
    assert result.valid and result.problem == "" and [(c.version, c.digest_ok, c.signature_ok)
                                                       for c in result.versions] == [(1, True, True)]
    actions = set(AuditEvent.objects.filter(actor_id=str(dr_li.pk)).values_list("action", flat=True))
    assert {"consultation.record_saved", "consultation.record_signed", "signing_key.created"} <= actions


def test_signing_again_is_already_done(visit, dr_li, codes):
    signed(visit, dr_li, codes)
    again = record_sign(user=dr_li, consultation_id=visit.pk)
    assert again.version == 1 and ClinicalRecordVersion.objects.filter(record=again).count() == 1


def test_sign_needs_the_chief_complaint_and_a_tcm_disease_and_syndrome(visit, dr_li, codes):
    record_save_draft(user=dr_li, consultation_id=visit.pk, data={"advice": "多饮水"})
    with pytest.raises(ValidationFailed) as exc:
        record_sign(user=dr_li, consultation_id=visit.pk)
    assert exc.value.code == "record_incomplete"
    assert exc.value.detail == {"missing": ["chief_complaint", "tcm_disease", "tcm_syndrome"]}
    record_save_draft(user=dr_li, consultation_id=visit.pk, data=draft(codes, tcm_syndrome_id=None))
    with pytest.raises(ValidationFailed) as exc:
        record_sign(user=dr_li, consultation_id=visit.pk)
    assert exc.value.detail == {"missing": ["tcm_syndrome"]}
    assert not ClinicalRecordVersion.objects.exists()


def _other_syndrome(codes):
    return codes("tcm_syndrome", "肝胃不和证")


TAMPERS = {
    "record advice": (lambda r, v, codes: ClinicalRecord.objects.filter(pk=r.pk).update(advice="可以吃冷饮"),
                      "record_differs_from_signed_version", {"version": 1, "fields": ["advice"]}),
    "record diagnosis": (lambda r, v, codes: ClinicalRecord.objects.filter(pk=r.pk).update(
        tcm_syndrome=_other_syndrome(codes)), "record_differs_from_signed_version",
        {"version": 1, "fields": ["tcm_syndrome"]}),
    "record back to draft": (lambda r, v, codes: ClinicalRecord.objects.filter(pk=r.pk).update(status="draft"),
                             "record_state_mismatch", {"status": "draft", "version": 1, "latest": 1}),
    "version content": (lambda r, v, codes: ClinicalRecordVersion.objects.filter(pk=v.pk).update(
        content={**v.content, "advice": "可以吃冷饮"}), "version_digest_mismatch", {"version": 1}),
    "version content and digest": (lambda r, v, codes: ClinicalRecordVersion.objects.filter(pk=v.pk).update(
        content={**v.content, "advice": "可以吃冷饮"},
        digest=sm3_hex(canonical_bytes({**v.content, "advice": "可以吃冷饮"}))),
        "version_signature_invalid", {"version": 1}),
    "version signature": (lambda r, v, codes: ClinicalRecordVersion.objects.filter(pk=v.pk).update(
        signature=v.signature[:-2] + format(int(v.signature[-2:], 16) ^ 1, "02x")),
        "version_signature_invalid", {"version": 1}),
    "version signed_at column": (lambda r, v, codes: ClinicalRecordVersion.objects.filter(pk=v.pk).update(
        signed_at=v.signed_at.replace(microsecond=(v.signed_at.microsecond + 1) % 10**6)),
        "version_metadata_mismatch", {"version": 1, "fields": ["signed_at"]}),
}


@pytest.mark.parametrize("tamper", TAMPERS, ids=list(TAMPERS))
def test_a_silent_database_edit_is_detected_and_named(visit, dr_li, codes, tamper):
    record = signed(visit, dr_li, codes)
    v1 = ClinicalRecordVersion.objects.get(record=record)
    edit, problem, detail = TAMPERS[tamper]
    edit(record, v1, codes)
    result = record_verify(consultation_id=visit.pk)
    assert (result.valid, result.problem, result.detail) == (False, problem, detail)


def test_amendment_creates_a_second_signed_version_and_both_verify(visit, dr_li, codes):
    record = signed(visit, dr_li, codes)
    new_syndrome = _other_syndrome(codes)
    record = record_amend(user=dr_li, consultation_id=visit.pk, reason="复核舌脉后修正证型",
                          data={"tcm_syndrome_id": new_syndrome.pk, "advice": "忌生冷，畅情志",
                                "tongue_note": "边有齿痕"})  # unchanged: not listed
    assert (record.status, record.version) == ("signed", 2)
    stored = ClinicalRecord.objects.get(pk=record.pk)
    assert (stored.version, stored.tcm_syndrome_id, stored.advice) == (2, new_syndrome.pk, "忌生冷，畅情志")
    v1, v2 = ClinicalRecordVersion.objects.filter(record=record).order_by("version")
    assert v1.content["tcm_syndrome"]["name"] == "脾胃虚寒证"  # the first signature is untouched
    assert v2.reason == "复核舌脉后修正证型" and v2.content["version"] == 2
    assert v2.content["amendment"] == {"reason": "复核舌脉后修正证型", "changed_fields": ["advice", "tcm_syndrome"]}
    assert v2.content["tcm_syndrome"] == {"system": "tcm_syndrome", "code": new_syndrome.code, "name": "肝胃不和证"}
    result = record_verify(consultation_id=visit.pk)
    assert result.valid and [(c.version, c.problem) for c in result.versions] == [(1, ""), (2, "")]
    audit = AuditEvent.objects.get(action="consultation.record_amended")
    assert audit.detail["changes"] == {
        "advice": {"before": "忌生冷，饭后半小时服药", "after": "忌生冷，畅情志"},
        "tcm_syndrome": {"before": {"system": "tcm_syndrome", "code": "QH-S-001", "name": "脾胃虚寒证"},
                         "after": {"system": "tcm_syndrome", "code": new_syndrome.code, "name": "肝胃不和证"}}}
    ClinicalRecordVersion.objects.filter(pk=v2.pk).delete()  # losing the latest version is noticed too
    assert record_verify(consultation_id=visit.pk).problem == "versions_differ_from_audit_log"


def test_amendment_needs_a_reason_and_a_change_and_a_signed_record(visit, dr_li, codes):
    record_save_draft(user=dr_li, consultation_id=visit.pk, data=draft(codes))
    with pytest.raises(Conflict) as exc:
        record_amend(user=dr_li, consultation_id=visit.pk, data={"advice": "x"}, reason="r")
    assert exc.value.code == "record_not_signed"
    record_sign(user=dr_li, consultation_id=visit.pk)
    for reason in ("", "   "):
        with pytest.raises(ValidationFailed) as exc:
            record_amend(user=dr_li, consultation_id=visit.pk, data={"advice": "x"}, reason=reason)
        assert exc.value.code == "reason_required"
    with pytest.raises(ValidationFailed) as exc:
        record_amend(user=dr_li, consultation_id=visit.pk, data={"advice": draft(codes)["advice"]}, reason="无")
    assert exc.value.code == "amendment_without_changes"
    with pytest.raises(ValidationFailed) as exc:
        record_amend(user=dr_li, consultation_id=visit.pk, data={"chief_complaint": ""}, reason="清空主诉")
    assert exc.value.code == "record_incomplete"
    assert ClinicalRecordVersion.objects.count() == 1 and record_verify(consultation_id=visit.pk).valid


def test_signing_key_is_made_once_and_its_private_key_is_encrypted(dr_li):
    key = signing_key_for(dr_li)
    assert signing_key_for(dr_li).pk == key.pk and SigningKey.objects.filter(owner=dr_li).count() == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT private_key FROM consultations_signingkey WHERE id = %s", [key.pk])
        stored = cursor.fetchone()[0]
    plain = SigningKey.objects.get(pk=key.pk).private_key
    assert stored.startswith("sm4gcm:") and plain not in stored and len(plain) == 64


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_signatures_make_one_key(dr_li):
    barrier, keys = threading.Barrier(8), []

    def first_use():
        barrier.wait()
        try:
            keys.append(signing_key_for(dr_li).pk)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 8 and len(set(keys)) == 1 and SigningKey.objects.filter(owner=dr_li).count() == 1


# --- the staff HTTP API ---------------------------------------------------------------------------------------------

def test_staff_record_over_http_draft_sign_amend_verify(visit, dr_li, codes):
    client = staff(dr_li)
    base = f"/api/staff/consultations/{visit.pk}/record"
    blank = client.get(base).json()
    assert (blank["id"], blank["status"], blank["version"], blank["allergy_history"]) == (None, "draft", 0, "青霉素")
    saved = put(client, base, draft(codes))
    assert saved.status_code == 200, saved.content
    body = saved.json()
    assert body["tcm_disease"] == {"id": str(codes("tcm_disease", "胃脘痛").pk), "code": "QH-D-001", "name": "胃脘痛"}
    assert body["pulse"] == ["deep", "thready"] and body["versions"] == []
    partial = put(client, base, {"advice": "忌生冷"}).json()
    assert partial["advice"] == "忌生冷" and partial["chief_complaint"] == draft(codes)["chief_complaint"]
    sign = post(client, f"{base}/sign")
    assert sign.status_code == 200 and sign.json()["status"] == "signed"
    assert [(v["version"], v["signed_by"], len(v["digest"])) for v in sign.json()["versions"]] == [(1, "李医生", 64)]
    refused = put(client, base, {"advice": "改一下"})
    assert refused.status_code == 409 and refused.json()["code"] == "record_signed_use_amendment"
    no_reason = post(client, f"{base}/amend", {"advice": "改一下"})
    assert no_reason.status_code == 422 and no_reason.json()["code"] == "validation_error"
    amended = post(client, f"{base}/amend", {"advice": "改一下", "reason": "补充医嘱"})
    assert amended.status_code == 200 and amended.json()["version"] == 2
    assert [v["reason"] for v in amended.json()["versions"]] == ["", "补充医嘱"]
    verify = client.get(f"{base}/verify").json()
    assert verify == {"consultation_id": str(visit.pk), "valid": True, "problem": "", "detail": {}, "versions": [
        {"version": 1, "digest_ok": True, "signature_ok": True, "problem": "", "detail": {}},
        {"version": 2, "digest_ok": True, "signature_ok": True, "problem": "", "detail": {}}]}
    ClinicalRecord.objects.filter(consultation=visit).update(advice="悄悄改了")
    broken = client.get(f"{base}/verify").json()
    assert (broken["valid"], broken["problem"], broken["detail"]) == (
        False, "record_differs_from_signed_version", {"version": 2, "fields": ["advice"]})
    reads = AuditEvent.objects.filter(action="consultation.read_record", object_id=str(visit.pk),
                                      actor_id=str(dr_li.pk))
    assert reads.count() == 3  # the GET and the two checks


@pytest.mark.parametrize(("change", "code", "detail"), [
    ({"tongue_body": "rainbow"}, "record_vocab_invalid", {"field": "tongue_body", "value": "rainbow"}),
    ({"tongue_coating": "pale"}, "record_vocab_invalid", {"field": "tongue_coating", "value": "pale"}),
    ({"pulse": ["wiry", "fast"]}, "record_vocab_invalid", {"field": "pulse", "value": ["fast"]}),
    ({"pulse": ["wiry", "wiry"]}, "record_vocab_invalid", {"field": "pulse", "value": ["wiry", "wiry"]}),
    ({"pulse": ["wiry", "thready", "rapid", "slippery", "deep", "weak"]}, "record_vocab_invalid",
     {"field": "pulse", "max_items": 5}),
    ({"tcm_disease_id": "syndrome"}, "diagnosis_code_invalid", {"field": "tcm_disease_id", "system": "tcm_disease"}),
    ({"western_diagnosis_id": "disease"}, "diagnosis_code_invalid",
     {"field": "western_diagnosis_id", "system": "icd10"}),
    ({"tcm_syndrome_id": "inactive"}, "diagnosis_code_invalid", {"field": "tcm_syndrome_id", "system": "tcm_syndrome"}),
])
def test_vocab_and_code_errors_are_422_with_the_envelope(visit, dr_li, codes, change, code, detail):
    syndrome, disease = codes("tcm_syndrome", "脾胃虚寒证"), codes("tcm_disease", "胃脘痛")
    inactive = codes("tcm_syndrome", "肝胃不和证")
    DiagnosisCode.objects.filter(pk=inactive.pk).update(is_active=False)
    ids = {"syndrome": syndrome.pk, "disease": disease.pk, "inactive": inactive.pk}
    change = {k: ids.get(v, v) if isinstance(v, str) else v for k, v in change.items()}
    resp = put(staff(dr_li), f"/api/staff/consultations/{visit.pk}/record", draft(codes) | change)
    assert resp.status_code == 422
    assert resp.json() == {"code": code, "message": resp.json()["message"], "detail": detail}
    assert resp.json()["message"] and not ClinicalRecord.objects.exists()


def test_only_the_assigned_doctor_reaches_the_record(visit, dr_li, dr_wu, pharmacist_zhao, codes):
    signed(visit, dr_li, codes)
    base = f"/api/staff/consultations/{visit.pk}/record"
    calls = [("get", base), ("put", base), ("post", f"{base}/sign"), ("post", f"{base}/amend"),
             ("get", f"{base}/verify")]
    for user, status, code in ((dr_wu, 404, "consultation_not_found"), (pharmacist_zhao, 403, "doctor_only")):
        client = staff(user)
        for method, path in calls:
            payload = {"advice": "x", "reason": "y"}
            resp = client.get(path) if method == "get" else getattr(client, method)(
                path, json.dumps(payload), content_type="application/json")
            assert (resp.status_code, resp.json()["code"]) == (status, code), (user, method, path)
    assert Client().get(base).status_code == 401
    assert ClinicalRecordVersion.objects.count() == 1 and ClinicalRecord.objects.get().advice == draft(codes)["advice"]


def test_the_record_is_written_only_while_the_visit_is_open(wang, dr_li, codes):
    user, patient = wang
    waiting = paid(started(user, patient, dr_li))
    with pytest.raises(Conflict) as exc:
        record_save_draft(user=dr_li, consultation_id=waiting.pk, data={"advice": "x"})
    assert exc.value.code == "consultation_not_open_for_record"


def test_vocab_endpoint_lists_the_choices(dr_li):
    vocab = staff(dr_li).get("/api/staff/record-vocab").json()
    assert {"code": "pale_red", "label": "淡红舌"} in vocab["tongue_body"]
    assert {"code": "yellow_greasy", "label": "黄腻苔"} in vocab["tongue_coating"]
    assert [p["label"] for p in vocab["pulse"]][:3] == ["平", "浮", "沉"] and len(vocab["pulse"]) == 29


# --- the patient's view ---------------------------------------------------------------------------------------------

def test_the_patient_sees_only_the_signed_record_of_their_own_visit(visit, wang, dr_li, codes):
    user, _patient = wang
    client = patient_client(user)
    path = f"/api/consultations/{visit.pk}/record"
    record_save_draft(user=dr_li, consultation_id=visit.pk, data=draft(codes))
    before = client.get(path)
    assert (before.status_code, before.json()["code"]) == (404, "record_not_signed")
    record_sign(user=dr_li, consultation_id=visit.pk)
    seen = client.get(path)
    assert seen.status_code == 200, seen.content
    body = seen.json()
    assert (body["version"], body["doctor_name"], body["advice"]) == (1, "李医生", "忌生冷，饭后半小时服药")
    assert body["tcm_syndrome"] == {"system": "tcm_syndrome", "code": "QH-S-001", "name": "脾胃虚寒证"}
    assert body["pulse"] == [{"code": "deep", "label": "沉"}, {"code": "thready", "label": "细"}]
    record_amend(user=dr_li, consultation_id=visit.pk, data={"advice": "忌生冷，畅情志"}, reason="补充医嘱")
    ClinicalRecord.objects.filter(consultation=visit).update(advice="未签名的改动")  # never shown
    assert client.get(path).json()["advice"] == "忌生冷，畅情志" and client.get(path).json()["version"] == 2
    stranger, _ = patient_account("stranger_record")
    other = patient_client(stranger).get(path)
    assert (other.status_code, other.json()["code"]) == (404, "consultation_not_found")
    assert Client().get(path).status_code == 401
    reads = AuditEvent.objects.filter(action="consultation.read_record", actor_id=str(user.pk))
    assert list(reads.values_list("detail__role", flat=True)) == ["patient", "patient", "patient"]


# --- the code table -------------------------------------------------------------------------------------------------


def test_a_visit_terminated_for_offline_care_is_recorded_and_signed(visit, dr_li, codes):
    from backend.consultations.services.lifecycle import consultation_terminate

    record_save_draft(user=dr_li, consultation_id=visit.pk, data=draft(codes))
    consultation_terminate(user=dr_li, consultation_id=visit.pk, reason="腹痛加重，需到院检查")
    record = record_sign(user=dr_li, consultation_id=visit.pk)  # IH-02: the decision has its signed record
    assert record.status == "signed" and record_verify(consultation_id=visit.pk).valid
