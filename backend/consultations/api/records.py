"""The doctor console's record endpoints: the 中医门诊病历 (draft, sign, amend, verify), the code table, the vocab."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any
from uuid import UUID

from ninja import Field, Router, Schema
from ninja.security import django_auth

from backend.consultations.models import ClinicalRecord, DiagnosisCode
from backend.consultations.models.records import CodeSystem
from backend.consultations.services import records
from backend.consultations.services.records.fields import TEXT_LIMITS
from backend.consultations.states import RecordStatus
from backend.consultations.vocab import vocab_choices
from backend.core.authz import client_ip
from miniprogram_api.errors import ERRORS
from miniprogram_api.schemas import text

router = Router(tags=["staff: records"], auth=django_auth)


class CodeOut(Schema):
    id: UUID
    code: str
    name: str


class CodeSearchOut(CodeOut):
    system: CodeSystem
    initials: str
    edition: str


class VersionOut(Schema):
    version: int
    signed_at: datetime
    digest: str
    reason: str
    signed_by: str


class RecordFields(Schema):
    chief_complaint: text(TEXT_LIMITS["chief_complaint"]) = ""
    present_illness: text(TEXT_LIMITS["present_illness"]) = ""
    past_history: text(TEXT_LIMITS["past_history"]) = ""
    allergy_history: text(TEXT_LIMITS["allergy_history"]) = ""
    tongue_body: text(32) = Field("", description="a code of /staff/record-vocab tongue_body")
    tongue_coating: text(32) = Field("", description="a code of /staff/record-vocab tongue_coating")
    tongue_note: text(TEXT_LIMITS["tongue_note"]) = ""
    pulse: list[text(32)] = Field([], max_length=16, description="codes of /staff/record-vocab pulse")
    pulse_note: text(TEXT_LIMITS["pulse_note"]) = ""
    treatment_principle: text(TEXT_LIMITS["treatment_principle"]) = ""
    advice: text(TEXT_LIMITS["advice"]) = ""


class RecordIn(RecordFields):
    """Only the fields sent are changed; a code id of null clears that diagnosis."""

    tcm_disease_id: UUID | None = None
    tcm_syndrome_id: UUID | None = None
    western_diagnosis_id: UUID | None = None


class AmendIn(RecordIn):
    reason: text(200, 1)


class RecordOut(RecordFields):
    id: UUID | None
    consultation_id: UUID
    status: RecordStatus
    version: int
    tcm_disease: CodeOut | None
    tcm_syndrome: CodeOut | None
    western_diagnosis: CodeOut | None
    versions: list[VersionOut]


class VersionCheckOut(Schema):
    version: int
    digest_ok: bool
    signature_ok: bool
    problem: str
    detail: dict[str, Any]


class VerifyOut(Schema):
    consultation_id: UUID
    valid: bool
    problem: str
    detail: dict[str, Any]
    versions: list[VersionCheckOut]


class TermOut(Schema):
    code: str
    label: str


class VocabOut(Schema):
    tongue_body: list[TermOut]
    tongue_coating: list[TermOut]
    pulse: list[TermOut]


def _code(code: DiagnosisCode | None) -> CodeOut | None:
    return CodeOut(id=code.pk, code=code.code, name=code.name) if code else None


def record_out(record: ClinicalRecord) -> RecordOut:
    versions = [VersionOut(version=v.version, signed_at=v.signed_at, digest=v.digest, reason=v.reason,
                           signed_by=str(v.signed_by)) for v in records.record_versions(record)]
    return RecordOut(
        **{f: getattr(record, f) for f in RecordFields.model_fields}, versions=versions,
        id=None if record._state.adding else record.pk, consultation_id=record.consultation_id,
        status=record.status, version=record.version, tcm_disease=_code(record.tcm_disease),
        tcm_syndrome=_code(record.tcm_syndrome), western_diagnosis=_code(record.western_diagnosis))


@router.get("/staff/consultations/{consultation_id}/record", response={200: RecordOut, **ERRORS},
            summary="The visit's record (audited); a blank draft with 过敏史 from the profile if none yet")
def record_get(request, consultation_id: UUID):
    return record_out(records.record_read(user=request.user, consultation_id=consultation_id,
                                          ip=client_ip(request)))


@router.put("/staff/consultations/{consultation_id}/record", response={200: RecordOut, **ERRORS},
            summary="Save the draft (only the fields sent); refused once signed: amend instead")
def record_put(request, consultation_id: UUID, payload: RecordIn):
    return record_out(records.record_save_draft(user=request.user, consultation_id=consultation_id,
                                                data=payload.dict(exclude_unset=True)))


@router.post("/staff/consultations/{consultation_id}/record/sign", response={200: RecordOut, **ERRORS},
             summary="Sign the record (SM3 digest, the doctor's SM2 signature): version 1")
def record_sign(request, consultation_id: UUID):
    return record_out(records.record_sign(user=request.user, consultation_id=consultation_id))


@router.post("/staff/consultations/{consultation_id}/record/amend", response={200: RecordOut, **ERRORS},
             summary="Amend a signed record: the changes and a reason become a new signed version")
def record_amend(request, consultation_id: UUID, payload: AmendIn):
    data = payload.dict(exclude_unset=True)
    reason = data.pop("reason")
    return record_out(records.record_amend(user=request.user, consultation_id=consultation_id, data=data,
                                           reason=reason))


@router.get("/staff/consultations/{consultation_id}/record/verify", response={200: VerifyOut, **ERRORS},
            summary="Check every signed version and that the record still matches the latest one")
def record_verify(request, consultation_id: UUID):
    result = records.record_verify_for_doctor(user=request.user, consultation_id=consultation_id,
                                              ip=client_ip(request))
    return VerifyOut(consultation_id=result.consultation_id, valid=result.valid, problem=result.problem,
                     detail=result.detail, versions=[VersionCheckOut(**asdict(v)) for v in result.versions])


@router.get("/staff/diagnosis-codes", response={200: list[CodeSearchOut], **ERRORS},
            summary="Search active codes by name, pinyin initials or code (at most 20)")
def diagnosis_codes(request, system: CodeSystem | None = None, q: text(32) = ""):
    return [CodeSearchOut(id=c.pk, system=c.system, code=c.code, name=c.name, initials=c.initials,
                          edition=c.edition) for c in records.diagnosis_codes_search(system=system, q=q)]


@router.get("/staff/record-vocab", response={200: VocabOut, **ERRORS},
            summary="The structured choices of the record form: 舌质, 舌苔, 脉象")
def record_vocab(request):
    return vocab_choices()
