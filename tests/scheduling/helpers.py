"""Making schedules and verified 就诊人 quickly for booking tests."""

from __future__ import annotations

import itertools
from datetime import time, timedelta

from django.utils import timezone

from backend.accounts.idcard import resident_id_check_char
from backend.accounts.models import DoctorProfile, PatientProfile, User, VerificationStatus
from backend.scheduling.models import Schedule

_serial = itertools.count(1)


def make_schedule(doctor_user: User, *, capacity: int = 10, days_ahead: int = 1, fee_fen: int = 5000,
                  released: bool = True, period: str = "morning", visit_type: str = "offline") -> Schedule:
    doctor = DoctorProfile.objects.get(user=doctor_user)
    return Schedule.objects.create(
        doctor=doctor, department=doctor.department, date=timezone.localdate() + timedelta(days=days_ahead),
        period=period, visit_type=visit_type, capacity=capacity, remaining=capacity, fee_fen=fee_fen,
        release_at=timezone.now() + (timedelta(minutes=-1) if released else timedelta(hours=1)),
        starts_at=time(8, 0), window_minutes=30, per_window=5)


def verified_patient(owner: User, name: str = "王测试") -> PatientProfile:
    n = next(_serial)
    first17 = f"110101198{n % 10}0{(n % 9) + 1}{(n % 28) + 1:02d}{n % 1000:03d}"[:17]
    return PatientProfile.objects.create(
        owner=owner, name=name, id_type="resident_id", id_number=first17 + resident_id_check_char(first17),
        sex="male", birth_date="1980-01-01", relation="self", verification_status=VerificationStatus.VERIFIED,
        verified_at=timezone.now())


def patient_account(label: str) -> tuple[User, PatientProfile]:
    user = User.objects.create(username=f"wx_{label}")
    return user, verified_patient(user)
