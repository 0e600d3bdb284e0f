"""Writing the record: drafts, the signature, amendments; and the audited reads (IH-22, IH-23)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from backend.consultations.models import ClinicalRecord, ClinicalRecordVersion, Consultation
from backend.consultations.selectors import (
    consultation_for_doctor,
    consultation_for_patient,
    consultation_qs_for_update,
    doctor_of,
)
from backend.consultations.services.records.fields import (
    TEXT_LIMITS,
    record_assert_signable,
    record_clinical,
    record_input_validated,
)
from backend.consultations.services.records.signing import version_sign
from backend.consultations.services.records.verify import RecordVerification, record_verify
from backend.consultations.states import ConsultStatus, RecordStatus
from backend.core.audit import audit_record
from backend.core.errors import Conflict, NotFound, ValidationFailed
from backend.core.transitions import transition

RECORD_OPEN = (ConsultStatus.IN_PROGRESS, ConsultStatus.ENDED, ConsultStatus.TERMINATED)  # IH-02 is recorded too
_RELATED = ("tcm_disease", "tcm_syndrome", "western_diagnosis", "doctor__user")


def _own_consultation(user, consultation_id: object, *, lock: bool = False) -> Consultation:
    """The consultation if ``user`` is its assigned doctor (a pharmacist gets 403, another doctor 404)."""
    doctor = doctor_of(user)
    c = consultation_for_doctor(doctor=doctor, consultation_id=consultation_id)
    if c.doctor_id != doctor.pk:
        raise NotFound(_("复诊不存在"), code="consultation_not_found")
    if lock:
        c = consultation_qs_for_update().select_related("patient", "doctor__user").get(pk=c.pk)
    return c


def _record_of(c: Consultation, *, lock: bool = False) -> ClinicalRecord | None:
    qs = ClinicalRecord.objects.select_for_update(of=("self",)) if lock else ClinicalRecord.objects
    record = qs.select_related(*_RELATED).filter(consultation=c).first()
    if record is not None:
        record.consultation = c
    return record


def _require_open(c: Consultation) -> None:
    if c.status not in RECORD_OPEN:
        raise Conflict(_("只能在问诊中或问诊结束后书写病历"), code="consultation_not_open_for_record",
                       detail={"status": c.status})


def _profile_allergies(c: Consultation) -> str:
    return c.patient.allergies.strip()[:TEXT_LIMITS["allergy_history"]]


def _blank_record(c: Consultation) -> ClinicalRecord:
    """A new draft; 过敏史 starts from the patient's profile."""
    return ClinicalRecord(consultation=c, doctor=c.doctor, allergy_history=_profile_allergies(c))


@transaction.atomic
def record_save_draft(*, user, consultation_id: object, data: dict[str, Any]) -> ClinicalRecord:
    """Create or update the draft with the fields present in ``data`` (codes as ``<field>_id``)."""
    c = _own_consultation(user, consultation_id, lock=True)
    _require_open(c)
    record = _record_of(c, lock=True)
    if record is not None and record.status == RecordStatus.SIGNED:
        raise Conflict(_("病历已签名，修改请提交修订并说明原因"), code="record_signed_use_amendment")
    changes = record_input_validated(data)
    created = record is None
    record = record or _blank_record(c)
    for attr, value in changes.items():
        setattr(record, attr, value)
    if created and not record.allergy_history:
        record.allergy_history = _profile_allergies(c)
    record.save()
    audit_record(action="consultation.record_saved", actor=user, obj=c,
                 detail={"record": str(record.pk), "fields": sorted(changes), "created": created})
    return record


@transaction.atomic
def record_sign(*, user, consultation_id: object) -> ClinicalRecord:
    """Sign the draft as version 1 (SM3 digest, SM2 signature); a repeated sign is "already done"."""
    c = _own_consultation(user, consultation_id, lock=True)
    record = _record_of(c, lock=True)
    if record is None:
        raise NotFound(_("尚未书写病历"), code="record_not_found")
    if record.status == RecordStatus.SIGNED:
        return record
    _require_open(c)
    record_assert_signable(record)
    version = version_sign(record, user=user, number=1)
    transition(ClinicalRecord, pk=record.pk, source=[RecordStatus.DRAFT], target=RecordStatus.SIGNED, version=1,
               updated_at=version.signed_at)
    record.status, record.version = RecordStatus.SIGNED, 1
    audit_record(action="consultation.record_signed", actor=user, obj=c,
                 detail={"record": str(record.pk), "version": 1, "digest": version.digest, "key": str(version.key_id)})
    return record


@transaction.atomic
def record_amend(*, user, consultation_id: object, data: dict[str, Any], reason: str) -> ClinicalRecord:
    """A change to a signed record: applied together with a new signed version n+1 that names the reason
    and the changed fields (the audit row keeps the before/after values)."""
    reason = (reason or "").strip()
    if not reason or len(reason) > 200:
        raise ValidationFailed(_("请填写修改原因（200字以内）"), code="reason_required")
    c = _own_consultation(user, consultation_id, lock=True)
    record = _record_of(c, lock=True)
    if record is None or record.status != RecordStatus.SIGNED:
        raise Conflict(_("病历尚未签名，请直接修改草稿"), code="record_not_signed")
    changes = record_input_validated(data)
    before = record_clinical(record)
    for attr, value in changes.items():
        setattr(record, attr, value)
    after = record_clinical(record)
    changed = [f for f in before if before[f] != after[f]]
    if not changed:
        raise ValidationFailed(_("修订内容与当前病历相同"), code="amendment_without_changes")
    record_assert_signable(record)
    number = record.version + 1
    version = version_sign(record, user=user, number=number, reason=reason, changed_fields=changed)
    values = {f.attname: getattr(record, f.attname) for f in map(ClinicalRecord._meta.get_field, changed)}
    if not ClinicalRecord.objects.filter(pk=record.pk, version=number - 1, status=RecordStatus.SIGNED).update(
            version=number, updated_at=version.signed_at, **values):
        raise Conflict(_("病历已被修改，请刷新后重试"), code="record_changed_meanwhile")
    record.version = number
    audit_record(action="consultation.record_amended", actor=user, obj=c, detail={
        "record": str(record.pk), "version": number, "reason": reason, "digest": version.digest,
        "key": str(version.key_id), "changes": {f: {"before": before[f], "after": after[f]} for f in changed}})
    return record


def record_read(*, user, consultation_id: object, ip: str = "") -> ClinicalRecord:
    """The doctor's view (audited): the record, or an unsaved blank draft when none was written yet."""
    c = _own_consultation(user, consultation_id)
    record = _record_of(c) or _blank_record(c)
    audit_record(action="consultation.read_record", actor=user, obj=c, ip=ip,
                 detail={"role": "doctor", "version": record.version})
    return record


def record_verify_for_doctor(*, user, consultation_id: object, ip: str = "") -> RecordVerification:
    """The doctor checks their own record (the check reads the content, so it is audited as a read)."""
    c = _own_consultation(user, consultation_id)
    audit_record(action="consultation.read_record", actor=user, obj=c, ip=ip,
                 detail={"role": "doctor", "purpose": "verify"})
    return record_verify(consultation_id=c.pk)


def record_signed_for_patient(*, account, consultation_id: object, ip: str = "") -> ClinicalRecordVersion:
    """IH-22: the patient sees the latest signed version (never a draft) of their own consultation."""
    c = consultation_for_patient(account=account, consultation_id=consultation_id)
    latest = ClinicalRecordVersion.objects.filter(record__consultation=c).order_by("-version").first()
    if latest is None:
        raise NotFound(_("病历尚未签名"), code="record_not_signed")
    audit_record(action="consultation.read_record", actor=account, obj=c, ip=ip,
                 detail={"role": "patient", "version": latest.version})
    return latest


def record_versions(record: ClinicalRecord) -> list[ClinicalRecordVersion]:
    if record._state.adding:
        return []
    return list(ClinicalRecordVersion.objects.filter(record=record).select_related("signed_by").order_by("version"))
