"""Reads for accounts: every patient-profile read is scoped to its owner."""

from __future__ import annotations

from django.db.models import QuerySet

from backend.accounts.models import PatientProfile, Role, User
from backend.core.authz import get_owned_or_404


def patient_profiles_active() -> QuerySet[PatientProfile]:
    return PatientProfile.objects.filter(archived_at__isnull=True)


def patient_profiles_of(owner: User) -> QuerySet[PatientProfile]:
    return patient_profiles_active().filter(owner=owner).select_related("guardian")


def patient_profile_owned(*, owner: User, profile_id: object) -> PatientProfile:
    """The owner's active profile; anyone else's answers 404 (not 403)."""
    return get_owned_or_404(patient_profiles_of(owner), pk=profile_id, owner_field="owner", owner=owner)


def user_roles(user: User) -> set[str]:
    return set(user.role_grants.values_list("role", flat=True))


def user_has_role(user: User, role: Role) -> bool:
    return user.is_authenticated and user.role_grants.filter(role=role).exists()
