"""Tampering that re-signs with a key of its own, swaps versions between records, or removes the last
amendment: caught by checking each version against the hash-chained audit log and its own visit."""

from __future__ import annotations

import pytest

from backend.consultations.models import ClinicalRecord, ClinicalRecordVersion, SigningKey
from backend.consultations.services.records import record_amend, record_verify
from backend.consultations.services.records.fields import canonical_bytes
from backend.core.crypto import sm3_hex
from backend.core.sm2 import sm2_generate_keypair, sm2_sign
from tests.consultations.helpers import in_progress
from tests.consultations.test_records import signed
from tests.scheduling.helpers import patient_account


@pytest.fixture
def record(db, dr_li, codes):
    user, patient = patient_account("provenance")
    visit = in_progress(user, patient, dr_li)
    return signed(visit, dr_li, codes)


def _problem(record: ClinicalRecord) -> str:
    result = record_verify(consultation_id=record.consultation_id)
    assert not result.valid
    return result.problem


def test_re_signing_with_a_substituted_key_is_caught(record, dr_li):
    v1 = ClinicalRecordVersion.objects.get(record=record)
    pair = sm2_generate_keypair()
    forged_key = SigningKey.objects.create(owner=dr_li, public_key=pair.public_key, private_key=pair.private_key)
    content = {**v1.content, "advice": "可以吃冷饮"}
    message = canonical_bytes(content)
    ClinicalRecordVersion.objects.filter(pk=v1.pk).update(content=content, digest=sm3_hex(message), key=forged_key,
                                                          signature=sm2_sign(pair.private_key, message))
    ClinicalRecord.objects.filter(pk=record.pk).update(advice="可以吃冷饮")
    assert _problem(record) == "version_differs_from_audit_log"


def test_a_version_of_another_patients_record_is_caught(record, dr_li, codes):
    other = signed(in_progress(*patient_account("provenance_other"), dr_li), dr_li, codes)
    theirs = ClinicalRecordVersion.objects.get(record=other)
    ClinicalRecordVersion.objects.filter(record=record).update(
        content=theirs.content, digest=theirs.digest, signature=theirs.signature, key=theirs.key,
        signed_at=theirs.signed_at)
    assert _problem(record) == "version_of_another_record"


def test_removing_the_last_amendment_is_caught(record, dr_li, codes):
    before = ClinicalRecord.objects.get(pk=record.pk).advice
    record_amend(user=dr_li, consultation_id=record.consultation_id, data={"advice": "饭前服药"}, reason="医嘱更正")
    assert record_verify(consultation_id=record.consultation_id).valid
    ClinicalRecordVersion.objects.filter(record=record, version=2).delete()
    ClinicalRecord.objects.filter(pk=record.pk).update(version=1, advice=before)
    assert _problem(record) == "versions_differ_from_audit_log"


def test_a_key_created_after_the_signature_is_not_trusted(record):
    v1 = ClinicalRecordVersion.objects.select_related("key").get(record=record)
    SigningKey.objects.filter(pk=v1.key_id).update(created_at=v1.signed_at.replace(year=v1.signed_at.year + 1))
    assert _problem(record) == "signing_key_not_trusted"
