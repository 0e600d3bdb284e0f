"""Operators: consent versions, online services and fees, the HIS visits (masked), consultations (read-only)."""

from __future__ import annotations

from django.contrib import admin

from backend.consultations.models import (
    ConsentRecord,
    ConsentTerms,
    Consultation,
    DiagnosisCode,
    OfflineVisit,
    OnlineService,
)
from backend.core.admin_access import OperatorOnlyAdmin, ReadOnlyAdmin


@admin.register(ConsentTerms)
class ConsentTermsAdmin(OperatorOnlyAdmin, admin.ModelAdmin):
    """A published version is never edited (patients consented to its exact text): publish a new version."""

    list_display = ("version", "title", "effective_at", "created_at")

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and (obj is None or not ConsentRecord.objects.filter(
            terms=obj).exists())

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(OnlineService)
class OnlineServiceAdmin(OperatorOnlyAdmin, admin.ModelAdmin):
    list_display = ("department", "doctor", "kind", "fee_fen", "is_open")
    list_filter = ("kind", "is_open", "department")


@admin.register(OfflineVisit)
class OfflineVisitAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ("his_visit_no", "patient_name", "visit_date", "department_name", "doctor_name", "diagnosis_text")
    fields = ("his_visit_no", "patient_name", "visit_date", "department_name", "doctor_name", "tcm_diagnosis",
              "tcm_diagnosis_code", "western_diagnosis", "icd10_code", "is_chronic")  # the ID number stays hidden
    search_fields = ("his_visit_no",)


@admin.register(Consultation)
class ConsultationAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ("created_at", "patient", "department", "doctor", "kind", "status", "fee_fen",
                    "eligibility_basis", "eligibility_status")
    list_filter = ("status", "kind", "eligibility_basis", "department")
    fields = ("patient", "department", "doctor", "kind", "status", "fee_fen", "eligibility_basis",
              "eligibility_status", "prior_diagnosis", "eligibility_note", "pay_before", "paid_at", "accept_before",
              "accepted_at", "ended_at", "end_reason", "follow_up_until", "last_seq")  # no chat content here


@admin.register(DiagnosisCode)
class DiagnosisCodeAdmin(OperatorOnlyAdmin, admin.ModelAdmin):
    list_display = ("system", "code", "name", "initials", "edition", "is_active")
    list_filter = ("system", "edition", "is_active")
    search_fields = ("code", "name", "initials")
