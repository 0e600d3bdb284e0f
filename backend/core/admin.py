"""The audit log in the admin: read-only, newest first."""

from django.contrib import admin

from backend.core.admin_access import OperatorOnlyAdmin
from backend.core.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(OperatorOnlyAdmin, admin.ModelAdmin):
    list_display = ("seq", "occurred_at", "action", "actor_label", "object_type", "object_id", "ip")
    list_filter = ("action",)
    search_fields = ("object_id", "actor_id", "action")
    ordering = ("-seq",)

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
