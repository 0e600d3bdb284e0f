"""就诊人: the real-name patient profiles an account manages for itself and its family."""

from __future__ import annotations

from datetime import date

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from backend.accounts.idcard import IdType, Sex, age_on, normalize_id_number
from backend.accounts.models.users import normalize_phone
from backend.core.crypto import mask_id_number, mask_phone
from backend.core.fields import BlindIndexField, EncryptedTextField
from backend.core.models import BaseModel


class Relation(models.TextChoices):
    SELF = "self", _("本人")
    SPOUSE = "spouse", _("配偶")
    PARENT = "parent", _("父母")
    CHILD = "child", _("子女")
    SIBLING = "sibling", _("兄弟姐妹")
    OTHER = "other", _("其他")


class VerificationStatus(models.TextChoices):
    UNVERIFIED = "unverified", _("未实名")
    PENDING_MANUAL = "pending_manual", _("待人工审核")
    VERIFIED = "verified", _("已实名")
    FAILED = "failed", _("实名未通过")


class PatientProfile(BaseModel):
    owner = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="patient_profiles",
                              verbose_name=_("所属账户"))
    name = models.CharField(_("姓名"), max_length=64)
    id_type = models.CharField(_("证件类型"), max_length=32, choices=IdType.choices)
    id_number = EncryptedTextField(_("证件号码（加密）"))
    id_number_index = BlindIndexField(source="id_number", purpose="id_number", normalize=normalize_id_number)
    sex = models.CharField(_("性别"), max_length=8, choices=Sex.choices)
    birth_date = models.DateField(_("出生日期"))
    phone = EncryptedTextField(_("手机号（加密）"), blank=True, null=True)
    phone_index = BlindIndexField(source="phone", purpose="phone", normalize=normalize_phone)
    relation = models.CharField(_("与本人关系"), max_length=16, choices=Relation.choices)
    is_default = models.BooleanField(_("默认就诊人"), default=False)
    allergies = models.TextField(_("过敏史"), blank=True)
    guardian = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True,
                                 related_name="wards", verbose_name=_("监护人"))
    verification_status = models.CharField(_("实名状态"), max_length=16, choices=VerificationStatus.choices,
                                           default=VerificationStatus.UNVERIFIED)
    verified_at = models.DateTimeField(_("实名时间"), null=True, blank=True)
    verification_serial = models.CharField(_("核验流水号"), max_length=64, blank=True)
    verification_note = models.CharField(_("核验说明"), max_length=200, blank=True)
    archived_at = models.DateTimeField(_("删除时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("就诊人")
        verbose_name_plural = _("就诊人")
        ordering = ["-is_default", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "id_number_index"], condition=Q(archived_at__isnull=True),
                                    name="uniq_active_profile_id_number_per_owner"),
            models.UniqueConstraint(fields=["owner"], condition=Q(archived_at__isnull=True, is_default=True),
                                    name="uniq_default_profile_per_owner"),
        ]

    def __str__(self) -> str:
        return f"{self.name}（{self.get_relation_display()}）"

    @property
    def is_verified(self) -> bool:
        return self.verification_status == VerificationStatus.VERIFIED

    def age(self, today: date) -> int:
        return age_on(self.birth_date, today)

    @property
    def id_number_masked(self) -> str:
        return mask_id_number(self.id_number or "")

    @property
    def phone_masked(self) -> str:
        return mask_phone(self.phone or "")
