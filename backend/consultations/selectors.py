"""Reads of consultations, and the named lock helpers."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backend.accounts.models import DoctorProfile
from backend.consultations.models import ConsentTerms, Consultation, Message
from backend.consultations.states import ConsultStatus
from backend.core.errors import NotFound, PermissionDenied


def consultation_qs_for_update() -> QuerySet[Consultation]:
    return Consultation.objects.select_for_update(of=("self",))


def consent_terms_current() -> ConsentTerms:
    terms = ConsentTerms.objects.filter(effective_at__lte=timezone.now()).order_by("-effective_at").first()
    if terms is None:
        raise NotFound(_("尚未发布互联网诊疗知情同意书"), code="consent_terms_missing")
    return terms


def doctor_of(user) -> DoctorProfile:
    doctor = DoctorProfile.objects.filter(user=user).select_related("department").first() if user else None
    if doctor is None:
        raise PermissionDenied(_("仅医生可操作"), code="doctor_only")
    return doctor


def consultation_for_patient(*, account, consultation_id: object) -> Consultation:
    try:
        return Consultation.objects.select_related("patient", "doctor__user", "department").get(
            pk=consultation_id, account=account)
    except (Consultation.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFound(_("复诊不存在"), code="consultation_not_found") from exc


def doctor_sees_pool(doctor: DoctorProfile) -> bool:
    """Only doctors who may consult online (IH-04, on duty) see their department's unassigned visits."""
    from backend.accounts.services.staff import doctor_assert_may_consult_online

    try:
        doctor_assert_may_consult_online(doctor)
    except PermissionDenied:
        return False
    return True


def consultation_for_doctor(*, doctor: DoctorProfile, consultation_id: object) -> Consultation:
    """The doctor's own consultation, or one waiting (paid, unassigned) in their department's pool."""
    try:
        c = Consultation.objects.select_related("patient", "doctor__user", "department", "prior_visit").get(
            pk=consultation_id)
    except (Consultation.DoesNotExist, ValueError, TypeError) as exc:
        raise NotFound(_("复诊不存在"), code="consultation_not_found") from exc
    if c.doctor_id == doctor.pk:
        return c
    in_pool = c.doctor_id is None and c.status == ConsultStatus.WAITING and c.department_id == doctor.department_id
    if in_pool and doctor_sees_pool(doctor):
        return c
    raise NotFound(_("复诊不存在"), code="consultation_not_found")


def consultation_party_role(consultation: Consultation, user) -> str | None:
    """'patient' for the consultation's account, 'doctor' for its assigned doctor, else None."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    if consultation.account_id == user.pk:
        return "patient"
    if consultation.doctor_id and consultation.doctor.user_id == user.pk:
        return "doctor"
    return None


def messages_after(*, consultation_id: object, after_seq: int, limit: int = 500) -> list[Message]:
    return list(Message.objects.filter(consultation_id=consultation_id, seq__gt=after_seq).order_by("seq")[:limit])
