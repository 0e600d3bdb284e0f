"""Role-based access to the operator admin: operators (and superusers) only, whatever Django perms say."""

from __future__ import annotations

from backend.core.audit import audit_record
from backend.core.authz import client_ip


def is_operator(user) -> bool:
    if not (user.is_active and user.is_staff):
        return False
    return user.is_superuser or bool(getattr(user, "has_role", lambda role: False)("operator"))


class OperatorOnlyAdmin:
    """Mix into a ModelAdmin; subclasses can narrow further (e.g. read-only)."""

    def has_module_permission(self, request) -> bool:
        return is_operator(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_operator(request.user)

    def has_add_permission(self, request, *args) -> bool:
        return is_operator(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return is_operator(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return is_operator(request.user)

    # every admin write also lands in the hash-chained audit log (IH-23)
    def log_addition(self, request, obj, message):
        _audit_admin(request, "admin.add", obj, message)
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        _audit_admin(request, "admin.change", obj, message)
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        for obj in queryset:
            _audit_admin(request, "admin.delete", obj, "")
        return super().log_deletions(request, queryset)


def _audit_admin(request, action: str, obj, message) -> None:
    audit_record(action=action, actor=request.user, obj=obj, ip=client_ip(request),
                 detail={"change": message if isinstance(message, str | list) else str(message)})


class ReadOnlyAdmin(OperatorOnlyAdmin):
    """Operators may look, nobody may add, change or delete (records, ledgers, logs)."""

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
