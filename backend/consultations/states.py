"""Follow-up consultations: choices. Transitions (DESIGN §5) are compare-and-swap in services/lifecycle.py."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class ConsultKind(models.TextChoices):
    TEXT = "text", _("图文复诊")
    VIDEO = "video", _("视频复诊")


class ConsultStatus(models.TextChoices):
    AWAITING_PAYMENT = "awaiting_payment", _("待支付")
    WAITING = "waiting", _("待接诊")
    IN_PROGRESS = "in_progress", _("问诊中")
    ENDED = "ended", _("已结束")
    CANCELLED = "cancelled", _("已取消")
    TERMINATED = "terminated_for_offline_care", _("已终止（转线下就诊）")


ACTIVE_CONSULT = (ConsultStatus.AWAITING_PAYMENT, ConsultStatus.WAITING, ConsultStatus.IN_PROGRESS)


class EligibilityBasis(models.TextChoices):
    HOSPITAL_RECORD = "hospital_record", _("本院线下就诊记录")
    UPLOADED_PROOF = "uploaded_proof", _("上传的既往诊断证明")
    NONE = "none", _("无（首诊）")


class EligibilityStatus(models.TextChoices):
    CONFIRMED = "confirmed", _("已确认复诊资格")
    PENDING_DOCTOR = "pending_doctor", _("待医生确认")
    REJECTED = "rejected", _("医生不认可既往诊断")


class ProofKind(models.TextChoices):
    OUTPATIENT_RECORD = "outpatient_record", _("门诊病历")
    INPATIENT_RECORD = "inpatient_record", _("住院病历")
    DISCHARGE_SUMMARY = "discharge_summary", _("出院小结")
    DIAGNOSIS_CERTIFICATE = "diagnosis_certificate", _("诊断证明")


class MessageKind(models.TextChoices):
    TEXT = "text", _("文字")
    IMAGE = "image", _("图片")
    SYSTEM = "system", _("系统消息")
    TONGUE_REQUEST = "tongue_request", _("舌象照片请求")
    TONGUE_PHOTOS = "tongue_photos", _("舌象照片")
    RECALL = "recall", _("撤回")


class SenderRole(models.TextChoices):
    PATIENT = "patient", _("患者")
    DOCTOR = "doctor", _("医生")
    SYSTEM = "system", _("系统")


class MediaPurpose(models.TextChoices):
    CHAT_IMAGE = "chat_image", _("聊天图片")
    TONGUE = "tongue", _("舌象照片")
    PROOF = "proof", _("既往诊断证明")


class TongueView(models.TextChoices):
    SURFACE = "surface", _("舌面")
    UNDERSIDE = "underside", _("舌下")


class RecordStatus(models.TextChoices):
    DRAFT = "draft", _("草稿")
    SIGNED = "signed", _("已签名")


PATIENT_SENDABLE = (MessageKind.TEXT, MessageKind.IMAGE, MessageKind.TONGUE_PHOTOS)
DOCTOR_SENDABLE = (MessageKind.TEXT, MessageKind.IMAGE, MessageKind.TONGUE_REQUEST)
