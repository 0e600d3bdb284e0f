"""Operators: templates and a week builder, schedules (with 停诊), bookings, waitlist, notices."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect, render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backend.core.admin_access import OperatorOnlyAdmin, ReadOnlyAdmin
from backend.core.errors import DomainError
from backend.scheduling.models import Booking, NoticeLog, Schedule, ScheduleTemplate, WaitlistEntry
from backend.scheduling.services.bookings import schedule_stop
from backend.scheduling.services.schedules import schedule_week_build


class WeekForm(forms.Form):
    week_start = forms.DateField(label=_("周一日期"))


@admin.register(ScheduleTemplate)
class ScheduleTemplateAdmin(OperatorOnlyAdmin, admin.ModelAdmin):
    list_display = ("doctor", "weekday", "period", "visit_type", "capacity", "fee_fen", "starts_at", "is_active")
    list_filter = ("weekday", "period", "visit_type", "is_active")
    change_list_template = "scheduling/template_changelist.html"

    def get_urls(self):
        return [path("build-week/", self.admin_site.admin_view(self.build_week),
                     name="scheduling_scheduletemplate_build_week"), *super().get_urls()]

    def build_week(self, request):
        next_monday = timezone.localdate() + timedelta(days=7 - timezone.localdate().weekday())
        form = WeekForm(request.POST or None, initial={"week_start": next_monday})
        if request.method == "POST" and form.is_valid():
            created = schedule_week_build(week_start=form.cleaned_data["week_start"], actor=request.user)
            self.message_user(request, _("已生成 %(n)d 个排班") % {"n": len(created)}, messages.SUCCESS)
            return redirect("admin:scheduling_schedule_changelist")
        context = {**self.admin_site.each_context(request), "form": form, "title": _("按模板生成一周排班")}
        return render(request, "scheduling/build_week.html", context)


@admin.register(Schedule)
class ScheduleAdmin(OperatorOnlyAdmin, admin.ModelAdmin):
    list_display = ("date", "period", "doctor", "department", "visit_type", "capacity", "remaining", "fee_fen",
                    "release_at", "status")
    list_filter = ("status", "visit_type", "period", "department", "date")
    readonly_fields = ("remaining", "last_seq", "status", "stop_reason")
    actions = ["stop_sessions"]

    @admin.action(description=_("停诊（取消全部预约并全额退款）"))
    def stop_sessions(self, request, queryset):
        for schedule in queryset:
            try:
                n = schedule_stop(schedule_id=schedule.pk, actor=request.user, reason="医生停诊")
                self.message_user(request, _("%(s)s：已取消 %(n)d 个预约") % {"s": schedule, "n": n})
            except DomainError as exc:
                self.message_user(request, f"{schedule}: {exc.message}", messages.WARNING)


@admin.register(Booking)
class BookingAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ("schedule", "patient", "status", "seq", "window_start", "fee_fen", "created_at")
    list_filter = ("status",)


@admin.register(WaitlistEntry)
class WaitlistAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ("schedule", "patient", "status", "created_at")


@admin.register(NoticeLog)
class NoticeLogAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ("booking", "kind", "status", "detail", "created_at")
    list_filter = ("kind", "status")
