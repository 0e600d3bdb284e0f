"""Operator admin (zh-hans): users and roles, staff profiles, 就诊人 with masked personal data."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from backend.accounts.models import (
    CourierProfile,
    Department,
    DispenserProfile,
    DoctorProfile,
    PatientProfile,
    PharmacistProfile,
    User,
    UserRole,
    VerificationStatus,
)
from backend.accounts.services.realname import patient_profile_verify_manually
from backend.core.admin_access import OperatorOnlyAdmin
from backend.core.audit import audit_record
from backend.core.authz import client_ip
from backend.core.errors import DomainError


class UserRoleInline(OperatorOnlyAdmin, admin.TabularInline):
    model = UserRole
    extra = 0


@admin.register(User)
class UserAdmin(OperatorOnlyAdmin, DjangoUserAdmin):
    inlines = [UserRoleInline]
    list_display = ("username", "display_name", "phone_display", "is_active", "is_staff", "date_joined")
    search_fields = ("username", "display_name")
    readonly_fields = ("phone_display", "phone_verified_at", "last_login", "date_joined")
    fieldsets = (
        (None, {"fields": ("username", "password", "display_name", "phone_display", "phone_verified_at")}),
        (_("权限"), {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        (_("时间"), {"fields": ("last_login", "date_joined")}),
    )

    @admin.display(description=_("手机号"))
    def phone_display(self, obj: User) -> str:
        return obj.phone_masked

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:  # operators cannot make anyone (themselves) a superuser
            fields.append("is_superuser")
        return fields


@admin.register(Department)
class DepartmentAdmin(OperatorOnlyAdmin, admin.ModelAdmin):
    list_display = ("name", "code", "sort_order", "is_active")
    list_editable = ("sort_order", "is_active")


@admin.register(DoctorProfile)
class DoctorProfileAdmin(OperatorOnlyAdmin, admin.ModelAdmin):
    list_display = ("user", "department", "title", "independent_practice_since", "may_prescribe",
                    "may_prescribe_toxic", "is_active")
    list_filter = ("department", "title", "may_prescribe", "is_active")
    autocomplete_fields = ("user",)


@admin.register(PharmacistProfile)
class PharmacistProfileAdmin(OperatorOnlyAdmin, admin.ModelAdmin):
    list_display = ("user", "title", "dispensing_since", "review_training_passed", "is_active")
    autocomplete_fields = ("user",)


@admin.register(DispenserProfile)
class DispenserProfileAdmin(OperatorOnlyAdmin, admin.ModelAdmin):
    list_display = ("user", "pharmacy", "is_active")
    autocomplete_fields = ("user",)


@admin.register(CourierProfile)
class CourierProfileAdmin(OperatorOnlyAdmin, admin.ModelAdmin):
    list_display = ("user", "service_area", "is_active")
    autocomplete_fields = ("user",)


@admin.register(PatientProfile)
class PatientProfileAdmin(OperatorOnlyAdmin, admin.ModelAdmin):
    """Personal data is shown masked; the encrypted columns are never editable here."""

    list_display = ("name", "relation", "id_type", "id_masked", "phone_masked_display", "verification_status",
                    "owner", "archived_at")
    list_filter = ("verification_status", "id_type", "relation")
    search_fields = ("name",)
    fields = ("owner", "name", "relation", "id_type", "id_masked", "sex", "birth_date", "phone_masked_display",
              "allergies", "guardian", "is_default", "verification_status", "verified_at",
              "verification_serial", "verification_note", "archived_at")
    readonly_fields = fields
    actions = ["approve_manual_verification", "reject_manual_verification"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        audit_record(action="admin.patient_profile.list", actor=request.user, ip=client_ip(request))
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        audit_record(action="admin.patient_profile.read", actor=request.user, ip=client_ip(request),
                     object_type="accounts.patientprofile", object_id=str(object_id)[:64])
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description=_("证件号码"))
    def id_masked(self, obj: PatientProfile) -> str:
        return obj.id_number_masked

    @admin.display(description=_("手机号"))
    def phone_masked_display(self, obj: PatientProfile) -> str:
        return obj.phone_masked

    def _decide(self, request, queryset, approve: bool) -> None:
        done = 0
        for profile in queryset.filter(verification_status=VerificationStatus.PENDING_MANUAL):
            try:
                patient_profile_verify_manually(profile_id=profile.pk, operator=request.user, approve=approve)
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{profile}: {exc.message}", messages.WARNING)
        self.message_user(request, _("已处理 %(n)d 位就诊人") % {"n": done})

    @admin.action(description=_("人工实名审核：通过"))
    def approve_manual_verification(self, request, queryset):
        self._decide(request, queryset, True)

    @admin.action(description=_("人工实名审核：不通过"))
    def reject_manual_verification(self, request, queryset):
        self._decide(request, queryset, False)
