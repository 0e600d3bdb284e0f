"""Idempotent seeding of the demo hospital. Staff passwords are generated per install and kept
in the local state directory (never in code), then printed by the demo command."""

from __future__ import annotations

import json
import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backend.accounts.models import (
    CourierProfile,
    Department,
    DispenserProfile,
    DoctorProfile,
    PatientProfile,
    PharmacistProfile,
    Role,
    User,
    UserRole,
    VerificationStatus,
    WeChatIdentity,
)
from backend.accounts.services.patients import ProfileInput, patient_profile_create
from backend.accounts.services.staff import StaffAccount, staff_user_create
from backend.config.env import state_dir
from backend.demo import people


def demo_logins() -> dict[str, str]:
    path = state_dir() / "demo-logins.json"
    logins = json.loads(path.read_text()) if path.exists() else {}
    return logins


def _password(logins: dict[str, str], username: str) -> str:
    if username not in logins:
        logins[username] = f"qh-{secrets.token_urlsafe(9)}"
    return logins[username]


def _staff(logins: dict[str, str], username: str, name: str, role: Role) -> tuple[User, bool]:
    existing = User.objects.filter(username=username).first()
    if existing:
        return existing, False
    account = StaffAccount(username, _password(logins, username), name, (role,))
    return staff_user_create(account=account, is_superuser=role == Role.OPERATOR), True


def _seed_staff(logins: dict[str, str]) -> None:
    departments = {code: Department.objects.get_or_create(code=code, defaults={"name": name, "sort_order": i})[0]
                   for i, (code, name) in enumerate(people.DEPARTMENTS)}
    for username, name, dept, title, since, specialties in people.DOCTORS:
        user, created = _staff(logins, username, name, Role.DOCTOR)
        if created:
            DoctorProfile.objects.create(
                user=user, department=departments[dept], title=title, independent_practice_since=since,
                qualification_certificate_no=f"DEMO-Q-{username}", practice_certificate_no=f"DEMO-P-{username}",
                specialties=specialties)
    username, name, title, since = people.PHARMACIST
    user, created = _staff(logins, username, name, Role.PHARMACIST)
    if created:
        PharmacistProfile.objects.create(user=user, title=title, certificate_no="DEMO-YS-001",
                                         dispensing_since=since, review_training_passed=True)
    username, name, pharmacy = people.DISPENSER
    user, created = _staff(logins, username, name, Role.DISPENSER)
    if created:
        DispenserProfile.objects.create(user=user, pharmacy=pharmacy)
    username, name, area = people.COURIER
    user, created = _staff(logins, username, name, Role.COURIER)
    if created:
        CourierProfile.objects.create(user=user, service_area=area)
    _staff(logins, *people.OPERATOR, Role.OPERATOR)


def _seed_patient(openid: str, display_name: str, profiles: list[tuple[str, str, str, str]]) -> None:
    if WeChatIdentity.objects.filter(appid=settings.WECHAT_APPID, openid=openid).exists():
        return
    user = User(username=f"wx_demo_{openid.lower()}", display_name=display_name)
    user.set_unusable_password()
    user.save()
    UserRole.objects.create(user=user, role=Role.PATIENT)
    WeChatIdentity.objects.create(user=user, appid=settings.WECHAT_APPID, openid=openid)
    guardian = None
    for name, id_number, relation, phone in profiles:
        profile = patient_profile_create(owner=user, data=ProfileInput(
            name=name, id_type="resident_id", id_number=id_number, relation=relation, phone=phone,
            guardian_id=guardian.pk if guardian and relation == "child" else None))
        # seeded as verified; in the demo the real-name sandbox also knows these people
        PatientProfile.objects.filter(pk=profile.pk).update(
            verification_status=VerificationStatus.VERIFIED, verified_at=timezone.now(),
            verification_serial="DEMO-SEED")
        if relation == "self":
            guardian = profile


def _seed_schedules() -> None:
    """Weekly templates for every doctor, and this week and next built from them (放号 7 days ahead)."""
    from datetime import time, timedelta

    from backend.scheduling.models import ScheduleTemplate
    from backend.scheduling.services.schedules import schedule_week_build

    fees = {"chief": 10000, "associate_chief": 8000}
    for doctor in DoctorProfile.objects.all():
        for weekday in range(6):
            ScheduleTemplate.objects.get_or_create(
                doctor=doctor, weekday=weekday, period="morning", visit_type="offline",
                defaults={"capacity": 20, "fee_fen": fees.get(doctor.title, 5000), "starts_at": time(8, 0)})
            ScheduleTemplate.objects.get_or_create(
                doctor=doctor, weekday=weekday, period="afternoon", visit_type="online_text",
                defaults={"capacity": 10, "fee_fen": 3000, "starts_at": time(14, 0)})
    operator = User.objects.filter(username=people.OPERATOR[0]).first()
    today = timezone.localdate()
    for week in (today, today + timedelta(days=7)):
        schedule_week_build(week_start=week, actor=operator)


@transaction.atomic
def seed_demo() -> dict[str, str]:
    logins = demo_logins()
    _seed_staff(logins)
    _seed_schedules()
    for openid, display_name, profiles in people.PATIENTS:
        _seed_patient(openid, display_name, profiles)
    from backend.demo.consult_seed import seed_consultations

    seed_consultations()
    path = state_dir() / "demo-logins.json"
    path.write_text(json.dumps(logins, indent=2, ensure_ascii=False))
    path.chmod(0o600)
    return logins
