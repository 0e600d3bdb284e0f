"""The patient's view of the record (IH-22): the latest signed version of their own consultation."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from ninja import Router, Schema

from backend.consultations.services.records import record_signed_for_patient
from backend.core.authz import client_ip
from miniprogram_api.auth import access_token_auth
from miniprogram_api.errors import ERRORS

router = Router(tags=["consultations"], auth=access_token_auth)


class TermOut(Schema):
    code: str
    label: str


class SignedCodeOut(Schema):
    system: str
    code: str
    name: str


class SignedRecordOut(Schema):
    consultation_id: UUID
    version: int
    signed_at: datetime
    digest: str
    patient_name: str
    doctor_name: str
    chief_complaint: str
    present_illness: str
    past_history: str
    allergy_history: str
    tongue_body: TermOut | None
    tongue_coating: TermOut | None
    tongue_note: str
    pulse: list[TermOut]
    pulse_note: str
    tcm_disease: SignedCodeOut | None
    tcm_syndrome: SignedCodeOut | None
    western_diagnosis: SignedCodeOut | None
    treatment_principle: str
    advice: str


@router.get("/consultations/{consultation_id}/record", response={200: SignedRecordOut, **ERRORS},
            summary="门诊病历: the signed content only (404 record_not_signed before the doctor signs)")
def signed_record(request, consultation_id: UUID):
    version = record_signed_for_patient(account=request.user, consultation_id=consultation_id,
                                        ip=client_ip(request))
    return SignedRecordOut.model_validate({**version.content, "version": version.version,
                                           "signed_at": version.signed_at, "digest": version.digest})
