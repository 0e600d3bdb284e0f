"""Audited reads (IH-23: every read of a consultation or record is written to the audit log)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from backend.consultations.models import Consultation, MediaFile
from backend.consultations.selectors import consultation_party_role
from backend.consultations.services.media import media_store
from backend.consultations.states import ConsultStatus, MediaPurpose
from backend.core.audit import audit_record
from backend.core.errors import Conflict, NotFound, ValidationFailed


def consultation_of_party(*, user, consultation_id: object) -> tuple[Consultation, str]:
    """The consultation if ``user`` is its patient account or its doctor (else 404, nothing disclosed)."""
    c = (Consultation.objects.select_related("patient", "doctor__user", "department", "prior_visit")
         .filter(pk=consultation_id).first())
    role = consultation_party_role(c, user) if c else None
    if role is None:
        raise NotFound(_("复诊不存在"), code="consultation_not_found")
    return c, role


def consultation_read_audited(*, user, consultation_id: object, ip: str = "", what: str = "consultation"):
    c, role = consultation_of_party(user=user, consultation_id=consultation_id)
    audit_record(action=f"consultation.read_{what}", actor=user, obj=c, ip=ip, detail={"role": role})
    return c


def media_upload_for_party(*, user, consultation_id: object, purpose: str, data: bytes) -> MediaFile:
    c, role = consultation_of_party(user=user, consultation_id=consultation_id)
    if purpose not in (MediaPurpose.CHAT_IMAGE, MediaPurpose.TONGUE):
        raise ValidationFailed(_("不支持的上传用途"), code="upload_purpose_invalid")
    if c.status not in (ConsultStatus.WAITING, ConsultStatus.IN_PROGRESS, ConsultStatus.ENDED):
        raise Conflict(_("当前复诊状态不能上传图片"), code="consultation_not_open")
    media = media_store(uploader=user, purpose=purpose, data=data, consultation=c)
    audit_record(action="consultation.media_uploaded", actor=user, obj=c,
                 detail={"media": str(media.pk), "purpose": purpose, "sha256": media.sha256, "role": role})
    return media
