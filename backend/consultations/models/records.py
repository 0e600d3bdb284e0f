"""The TCM outpatient record (中医门诊病历), its signed versions, the doctor's signing key and the code table."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from backend.consultations.states import RecordStatus
from backend.core.fields import EncryptedTextField
from backend.core.models import BaseModel


class CodeSystem(models.TextChoices):
    TCM_DISEASE = "tcm_disease", _("中医病名（GB/T 15657）")
    TCM_SYNDROME = "tcm_syndrome", _("中医证型（GB/T 15657）")
    ICD10 = "icd10", _("西医诊断（ICD-10）")


class DiagnosisCode(BaseModel):
    """One entry of a diagnosis code table; the edition says which table it came from (tcm-rules §7)."""

    system = models.CharField(_("编码体系"), max_length=16, choices=CodeSystem.choices)
    code = models.CharField(_("编码"), max_length=32)
    name = models.CharField(_("名称"), max_length=100)
    initials = models.CharField(_("拼音首字母"), max_length=32, blank=True, db_index=True)
    edition = models.CharField(_("版本"), max_length=64)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("诊断编码")
        verbose_name_plural = _("诊断编码")
        ordering = ["system", "code"]
        constraints = [models.UniqueConstraint(fields=["system", "code"], name="uniq_diagnosis_code")]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class SigningKey(BaseModel):
    """A staff member's SM2 signing key. The private key is encrypted at rest (SM4) and used only
    inside the signing service; production may replace this with a CA-issued key (see README)."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="signing_keys")
    algorithm = models.CharField(_("算法"), max_length=16, default="SM2-SM3")
    public_key = models.CharField(_("公钥（十六进制）"), max_length=130)
    private_key = EncryptedTextField(_("私钥（加密）"))
    revoked_at = models.DateTimeField(_("吊销时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("签名密钥")
        verbose_name_plural = _("签名密钥")

    def __str__(self) -> str:
        return f"{self.owner} · {self.algorithm}"


class ClinicalRecord(BaseModel):
    """The record of one consultation, written by its doctor. Signed content lives in versions;
    once signed, a change is an amendment with a reason (a new signed version), never an edit."""

    consultation = models.OneToOneField("consultations.Consultation", on_delete=models.PROTECT,
                                        related_name="record", verbose_name=_("复诊"))
    doctor = models.ForeignKey("accounts.DoctorProfile", on_delete=models.PROTECT, related_name="+",
                               verbose_name=_("医生"))
    status = models.CharField(_("状态"), max_length=8, choices=RecordStatus.choices, default=RecordStatus.DRAFT)
    chief_complaint = models.TextField(_("主诉"), blank=True)
    present_illness = models.TextField(_("现病史"), blank=True)
    past_history = models.TextField(_("既往史"), blank=True)
    allergy_history = models.TextField(_("过敏史"), blank=True)
    tongue_body = models.CharField(_("舌质"), max_length=16, blank=True)
    tongue_coating = models.CharField(_("舌苔"), max_length=16, blank=True)
    tongue_note = models.CharField(_("舌象补充"), max_length=200, blank=True)
    pulse = models.JSONField(_("脉象"), default=list, blank=True)
    pulse_note = models.CharField(_("脉象补充"), max_length=200, blank=True)
    tcm_disease = models.ForeignKey(DiagnosisCode, on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="+", verbose_name=_("中医病名"))
    tcm_syndrome = models.ForeignKey(DiagnosisCode, on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="+", verbose_name=_("中医证型"))
    western_diagnosis = models.ForeignKey(DiagnosisCode, on_delete=models.PROTECT, null=True, blank=True,
                                          related_name="+", verbose_name=_("西医诊断"))
    treatment_principle = models.CharField(_("治法"), max_length=200, blank=True)
    advice = models.TextField(_("医嘱"), blank=True)
    version = models.PositiveIntegerField(_("版本"), default=0)

    class Meta:
        verbose_name = _("门诊病历")
        verbose_name_plural = _("门诊病历")

    def __str__(self) -> str:
        return f"{self.consultation} · v{self.version}"


class ClinicalRecordVersion(models.Model):
    """A signed, immutable snapshot: version 1 is the signature, later versions are amendments."""

    id = models.BigAutoField(primary_key=True)
    record = models.ForeignKey(ClinicalRecord, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField(_("版本"))
    content = models.JSONField(_("签名内容"))
    digest = models.CharField(_("SM3 摘要"), max_length=64)
    signature = models.CharField(_("SM2 签名"), max_length=160)
    key = models.ForeignKey(SigningKey, on_delete=models.PROTECT, related_name="+")
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField(_("签名时间"))
    reason = models.CharField(_("修改原因"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("病历签名版本")
        verbose_name_plural = _("病历签名版本")
        ordering = ["record", "version"]
        constraints = [models.UniqueConstraint(fields=["record", "version"], name="uniq_record_version")]

    def __str__(self) -> str:
        return f"v{self.version} {self.signed_at:%Y-%m-%d %H:%M}"
