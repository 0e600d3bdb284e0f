"""Departments and staff profiles: doctors, pharmacists, dispensers, couriers."""

from __future__ import annotations

from datetime import date

from django.db import models
from django.utils.translation import gettext_lazy as _

from backend.accounts.idcard import age_on
from backend.core.models import BaseModel


def full_years_since(start: date | None, today: date) -> int:
    return max(age_on(start, today), 0) if start else 0


class Department(BaseModel):
    """A clinical department (科室) of the hospital, e.g. 内科, 妇科, 儿科, 针灸推拿科."""

    code = models.SlugField(_("编码"), max_length=32, unique=True)
    name = models.CharField(_("名称"), max_length=64)
    description = models.TextField(_("简介"), blank=True)
    sort_order = models.PositiveIntegerField(_("排序"), default=0)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        ordering = ["sort_order", "name"]
        verbose_name = _("科室")
        verbose_name_plural = _("科室")

    def __str__(self) -> str:
        return self.name


class DoctorTitle(models.TextChoices):
    CHIEF = "chief", _("主任医师")
    ASSOCIATE_CHIEF = "associate_chief", _("副主任医师")
    ATTENDING = "attending", _("主治医师")
    RESIDENT = "resident", _("住院医师")


class DoctorProfile(BaseModel):
    user = models.OneToOneField("accounts.User", on_delete=models.PROTECT, related_name="doctor_profile")
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="doctors",
                                   verbose_name=_("科室"))
    title = models.CharField(_("职称"), max_length=24, choices=DoctorTitle.choices)
    qualification_certificate_no = models.CharField(_("医师资格证书编码"), max_length=32)
    practice_certificate_no = models.CharField(_("医师执业证书编码"), max_length=32)
    independent_practice_since = models.DateField(_("独立执业起始日期"))
    specialties = models.CharField(_("擅长"), max_length=200, blank=True)
    biography = models.TextField(_("简介"), blank=True)
    may_prescribe = models.BooleanField(_("有处方权"), default=True)
    may_prescribe_toxic = models.BooleanField(_("可开具毒性中药"), default=False)
    is_active = models.BooleanField(_("在岗"), default=True)

    class Meta:
        verbose_name = _("医生")
        verbose_name_plural = _("医生")

    def __str__(self) -> str:
        return f"{self.user} · {self.get_title_display()}"

    def years_of_practice(self, today: date) -> int:
        return full_years_since(self.independent_practice_since, today)


class PharmacistTitle(models.TextChoices):
    CHIEF = "chief", _("主任药师")
    ASSOCIATE_CHIEF = "associate_chief", _("副主任药师")
    SUPERVISING = "supervising", _("主管药师")
    PHARMACIST = "pharmacist", _("药师")
    ASSISTANT = "assistant", _("药士")


class PharmacistProfile(BaseModel):
    user = models.OneToOneField("accounts.User", on_delete=models.PROTECT, related_name="pharmacist_profile")
    title = models.CharField(_("职称"), max_length=24, choices=PharmacistTitle.choices)
    certificate_no = models.CharField(_("药师资格证书编码"), max_length=32)
    dispensing_since = models.DateField(_("从事调剂工作起始日期"))
    review_training_passed = models.BooleanField(_("已通过审方培训考核"), default=False)
    is_active = models.BooleanField(_("在岗"), default=True)

    class Meta:
        verbose_name = _("药师")
        verbose_name_plural = _("药师")

    def __str__(self) -> str:
        return f"{self.user} · {self.get_title_display()}"

    def years_dispensing(self, today: date) -> int:
        return full_years_since(self.dispensing_since, today)


class DispenserProfile(BaseModel):
    user = models.OneToOneField("accounts.User", on_delete=models.PROTECT, related_name="dispenser_profile")
    pharmacy = models.CharField(_("所属药房"), max_length=64)
    certificate_no = models.CharField(_("上岗证编号"), max_length=32, blank=True)
    is_active = models.BooleanField(_("在岗"), default=True)

    class Meta:
        verbose_name = _("调剂/煎药人员")
        verbose_name_plural = _("调剂/煎药人员")

    def __str__(self) -> str:
        return f"{self.user} · {self.pharmacy}"


class CourierProfile(BaseModel):
    user = models.OneToOneField("accounts.User", on_delete=models.PROTECT, related_name="courier_profile")
    service_area = models.CharField(_("服务区域"), max_length=200)
    is_active = models.BooleanField(_("在岗"), default=True)

    class Meta:
        verbose_name = _("配送员")
        verbose_name_plural = _("配送员")

    def __str__(self) -> str:
        return f"{self.user} · {self.service_area}"
