"""The audit log in the admin: read-only, newest first."""

from django.contrib import admin

from backend.core.admin_access import ReadOnlyAdmin
from backend.core.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ("seq", "occurred_at", "action", "actor_label", "object_type", "object_id", "ip")
    list_filter = ("action",)
    search_fields = ("object_id", "actor_id", "action")
    ordering = ("-seq",)
