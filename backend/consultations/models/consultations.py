"""A follow-up consultation (在线复诊), its files and its message stream."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from backend.consultations.states import (
    ACTIVE_CONSULT,
    ConsultKind,
    ConsultStatus,
    EligibilityBasis,
    EligibilityStatus,
    MediaPurpose,
    MessageKind,
    ProofKind,
    SenderRole,
)
from backend.core.models import BaseModel


class Consultation(BaseModel):
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="consultations",
                                verbose_name=_("患者账户"))
    patient = models.ForeignKey("accounts.PatientProfile", on_delete=models.PROTECT, related_name="consultations",
                                verbose_name=_("就诊人"))
    department = models.ForeignKey("accounts.Department", on_delete=models.PROTECT, related_name="+",
                                   verbose_name=_("科室"))
    doctor = models.ForeignKey("accounts.DoctorProfile", on_delete=models.PROTECT, null=True, blank=True,
                               related_name="consultations", verbose_name=_("医生"))
    kind = models.CharField(_("方式"), max_length=8, choices=ConsultKind.choices)
    status = models.CharField(_("状态"), max_length=32, choices=ConsultStatus.choices,
                              default=ConsultStatus.AWAITING_PAYMENT)
    fee_fen = models.PositiveBigIntegerField(_("诊费（分）"))
    complaint = models.TextField(_("病情描述"), blank=True)
    # eligibility (IH-01, IH-03, IH-13, IH-24)
    eligibility_basis = models.CharField(_("复诊依据"), max_length=24, choices=EligibilityBasis.choices)
    eligibility_status = models.CharField(_("复诊资格"), max_length=24, choices=EligibilityStatus.choices)
    prior_visit = models.ForeignKey("consultations.OfflineVisit", on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="+", verbose_name=_("线下就诊记录"))
    prior_diagnosis = models.CharField(_("既往诊断"), max_length=200)
    proof_kind = models.CharField(_("证明材料类型"), max_length=32, choices=ProofKind.choices, blank=True)
    eligibility_note = models.CharField(_("资格审核意见"), max_length=200, blank=True)
    consent = models.ForeignKey("consultations.ConsentRecord", on_delete=models.PROTECT, related_name="+",
                                verbose_name=_("知情同意"))
    guardian = models.ForeignKey("accounts.PatientProfile", on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="+", verbose_name=_("陪同监护人"))
    accompanying_doctor = models.CharField(_("陪同医生"), max_length=100, blank=True)
    companions_confirmed_at = models.DateTimeField(_("医生确认陪同时间"), null=True, blank=True)
    # lifecycle
    pay_before = models.DateTimeField(_("支付截止"))
    paid_at = models.DateTimeField(_("支付时间"), null=True, blank=True)
    accept_before = models.DateTimeField(_("接诊截止"), null=True, blank=True)
    accepted_at = models.DateTimeField(_("接诊时间"), null=True, blank=True)
    last_activity_at = models.DateTimeField(_("最近消息时间"), null=True, blank=True)
    ended_at = models.DateTimeField(_("结束时间"), null=True, blank=True)
    end_reason = models.CharField(_("结束/取消原因"), max_length=200, blank=True)
    follow_up_until = models.DateTimeField(_("追问截止"), null=True, blank=True)
    follow_up_used = models.PositiveIntegerField(_("已用追问条数"), default=0)
    last_seq = models.PositiveIntegerField(_("消息序号"), default=0)
    media_purged_at = models.DateTimeField(_("聊天与文件清理时间"), null=True, blank=True)
    # set in the same transaction as a cancellation/termination that owes the fee back; the refund sweep
    # clears it once payments holds a refund (so a refund lost between commit and the task is still made)
    refund_due = models.BooleanField(_("待退款"), default=False)

    class Meta:
        verbose_name = _("在线复诊")
        verbose_name_plural = _("在线复诊")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["patient", "department"], condition=Q(status__in=ACTIVE_CONSULT),
                                    name="one_active_consultation_per_patient_department"),
        ]
        indexes = [
            models.Index(fields=["status", "pay_before"]),
            models.Index(fields=["status", "accept_before"]),
            models.Index(fields=["status", "last_activity_at"]),
            models.Index(fields=["doctor", "status"]),
            models.Index(fields=["account", "status"]),
            models.Index(fields=["refund_due"], condition=Q(refund_due=True), name="consultation_refund_due"),
        ]

    def __str__(self) -> str:
        return f"{self.patient} · {self.get_kind_display()} · {self.get_status_display()}"


class MediaFile(BaseModel):
    """An uploaded image (chat, tongue photo, proof of diagnosis), served only by short-lived signed URLs."""

    consultation = models.ForeignKey(Consultation, on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="media", verbose_name=_("复诊"))
    uploader = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    purpose = models.CharField(_("用途"), max_length=16, choices=MediaPurpose.choices)
    file = models.FileField(_("文件"), upload_to="consultations/%Y/%m/", max_length=200)
    content_type = models.CharField(_("类型"), max_length=32)
    size = models.PositiveIntegerField(_("大小（字节）"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    purged_at = models.DateTimeField(_("清理时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("复诊文件")
        verbose_name_plural = _("复诊文件")

    def __str__(self) -> str:
        return f"{self.get_purpose_display()} {self.created_at:%Y-%m-%d %H:%M}"


class Message(models.Model):
    """One entry of a consultation's stream, numbered 1, 2, 3 … per consultation (persisted before broadcast)."""

    id = models.BigAutoField(primary_key=True)
    consultation = models.ForeignKey(Consultation, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveIntegerField(_("序号"))
    sender = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                               related_name="+")
    sender_role = models.CharField(_("发送方"), max_length=8, choices=SenderRole.choices)
    kind = models.CharField(_("类型"), max_length=16, choices=MessageKind.choices)
    body = models.TextField(_("内容"), blank=True)
    payload = models.JSONField(_("结构化内容"), default=dict, blank=True)
    client_msg_id = models.CharField(_("客户端消息号"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("发送时间"))
    recalled_at = models.DateTimeField(_("撤回时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("复诊消息")
        verbose_name_plural = _("复诊消息")
        ordering = ["consultation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["consultation", "seq"], name="uniq_message_seq"),
            models.UniqueConstraint(fields=["consultation", "sender", "client_msg_id"],
                                    condition=~Q(client_msg_id=""), name="uniq_client_message"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.get_kind_display()}"
