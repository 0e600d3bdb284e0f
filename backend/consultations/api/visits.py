"""The doctor console's endpoints: the queue, a visit with the patient summary, accept/end/terminate, chat."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from django.db.models import Q
from django.utils import timezone
from ninja import File, Router, Schema, Status
from ninja.files import UploadedFile
from ninja.security import django_auth

from backend.consultations.models import Consultation, MediaFile
from backend.consultations.schemas import IceServersOut, MediaOut, MessageIn, MessageOut, media_out, message_out
from backend.consultations.selectors import consultation_for_doctor, doctor_of, doctor_sees_pool, messages_after
from backend.consultations.services import lifecycle
from backend.consultations.services.ice import ice_servers_for_visit
from backend.consultations.services.media import upload_bytes
from backend.consultations.services.messages import message_post, message_recall
from backend.consultations.services.reads import media_upload_for_party
from backend.consultations.states import ConsultKind, ConsultStatus, EligibilityStatus, MediaPurpose
from backend.core.audit import audit_record
from backend.core.authz import client_ip
from miniprogram_api.errors import ERRORS
from miniprogram_api.schemas import text

router = Router(tags=["staff: consultations"], auth=django_auth)

QUEUE_STATUSES = (ConsultStatus.WAITING, ConsultStatus.IN_PROGRESS)


class QueueItemOut(Schema):
    id: UUID
    status: ConsultStatus
    kind: ConsultKind
    patient_name: str
    patient_sex: str
    patient_age: int
    prior_diagnosis: str
    eligibility_status: EligibilityStatus
    is_pool: bool
    paid_at: datetime | None
    accept_before: datetime | None
    accepted_at: datetime | None
    last_seq: int


class PatientSummaryOut(Schema):
    name: str
    sex: str
    age: int
    allergies: str
    guardian_name: str | None
    accompanying_doctor: str
    companions_confirmed_at: datetime | None


class PriorVisitOut(Schema):
    visit_date: str
    department_name: str
    doctor_name: str
    diagnosis: str


class VisitOut(QueueItemOut):
    complaint: str
    patient: PatientSummaryOut
    prior_visit: PriorVisitOut | None
    proof_kind: str
    proofs: list[MediaOut]
    ended_at: datetime | None
    end_reason: str
    follow_up_until: datetime | None


class AcceptIn(Schema):
    prior_confirmed: bool = False
    companions_confirmed: bool = False


class ReasonIn(Schema):
    reason: text(200, 1)


def _queue_item(c: Consultation) -> dict:
    today = timezone.localdate()
    return dict(id=c.pk, status=c.status, kind=c.kind, patient_name=c.patient.name,
                patient_sex=c.patient.get_sex_display(), patient_age=c.patient.age(today),
                prior_diagnosis=c.prior_diagnosis, eligibility_status=c.eligibility_status,
                is_pool=c.doctor_id is None, paid_at=c.paid_at, accept_before=c.accept_before,
                accepted_at=c.accepted_at, last_seq=c.last_seq)


def _visit_out(c: Consultation) -> VisitOut:
    p = c.patient
    v = c.prior_visit
    proofs = MediaFile.objects.filter(consultation=c, purpose=MediaPurpose.PROOF, purged_at__isnull=True)
    return VisitOut(
        **_queue_item(c), complaint=c.complaint, proof_kind=c.proof_kind, proofs=[media_out(m) for m in proofs],
        ended_at=c.ended_at, end_reason=c.end_reason, follow_up_until=c.follow_up_until,
        patient=PatientSummaryOut(name=p.name, sex=p.get_sex_display(), age=p.age(timezone.localdate()),
                                  allergies=p.allergies, guardian_name=c.guardian.name if c.guardian_id else None,
                                  accompanying_doctor=c.accompanying_doctor,
                                  companions_confirmed_at=c.companions_confirmed_at),
        prior_visit=PriorVisitOut(visit_date=v.visit_date.isoformat(), department_name=v.department_name,
                                  doctor_name=v.doctor_name, diagnosis=v.diagnosis_text) if v else None)


def _visit(request, consultation_id: UUID) -> Consultation:
    return consultation_for_doctor(doctor=doctor_of(request.user), consultation_id=consultation_id)


@router.get("/staff/consultations", response={200: list[QueueItemOut], **ERRORS},
            summary="The doctor's queue: own visits waiting or in progress, and the department pool")
def queue(request, include_ended_today: bool = False):
    doctor = doctor_of(request.user)
    where = Q(doctor=doctor, status__in=QUEUE_STATUSES)
    if doctor_sees_pool(doctor):
        where |= Q(doctor__isnull=True, department=doctor.department_id, status=ConsultStatus.WAITING)
    if include_ended_today:
        where |= Q(doctor=doctor, ended_at__date=timezone.localdate())
    items = list(Consultation.objects.filter(where).select_related("patient").order_by("paid_at")[:200])
    audit_record(action="consultation.read_list", actor=request.user, ip=client_ip(request),
                 object_type="consultations.consultation", detail={"ids": [str(c.pk) for c in items]})
    return [QueueItemOut(**_queue_item(c)) for c in items]


@router.get("/staff/consultations/{consultation_id}", response={200: VisitOut, **ERRORS},
            summary="A visit with the patient summary and the proof of the prior diagnosis (audited)")
def visit(request, consultation_id: UUID):
    c = _visit(request, consultation_id)
    audit_record(action="consultation.read_consultation", actor=request.user, obj=c, ip=client_ip(request),
                 detail={"role": "doctor"})
    return _visit_out(c)


@router.post("/staff/consultations/{consultation_id}/accept", response={200: VisitOut, **ERRORS},
             summary="接诊 (confirm an uploaded prior diagnosis, and a child's companions, if needed)")
def accept(request, consultation_id: UUID, payload: AcceptIn):
    c = lifecycle.consultation_accept(user=request.user, consultation_id=consultation_id, **payload.dict())
    return _visit_out(_visit(request, c.pk))


@router.post("/staff/consultations/{consultation_id}/reject-eligibility", response={200: VisitOut, **ERRORS},
             summary="Not a follow-up of the stated diagnosis: cancel with a full refund")
def reject_eligibility(request, consultation_id: UUID, payload: ReasonIn):
    lifecycle.consultation_reject_eligibility(user=request.user, consultation_id=consultation_id,
                                              reason=payload.reason)
    return _visit_out(_visit(request, consultation_id))


@router.post("/staff/consultations/{consultation_id}/end", response={200: VisitOut, **ERRORS},
             summary="End the visit (the follow-up window opens)")
def end(request, consultation_id: UUID):
    lifecycle.consultation_end(user=request.user, consultation_id=consultation_id)
    return _visit_out(_visit(request, consultation_id))


@router.post("/staff/consultations/{consultation_id}/terminate", response={200: VisitOut, **ERRORS},
             summary="IH-02: stop now, the patient needs in-person care (reason required)")
def terminate(request, consultation_id: UUID, payload: ReasonIn):
    lifecycle.consultation_terminate(user=request.user, consultation_id=consultation_id, reason=payload.reason)
    return _visit_out(_visit(request, consultation_id))


@router.get("/staff/consultations/{consultation_id}/messages", response={200: list[MessageOut], **ERRORS},
            summary="Messages after a sequence number (audited)")
def staff_messages(request, consultation_id: UUID, after_seq: int = 0):
    c = _visit(request, consultation_id)
    audit_record(action="consultation.read_messages", actor=request.user, obj=c, ip=client_ip(request),
                 detail={"role": "doctor", "after_seq": after_seq})
    return [message_out(m) for m in messages_after(consultation_id=c.pk, after_seq=max(after_seq, 0))]


@router.post("/staff/consultations/{consultation_id}/messages", response={200: MessageOut, 201: MessageOut, **ERRORS},
             summary="Send a message as the doctor (the WebSocket does the same)")
def staff_send(request, consultation_id: UUID, payload: MessageIn):
    message, created = message_post(user=request.user, consultation_id=consultation_id, kind=payload.kind,
                                    body=payload.body, payload=payload.payload, client_msg_id=payload.client_msg_id)
    return Status(201 if created else 200, message_out(message))


@router.post("/staff/consultations/{consultation_id}/messages/{seq}/recall", response={200: MessageOut, **ERRORS},
             summary="Recall the doctor's own message within 2 minutes")
def staff_recall(request, consultation_id: UUID, seq: int):
    return message_out(message_recall(user=request.user, consultation_id=consultation_id, seq=seq))


@router.post("/staff/consultations/{consultation_id}/media", response={201: MediaOut, **ERRORS},
             summary="Upload an image into the chat")
def staff_upload(request, consultation_id: UUID, file: UploadedFile = File(...)):
    media = media_upload_for_party(user=request.user, consultation_id=consultation_id,
                                   purpose=MediaPurpose.CHAT_IMAGE, data=upload_bytes(file))
    return Status(201, media_out(media))


@router.get("/staff/consultations/{consultation_id}/ice-servers", response={200: IceServersOut, **ERRORS},
            summary="STUN/TURN servers with time-limited TURN credentials for the doctor's video")
def staff_ice(request, consultation_id: UUID):
    servers, expires = ice_servers_for_visit(user=request.user, consultation_id=consultation_id)
    return IceServersOut(ice_servers=servers, expires_at=expires)
