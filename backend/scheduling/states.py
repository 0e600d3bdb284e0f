"""Schedules and bookings: choices and allowed transitions (DESIGN §5)."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Period(models.TextChoices):
    MORNING = "morning", _("上午")
    AFTERNOON = "afternoon", _("下午")
    EVENING = "evening", _("晚上")


class VisitType(models.TextChoices):
    OFFLINE = "offline", _("线下门诊")
    ONLINE_TEXT = "online_text", _("图文复诊")
    ONLINE_VIDEO = "online_video", _("视频复诊")


class ScheduleStatus(models.TextChoices):
    OPEN = "open", _("正常")
    STOPPED = "stopped", _("停诊")


class BookingStatus(models.TextChoices):
    HELD = "held", _("待支付")
    CONFIRMED = "confirmed", _("预约成功")
    CHECKED_IN = "checked_in", _("已签到")
    COMPLETED = "completed", _("已就诊")
    EXPIRED = "expired", _("已过期")
    CANCELLED = "cancelled", _("已取消")
    NO_SHOW = "no_show", _("爽约")


ACTIVE_BOOKING = (BookingStatus.HELD, BookingStatus.CONFIRMED, BookingStatus.CHECKED_IN)
