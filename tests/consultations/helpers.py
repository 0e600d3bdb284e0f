"""Making consultations quickly: consent terms, services, offline visits, a paid visit without a payment run."""

from __future__ import annotations

import io
import itertools
from datetime import timedelta

from django.db import transaction
from django.test import Client
from django.utils import timezone
from PIL import Image

from backend.accounts.models import DoctorProfile, PatientProfile, User
from backend.consultations.models import ConsentTerms, Consultation, OfflineVisit, OnlineService
from backend.consultations.services.eligibility import StartRequest, consultation_start
from backend.consultations.services.lifecycle import consultation_accept, consultation_on_paid_locked

_visits = itertools.count(1)
TERMS_VERSION = "2026.1"


def consent_terms() -> ConsentTerms:
    return ConsentTerms.objects.get_or_create(version=TERMS_VERSION, defaults=dict(
        title="互联网诊疗知情同意书", body="互联网诊疗仅限复诊……", effective_at=timezone.now() - timedelta(days=1)))[0]


def doctor_service(doctor_user: User, *, kind: str = "text", fee_fen: int = 3000) -> OnlineService:
    doctor = DoctorProfile.objects.get(user=doctor_user)
    return OnlineService.objects.get_or_create(doctor=doctor, kind=kind, defaults=dict(
        department=doctor.department, fee_fen=fee_fen))[0]


def offline_visit(patient: PatientProfile, *, days_ago: int = 30, diagnosis: str = "胃脘痛·脾胃虚寒证") -> OfflineVisit:
    return OfflineVisit.objects.create(
        his_visit_no=f"MZ{timezone.now():%Y%m%d}{next(_visits):05d}", patient_name=patient.name,
        id_number=patient.id_number, visit_date=timezone.localdate() - timedelta(days=days_ago),
        department_name="内科", doctor_name="李医生", tcm_diagnosis=diagnosis, western_diagnosis="慢性胃炎",
        icd10_code="K29.5", is_chronic=True)


def started(account: User, patient: PatientProfile, doctor_user: User, **kw) -> Consultation:
    consent_terms()
    service = doctor_service(doctor_user)
    visit = offline_visit(patient)
    req = StartRequest(patient_id=patient.pk, service_id=service.pk, terms_version=TERMS_VERSION,
                       offline_visit_id=visit.pk, complaint=kw.pop("complaint", "胃胀两周"), **kw)
    return consultation_start(account=account, req=req, ip="127.0.0.1")


def paid(consultation: Consultation) -> Consultation:
    """As if payments captured the fee (the payment path itself is tested over HTTP elsewhere)."""
    with transaction.atomic():
        assert consultation_on_paid_locked(consultation)
    consultation.refresh_from_db()
    return consultation


def in_progress(account: User, patient: PatientProfile, doctor_user: User) -> Consultation:
    c = paid(started(account, patient, doctor_user))
    return consultation_accept(user=doctor_user, consultation_id=c.pk)


def png_bytes(size: tuple[int, int] = (8, 8), color: str = "red", fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


def staff_client(user: User) -> Client:
    """A staff browser session (the console's API calls use the session cookie)."""
    client = Client()
    client.force_login(user)
    return client


def patient_client(user: User) -> Client:
    """A mini-program client: every request carries a fresh access token."""
    from backend.accounts.services.tokens import token_family_start

    client = Client()
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {token_family_start(user=user).access_token}"
    return client
