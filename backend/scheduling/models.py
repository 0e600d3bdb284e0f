"""Doctors' schedules (号源) and patients' bookings."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backend.core.models import BaseModel
from backend.scheduling.states import ACTIVE_BOOKING, BookingStatus, Period, ScheduleStatus, VisitType


class Schedule(BaseModel):
    """One doctor's session: a date, a period and a visit type, with numbered places."""

    doctor = models.ForeignKey("accounts.DoctorProfile", on_delete=models.PROTECT, related_name="schedules",
                               verbose_name=_("医生"))
    department = models.ForeignKey("accounts.Department", on_delete=models.PROTECT, related_name="schedules",
                                   verbose_name=_("科室"))
    date = models.DateField(_("出诊日期"))
    period = models.CharField(_("时段"), max_length=16, choices=Period.choices)
    visit_type = models.CharField(_("就诊方式"), max_length=16, choices=VisitType.choices)
    capacity = models.PositiveIntegerField(_("号源数"))
    remaining = models.PositiveIntegerField(_("剩余号源"))
    last_seq = models.PositiveIntegerField(_("已发序号"), default=0)
    fee_fen = models.PositiveBigIntegerField(_("挂号费（分）"))
    release_at = models.DateTimeField(_("放号时间"))
    starts_at = models.TimeField(_("开始时间"))
    window_minutes = models.PositiveIntegerField(_("每段分钟数"), default=30)
    per_window = models.PositiveIntegerField(_("每段人数"), default=5)
    status = models.CharField(_("状态"), max_length=16, choices=ScheduleStatus.choices, default=ScheduleStatus.OPEN)
    stop_reason = models.CharField(_("停诊原因"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("排班")
        verbose_name_plural = _("排班")
        ordering = ["date", "period", "doctor"]
        constraints = [
            models.CheckConstraint(condition=Q(remaining__lte=models.F("capacity")), name="remaining_within_capacity"),
            models.UniqueConstraint(fields=["doctor", "date", "period", "visit_type"], name="uniq_doctor_session"),
        ]
        indexes = [models.Index(fields=["department", "date"]), models.Index(fields=["doctor", "date"])]

    def __str__(self) -> str:
        return f"{self.doctor} {self.date} {self.get_period_display()} {self.get_visit_type_display()}"

    def visit_starts(self) -> datetime:
        return timezone.make_aware(datetime.combine(self.date, self.starts_at))

    def window_of(self, seq: int) -> tuple[datetime, datetime]:
        """分时段: visits are numbered in windows of ``per_window`` (08:00–08:30 × 5, …)."""
        start = self.visit_starts() + timedelta(minutes=self.window_minutes * ((seq - 1) // self.per_window))
        return start, start + timedelta(minutes=self.window_minutes)


class Booking(BaseModel):
    schedule = models.ForeignKey(Schedule, on_delete=models.PROTECT, related_name="bookings", verbose_name=_("排班"))
    patient = models.ForeignKey("accounts.PatientProfile", on_delete=models.PROTECT, related_name="bookings",
                                verbose_name=_("就诊人"))
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="bookings",
                                verbose_name=_("预约账户"))
    status = models.CharField(_("状态"), max_length=16, choices=BookingStatus.choices, default=BookingStatus.HELD)
    fee_fen = models.PositiveBigIntegerField(_("挂号费（分）"))
    hold_expires_at = models.DateTimeField(_("支付截止"))
    seq = models.PositiveIntegerField(_("就诊序号"), null=True, blank=True)
    window_start = models.DateTimeField(_("候诊时段开始"), null=True, blank=True)
    window_end = models.DateTimeField(_("候诊时段结束"), null=True, blank=True)
    confirmed_at = models.DateTimeField(_("预约成功时间"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("取消时间"), null=True, blank=True)
    cancel_reason = models.CharField(_("取消原因"), max_length=200, blank=True)
    checked_in_at = models.DateTimeField(_("签到时间"), null=True, blank=True)
    no_show_at = models.DateTimeField(_("爽约时间"), null=True, blank=True)

    class Meta:
        verbose_name = _("预约")
        verbose_name_plural = _("预约")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "patient"], condition=Q(status__in=ACTIVE_BOOKING),
                                    name="one_active_booking_per_patient_per_schedule"),
        ]
        indexes = [models.Index(fields=["status", "hold_expires_at"]), models.Index(fields=["account", "status"])]

    def __str__(self) -> str:
        return f"{self.patient} · {self.schedule} · {self.get_status_display()}"


class WaitlistEntry(BaseModel):
    """候补: a 就诊人 waiting for a place in a full session; the first in line gets a released place."""

    class Status(models.TextChoices):
        WAITING = "waiting", _("候补中")
        OFFERED = "offered", _("已分配号源")
        CANCELLED = "cancelled", _("已取消")

    schedule = models.ForeignKey(Schedule, on_delete=models.PROTECT, related_name="waitlist")
    patient = models.ForeignKey("accounts.PatientProfile", on_delete=models.PROTECT, related_name="+")
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(_("状态"), max_length=16, choices=Status.choices, default=Status.WAITING)
    booking = models.OneToOneField(Booking, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name = _("候补")
        verbose_name_plural = _("候补")
        ordering = ["created_at"]
        constraints = [models.UniqueConstraint(fields=["schedule", "patient"], condition=Q(status="waiting"),
                                               name="one_waiting_entry_per_patient")]

    def __str__(self) -> str:
        return f"{self.patient} · {self.schedule}"


class SubscriptionGrant(models.Model):
    """One-time subscribe-message permissions the patient granted in the mini-program
    (wx.requestSubscribeMessage); each notice spends one."""

    id = models.BigAutoField(primary_key=True)
    account = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    template_id = models.CharField(_("模板"), max_length=64)
    remaining = models.PositiveIntegerField(_("剩余次数"), default=0)

    class Meta:
        verbose_name = _("订阅消息授权")
        verbose_name_plural = _("订阅消息授权")
        constraints = [models.UniqueConstraint(fields=["account", "template_id"], name="uniq_subscription_grant")]

    def __str__(self) -> str:
        return f"{self.template_id} × {self.remaining}"


class NoticeLog(models.Model):
    """Every notice we tried to send about a booking, and what happened."""

    id = models.BigAutoField(primary_key=True)
    booking = models.ForeignKey(Booking, on_delete=models.CASCADE, related_name="notices")
    kind = models.CharField(_("类型"), max_length=32)
    template_id = models.CharField(_("模板"), max_length=64, blank=True)
    status = models.CharField(_("结果"), max_length=32)  # sent | not_subscribed | failed | no_template
    detail = models.CharField(_("说明"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("通知记录")
        verbose_name_plural = _("通知记录")
        constraints = [models.UniqueConstraint(fields=["booking", "kind"], condition=Q(status="sent"),
                                               name="notice_sent_once")]

    def __str__(self) -> str:
        return f"{self.kind} {self.status}"


class ScheduleTemplate(BaseModel):
    """A weekly session (every Monday morning, …) from which operators build a week of schedules."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("周一")
        TUESDAY = 1, _("周二")
        WEDNESDAY = 2, _("周三")
        THURSDAY = 3, _("周四")
        FRIDAY = 4, _("周五")
        SATURDAY = 5, _("周六")
        SUNDAY = 6, _("周日")

    doctor = models.ForeignKey("accounts.DoctorProfile", on_delete=models.CASCADE, related_name="templates",
                               verbose_name=_("医生"))
    weekday = models.PositiveSmallIntegerField(_("星期"), choices=Weekday.choices)
    period = models.CharField(_("时段"), max_length=16, choices=Period.choices)
    visit_type = models.CharField(_("就诊方式"), max_length=16, choices=VisitType.choices)
    capacity = models.PositiveIntegerField(_("号源数"))
    fee_fen = models.PositiveBigIntegerField(_("挂号费（分）"))
    starts_at = models.TimeField(_("开始时间"))
    window_minutes = models.PositiveIntegerField(_("每段分钟数"), default=30)
    per_window = models.PositiveIntegerField(_("每段人数"), default=5)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("排班模板")
        verbose_name_plural = _("排班模板")
        ordering = ["doctor", "weekday", "period"]
        constraints = [models.UniqueConstraint(fields=["doctor", "weekday", "period", "visit_type"],
                                               name="uniq_template_session")]

    def __str__(self) -> str:
        return f"{self.doctor} {self.get_weekday_display()} {self.get_period_display()}"
