"""What a follow-up needs before payment: a prior offline diagnosis, consent, an open service (IH-01/03/24)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from backend.accounts.idcard import normalize_id_number
from backend.consultations.states import ConsultKind
from backend.core.fields import BlindIndexField, EncryptedTextField
from backend.core.models import BaseModel


class OfflineVisit(BaseModel):
    """A visit at the hospital's own clinic with its diagnosis, fed by the HIS (线下就诊记录).

    Matched to a 就诊人 by the blind index of the ID number, never by name."""

    his_visit_no = models.CharField(_("HIS 就诊流水号"), max_length=64, unique=True)
    patient_name = models.CharField(_("患者姓名"), max_length=64)
    id_number = EncryptedTextField(_("证件号码（加密）"))
    id_number_index = BlindIndexField(source="id_number", purpose="id_number", normalize=normalize_id_number)
    visit_date = models.DateField(_("就诊日期"))
    department_name = models.CharField(_("就诊科室"), max_length=64)
    doctor_name = models.CharField(_("接诊医生"), max_length=64, blank=True)
    tcm_diagnosis = models.CharField(_("中医诊断"), max_length=200, blank=True)
    tcm_diagnosis_code = models.CharField(_("中医诊断编码"), max_length=32, blank=True)
    western_diagnosis = models.CharField(_("西医诊断"), max_length=200, blank=True)
    icd10_code = models.CharField(_("ICD-10 编码"), max_length=16, blank=True)
    is_chronic = models.BooleanField(_("慢性病"), default=False)

    class Meta:
        verbose_name = _("线下就诊记录")
        verbose_name_plural = _("线下就诊记录")
        ordering = ["-visit_date"]

    def __str__(self) -> str:
        return f"{self.visit_date} {self.department_name} {self.diagnosis_text}"

    @property
    def diagnosis_text(self) -> str:
        return "；".join(x for x in (self.tcm_diagnosis, self.western_diagnosis) if x)


class ConsentTerms(BaseModel):
    """A version of the online-care informed-consent text (互联网诊疗知情同意书, IH-24)."""

    version = models.CharField(_("版本号"), max_length=16, unique=True)
    title = models.CharField(_("标题"), max_length=100)
    body = models.TextField(_("正文"))
    effective_at = models.DateTimeField(_("生效时间"))

    class Meta:
        verbose_name = _("知情同意书版本")
        verbose_name_plural = _("知情同意书版本")
        ordering = ["-effective_at"]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"


class ConsentRecord(BaseModel):
    terms = models.ForeignKey(ConsentTerms, on_delete=models.PROTECT, related_name="+", verbose_name=_("版本"))
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey("accounts.PatientProfile", on_delete=models.PROTECT, related_name="+")
    accepted_at = models.DateTimeField(_("同意时间"))
    ip = models.CharField(_("IP 地址"), max_length=45, blank=True)

    class Meta:
        verbose_name = _("知情同意记录")
        verbose_name_plural = _("知情同意记录")


class OnlineService(BaseModel):
    """A doctor's (or, without a doctor, a department's pool) online follow-up service and its fee."""

    department = models.ForeignKey("accounts.Department", on_delete=models.PROTECT, related_name="+",
                                   verbose_name=_("科室"))
    doctor = models.ForeignKey("accounts.DoctorProfile", on_delete=models.PROTECT, null=True, blank=True,
                               related_name="online_services", verbose_name=_("医生（空为科室号）"))
    kind = models.CharField(_("方式"), max_length=8, choices=ConsultKind.choices)
    fee_fen = models.PositiveBigIntegerField(_("诊费（分）"))
    is_open = models.BooleanField(_("开放"), default=True)

    class Meta:
        verbose_name = _("线上复诊服务")
        verbose_name_plural = _("线上复诊服务")
        constraints = [
            models.UniqueConstraint(fields=["doctor", "kind"], condition=Q(doctor__isnull=False),
                                    name="uniq_online_service_per_doctor"),
            models.UniqueConstraint(fields=["department", "kind"], condition=Q(doctor__isnull=True),
                                    name="uniq_online_pool_per_department"),
        ]

    def __str__(self) -> str:
        return f"{self.doctor or self.department} · {self.get_kind_display()}"
