"""在线复诊 for patients: eligibility and start (before payment), the visit, its messages and images."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from ninja import File, Router, Schema, Status
from ninja.files import UploadedFile

from backend.accounts.selectors import patient_profile_owned
from backend.consultations.models import Consultation, OnlineService
from backend.consultations.schemas import IceServersOut, MediaOut, MessageIn, MessageOut, media_out, message_out
from backend.consultations.selectors import consent_terms_current, consultation_for_patient, messages_after
from backend.consultations.services.eligibility import StartRequest, consultation_start, offline_visits_for
from backend.consultations.services.ice import ice_servers_for_visit
from backend.consultations.services.lifecycle import consultation_cancel
from backend.consultations.services.media import media_store, upload_bytes
from backend.consultations.services.messages import message_post, message_recall
from backend.consultations.services.reads import consultation_read_audited, media_upload_for_party
from backend.consultations.states import ConsultKind, ConsultStatus, EligibilityStatus, MediaPurpose, ProofKind
from backend.core.audit import audit_record
from backend.core.authz import client_ip
from miniprogram_api.auth import access_token_auth
from miniprogram_api.errors import ERRORS
from miniprogram_api.schemas import text

router = Router(tags=["consultations"], auth=access_token_auth)


class TermsOut(Schema):
    version: str
    title: str
    body: str


class ServiceOut(Schema):
    id: UUID
    kind: ConsultKind
    department_id: UUID
    department: str
    doctor_id: UUID | None
    doctor_name: str | None
    doctor_title: str | None
    fee_fen: int


class OfflineVisitOut(Schema):
    id: UUID
    visit_date: date
    department_name: str
    doctor_name: str
    diagnosis: str


class StartIn(Schema):
    patient_id: UUID
    service_id: UUID
    terms_version: text(16, 1)
    complaint: text(2000) = ""
    offline_visit_id: UUID | None = None
    proof_media_ids: list[UUID] = []
    proof_kind: ProofKind | None = None
    stated_diagnosis: text(200) = ""
    guardian_present: bool = False
    accompanying_doctor: text(100) = ""


class ConsultationOut(Schema):
    id: UUID
    status: ConsultStatus
    kind: ConsultKind
    patient_id: UUID
    patient_name: str
    department: str
    doctor_id: UUID | None
    doctor_name: str | None
    fee_fen: int
    prior_diagnosis: str
    eligibility_status: EligibilityStatus
    pay_before: datetime
    accept_before: datetime | None
    accepted_at: datetime | None
    ended_at: datetime | None
    end_reason: str
    follow_up_until: datetime | None
    last_seq: int
    payable_kind: str = "consultation"


class CancelIn(Schema):
    reason: text(200) = ""


def consultation_out(c: Consultation) -> ConsultationOut:
    doctor = c.doctor
    return ConsultationOut(
        id=c.pk, status=c.status, kind=c.kind, patient_id=c.patient_id, patient_name=c.patient.name,
        department=c.department.name, doctor_id=c.doctor_id,
        doctor_name=(doctor.user.display_name or doctor.user.username) if doctor else None, fee_fen=c.fee_fen,
        prior_diagnosis=c.prior_diagnosis, eligibility_status=c.eligibility_status, pay_before=c.pay_before,
        accept_before=c.accept_before, accepted_at=c.accepted_at, ended_at=c.ended_at, end_reason=c.end_reason,
        follow_up_until=c.follow_up_until, last_seq=c.last_seq)


@router.get("/consult/terms", response={200: TermsOut, **ERRORS}, summary="The current online-care consent text")
def terms(request):
    t = consent_terms_current()
    return TermsOut(version=t.version, title=t.title, body=t.body)


@router.get("/consult/services", response={200: list[ServiceOut], **ERRORS},
            summary="Open online follow-up services (a doctor's, or a department pool's) with fees")
def services(request, department_id: UUID | None = None, doctor_id: UUID | None = None):
    qs = OnlineService.objects.filter(is_open=True).select_related("department", "doctor__user")
    if department_id:
        qs = qs.filter(department_id=department_id)
    if doctor_id:
        qs = qs.filter(doctor_id=doctor_id)
    return [ServiceOut(id=s.pk, kind=s.kind, department_id=s.department_id, department=s.department.name,
                       doctor_id=s.doctor_id, fee_fen=s.fee_fen,
                       doctor_name=(s.doctor.user.display_name or s.doctor.user.username) if s.doctor else None,
                       doctor_title=s.doctor.get_title_display() if s.doctor else None) for s in qs]


@router.get("/patients/{patient_id}/offline-visits", response={200: list[OfflineVisitOut], **ERRORS},
            summary="The 就诊人's recent visits at our clinic that can found a follow-up")
def offline_visits(request, patient_id: UUID):
    patient = patient_profile_owned(owner=request.auth, profile_id=patient_id)
    return [OfflineVisitOut(id=v.pk, visit_date=v.visit_date, department_name=v.department_name,
                            doctor_name=v.doctor_name, diagnosis=v.diagnosis_text) for v in offline_visits_for(patient)]


@router.post("/consult/proofs", response={201: MediaOut, **ERRORS},
             summary="Upload a photo of a prior diagnosis (门诊病历, 出院小结, 诊断证明 …)")
def upload_proof(request, file: UploadedFile = File(...)):
    media = media_store(uploader=request.auth, purpose=MediaPurpose.PROOF, data=upload_bytes(file))
    return Status(201, media_out(media))


@router.post("/consultations", response={201: ConsultationOut, **ERRORS},
             summary="Start a follow-up: eligibility and consent are checked before payment")
def start(request, payload: StartIn):
    req = StartRequest(**{**payload.dict(), "proof_kind": payload.proof_kind or "",
                          "proof_media_ids": tuple(payload.proof_media_ids)})
    c = consultation_start(account=request.auth, req=req, ip=client_ip(request))
    return Status(201, consultation_out(consultation_for_patient(account=request.auth, consultation_id=c.pk)))


@router.get("/consultations", response={200: list[ConsultationOut], **ERRORS}, summary="My consultations")
def my_consultations(request, status: ConsultStatus | None = None):
    qs = Consultation.objects.filter(account=request.auth).select_related("patient", "doctor__user", "department")
    if status:
        qs = qs.filter(status=status)
    items = list(qs[:100])
    audit_record(action="consultation.read_list", actor=request.auth, ip=client_ip(request),
                 object_type="consultations.consultation", detail={"ids": [str(c.pk) for c in items]})
    return [consultation_out(c) for c in items]


@router.get("/consultations/{consultation_id}", response={200: ConsultationOut, **ERRORS}, summary="A consultation")
def get_consultation(request, consultation_id: UUID):
    c = consultation_read_audited(user=request.auth, consultation_id=consultation_id, ip=client_ip(request))
    return consultation_out(c)


@router.post("/consultations/{consultation_id}/cancel", response={200: ConsultationOut, **ERRORS},
             summary="Cancel before the doctor accepts (a paid visit is refunded in full)")
def cancel(request, consultation_id: UUID, payload: CancelIn):
    c = consultation_cancel(account=request.auth, consultation_id=consultation_id, reason=payload.reason)
    return consultation_out(consultation_for_patient(account=request.auth, consultation_id=c.pk))


@router.get("/consultations/{consultation_id}/messages", response={200: list[MessageOut], **ERRORS},
            summary="Messages after a sequence number (what a reconnecting client missed)")
def list_messages(request, consultation_id: UUID, after_seq: int = 0):
    c = consultation_read_audited(user=request.auth, consultation_id=consultation_id, ip=client_ip(request),
                                  what="messages")
    return [message_out(m) for m in messages_after(consultation_id=c.pk, after_seq=max(after_seq, 0))]


@router.post("/consultations/{consultation_id}/messages", response={200: MessageOut, 201: MessageOut, **ERRORS},
             summary="Send a message over HTTP (the WebSocket does the same); client_msg_id makes resends safe")
def send_message(request, consultation_id: UUID, payload: MessageIn):
    message, created = message_post(user=request.auth, consultation_id=consultation_id, kind=payload.kind,
                                    body=payload.body, payload=payload.payload, client_msg_id=payload.client_msg_id)
    return Status(201 if created else 200, message_out(message))


@router.post("/consultations/{consultation_id}/messages/{seq}/recall", response={200: MessageOut, **ERRORS},
             summary="Recall my own message within 2 minutes")
def recall(request, consultation_id: UUID, seq: int):
    return message_out(message_recall(user=request.auth, consultation_id=consultation_id, seq=seq))


@router.post("/consultations/{consultation_id}/media", response={201: MediaOut, **ERRORS},
             summary="Upload an image for the chat or a tongue photo (then send it as a message)")
def upload_media(request, consultation_id: UUID, purpose: MediaPurpose = MediaPurpose.CHAT_IMAGE,
                 file: UploadedFile = File(...)):
    media = media_upload_for_party(user=request.auth, consultation_id=consultation_id, purpose=purpose,
                                   data=upload_bytes(file))
    return Status(201, media_out(media))


@router.get("/consultations/{consultation_id}/ice-servers", response={200: IceServersOut, **ERRORS},
            summary="STUN/TURN servers with time-limited TURN credentials for a video visit")
def ice(request, consultation_id: UUID):
    servers, expires = ice_servers_for_visit(user=request.auth, consultation_id=consultation_id)
    return IceServersOut(ice_servers=servers, expires_at=expires)
