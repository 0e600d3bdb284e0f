"""Starting a follow-up: everything the rules require is checked before any payment (IH-01/03/04/06/13/24)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backend.accounts.models import PatientProfile, User
from backend.accounts.selectors import patient_profile_owned
from backend.accounts.services.staff import doctor_assert_may_consult_online
from backend.consultations.models import ConsentRecord, Consultation, MediaFile, OfflineVisit, OnlineService
from backend.consultations.selectors import consent_terms_current
from backend.consultations.states import EligibilityBasis, EligibilityStatus, MediaPurpose
from backend.core.audit import audit_record
from backend.core.errors import Conflict, NotFound, ValidationFailed


@dataclass(frozen=True)
class StartRequest:
    patient_id: object
    service_id: object  # a doctor's service, or a department pool's
    terms_version: str  # the consent text the patient was shown and accepted
    complaint: str = ""
    offline_visit_id: object | None = None  # a visit in the hospital's own records …
    proof_media_ids: tuple[object, ...] = ()  # … or uploaded proof …
    proof_kind: str = ""
    stated_diagnosis: str = ""  # … with the diagnosis it shows
    guardian_present: bool = False  # IH-13, children under 6
    accompanying_doctor: str = ""


def offline_visits_for(patient: PatientProfile) -> list[OfflineVisit]:
    """The hospital's own visits of this 就诊人 recent enough to found a follow-up."""
    since = timezone.localdate() - timedelta(days=settings.PRIOR_VISIT_MAX_AGE_DAYS)
    index = PatientProfile._meta.get_field("id_number_index").index_of(patient.id_number)
    return list(OfflineVisit.objects.filter(id_number_index=index, visit_date__gte=since).order_by("-visit_date"))


def _service(service_id: object) -> OnlineService:
    service = OnlineService.objects.select_related("doctor__user", "department").filter(
        pk=service_id, is_open=True).first()
    if service is None:
        raise NotFound(_("该线上复诊服务不存在或未开放"), code="online_service_unavailable")
    if service.doctor is not None:
        doctor_assert_may_consult_online(service.doctor)
    return service


def _prior_diagnosis(patient: PatientProfile, account: User, req: StartRequest, service: OnlineService) -> dict:
    """IH-01/IH-03: a diagnosis made at a physical institution, from our records or from uploaded proof.
    Our own visit in the same department founds the follow-up at once; any other basis waits for the doctor's
    judgement when accepting (IH-03: the receiving doctor judges whether it is a follow-up)."""
    if req.offline_visit_id:
        visit = next((v for v in offline_visits_for(patient) if str(v.pk) == str(req.offline_visit_id)), None)
        if visit is None:
            raise ValidationFailed(_("未找到该就诊人近期的线下就诊记录"), code="prior_visit_not_found")
        same_department = visit.department_name == service.department.name
        return {"eligibility_basis": EligibilityBasis.HOSPITAL_RECORD, "prior_visit": visit,
                "eligibility_status": EligibilityStatus.CONFIRMED if same_department
                else EligibilityStatus.PENDING_DOCTOR, "prior_diagnosis": visit.diagnosis_text[:200]}
    if req.proof_media_ids:
        owned = MediaFile.objects.filter(pk__in=list(req.proof_media_ids), uploader=account,
                                         purpose=MediaPurpose.PROOF, consultation__isnull=True).count()
        if owned != len(set(map(str, req.proof_media_ids))):
            raise ValidationFailed(_("诊断证明图片无效，请重新上传"), code="proof_media_invalid")
        if not req.proof_kind or not req.stated_diagnosis.strip():
            raise ValidationFailed(_("请选择证明材料类型并填写既往诊断"), code="proof_diagnosis_required")
        return {"eligibility_basis": EligibilityBasis.UPLOADED_PROOF, "proof_kind": req.proof_kind,
                "eligibility_status": EligibilityStatus.PENDING_DOCTOR, "prior_diagnosis": req.stated_diagnosis[:200]}
    if settings.ONLINE_FIRST_VISIT_FORBIDDEN:
        raise ValidationFailed(_("互联网诊疗仅限复诊：请选择本院线下就诊记录，或上传既往诊断证明"),
                               code="prior_diagnosis_required")
    return {"eligibility_basis": EligibilityBasis.NONE, "eligibility_status": EligibilityStatus.CONFIRMED,
            "prior_diagnosis": req.stated_diagnosis[:200]}


def _companions(patient: PatientProfile, req: StartRequest) -> dict:
    """IH-13: a child under 6 comes with the guardian and an accompanying doctor."""
    if patient.age(timezone.localdate()) >= settings.GUARDIAN_REQUIRED_UNDER_AGE:
        return {}
    if not (req.guardian_present and patient.guardian_id and req.accompanying_doctor.strip()):
        raise ValidationFailed(_("%(n)d岁以下儿童须由监护人及相关专业医师陪同就诊")
                               % {"n": settings.GUARDIAN_REQUIRED_UNDER_AGE}, code="child_companions_required")
    return {"guardian_id": patient.guardian_id, "accompanying_doctor": req.accompanying_doctor.strip()[:100]}


@transaction.atomic
def consultation_start(*, account: User, req: StartRequest, ip: str = "") -> Consultation:
    """Create a consultation awaiting payment, or refuse with the rule that is not met (nothing is charged)."""
    patient = patient_profile_owned(owner=account, profile_id=req.patient_id)
    if not patient.is_verified:
        raise ValidationFailed(_("请先完成就诊人实名认证"), code="profile_not_verified")  # IH-06
    service = _service(req.service_id)
    terms = consent_terms_current()
    if req.terms_version != terms.version:
        raise ValidationFailed(_("请阅读并同意最新版互联网诊疗知情同意书"), code="consent_required",
                               detail={"current_version": terms.version})
    prior = _prior_diagnosis(patient, account, req, service)
    companions = _companions(patient, req)
    now = timezone.now()
    consent = ConsentRecord.objects.create(terms=terms, account=account, patient=patient, accepted_at=now, ip=ip)
    try:
        with transaction.atomic():
            consultation = Consultation.objects.create(
                account=account, patient=patient, department=service.department, doctor=service.doctor,
                kind=service.kind, fee_fen=service.fee_fen, complaint=req.complaint[:2000], consent=consent,
                pay_before=now + timedelta(seconds=settings.CONSULT_PAY_SECONDS), **prior, **companions)
    except IntegrityError as exc:
        raise Conflict(_("该就诊人在本科室已有进行中的复诊"), code="consultation_active_exists") from exc
    if req.proof_media_ids:  # taken only if still unattached: a concurrent start with the same photos loses
        taken = MediaFile.objects.filter(pk__in=list(req.proof_media_ids), consultation__isnull=True).update(
            consultation=consultation)
        if taken != len(set(map(str, req.proof_media_ids))):
            raise Conflict(_("诊断证明图片已用于其他复诊，请重新上传"), code="proof_media_in_use")
    audit_record(action="consultation.started", actor=account, obj=consultation, ip=ip,
                 detail={"basis": consultation.eligibility_basis, "terms": terms.version,
                         "doctor": str(service.doctor_id or ""), "fee_fen": service.fee_fen})
    return consultation
