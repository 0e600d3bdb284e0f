"""Staff: password login with lockout, qualification rules (IH-04, IH-09), staff accounts."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import authenticate
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backend.accounts.models import (
    DoctorProfile,
    PharmacistProfile,
    Role,
    User,
    UserRole,
)
from backend.core.audit import audit_record
from backend.core.counters import counter_incr
from backend.core.errors import DomainError, NotAuthenticated, PermissionDenied


class StaffLockedOut(DomainError):
    status = 429
    code = "staff_login_locked"
    default_message = _("登录失败次数过多，账户已临时锁定，请稍后再试")


def _failures_key(username: str) -> str:
    return f"staff-login:failures:{username.strip().lower()}"


def _lock_key(username: str) -> str:
    return f"staff-login:locked:{username.strip().lower()}"


def staff_login_locked(username: str) -> bool:
    return bool(cache.get(_lock_key(username)))


def staff_authenticate(*, request, username: str, password: str, ip: str = "") -> User:
    """Check a staff password; N failures in the window lock the username for a while.

    The attempt is counted before the password is checked, so parallel guesses cannot all
    slip in before the lock is set.
    """
    name = username[:150]
    attempts = counter_incr(_failures_key(username), settings.STAFF_LOGIN_LOCKOUT_SECONDS)
    if staff_login_locked(username) or attempts > settings.STAFF_LOGIN_MAX_FAILURES:
        audit_record(action="staff.login_refused_locked", ip=ip, detail={"username": name})
        raise StaffLockedOut()
    user = authenticate(request, username=username, password=password)
    if user is None or not user.is_staff_member:
        audit_record(action="staff.login_failed", ip=ip, detail={"username": name, "failures": attempts})
        if attempts >= settings.STAFF_LOGIN_MAX_FAILURES:
            cache.set(_lock_key(username), 1, timeout=settings.STAFF_LOGIN_LOCKOUT_SECONDS)
            audit_record(action="staff.locked_out", ip=ip, detail={"username": name})
            raise StaffLockedOut()
        raise NotAuthenticated(_("用户名或密码错误"), code="staff_credentials_invalid")
    cache.delete(_failures_key(username))
    audit_record(action="staff.login", actor=user, ip=ip)
    return user


def doctor_assert_may_consult_online(doctor: DoctorProfile) -> None:
    """IH-04: ≥ 3 years of independent practice (setting) to take online consultations."""
    years = doctor.years_of_practice(timezone.localdate())
    if not doctor.is_active:
        raise PermissionDenied(_("医生当前不在岗"), code="doctor_inactive")
    if years < settings.DOCTOR_MIN_PRACTICE_YEARS_ONLINE:
        raise PermissionDenied(
            _("独立执业未满%(n)d年的医生不能开展互联网诊疗") % {"n": settings.DOCTOR_MIN_PRACTICE_YEARS_ONLINE},
            code="doctor_practice_years_insufficient", detail={"years": years})


def pharmacist_assert_may_review(pharmacist: PharmacistProfile) -> None:
    """IH-09: ≥ 3 years of dispensing (setting) and passed review training to review prescriptions."""
    years = pharmacist.years_dispensing(timezone.localdate())
    if not pharmacist.is_active:
        raise PermissionDenied(_("药师当前不在岗"), code="pharmacist_inactive")
    if years < settings.PHARMACIST_MIN_DISPENSING_YEARS_REVIEW:
        raise PermissionDenied(
            _("从事调剂工作未满%(n)d年的药师不能审核处方") % {"n": settings.PHARMACIST_MIN_DISPENSING_YEARS_REVIEW},
            code="pharmacist_experience_insufficient", detail={"years": years})
    if not pharmacist.review_training_passed:
        raise PermissionDenied(_("药师未通过审方培训考核"), code="pharmacist_training_missing")


@dataclass(frozen=True)
class StaffAccount:
    username: str
    password: str
    display_name: str
    roles: tuple[str, ...]


@transaction.atomic
def staff_user_create(*, account: StaffAccount, is_superuser: bool = False) -> User:
    """A staff account with its roles (profiles are added by the caller or in the admin)."""
    user = User(username=account.username, display_name=account.display_name, is_superuser=is_superuser,
                is_staff=is_superuser or Role.OPERATOR in account.roles)
    user.set_password(account.password)
    user.save()
    UserRole.objects.bulk_create([UserRole(user=user, role=Role(r)) for r in account.roles])
    audit_record(action="staff.account_created", obj=user, detail={"roles": list(account.roles)})
    return user
