"""Races on PostgreSQL: the per-account profile limit holds under concurrent creates."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from backend.accounts.idcard import resident_id_check_char
from backend.accounts.models import PatientProfile, User
from backend.accounts.services.patients import ProfileInput, patient_profile_create
from backend.core.errors import Conflict


@pytest.mark.django_db(transaction=True)
def test_profile_limit_holds_under_ten_concurrent_creates(login):
    owner = User.objects.get(pk=login("oRACE").user_id)

    def create(i: int) -> str:
        first17 = f"110101198001{i + 1:02d}001"
        try:
            patient_profile_create(owner=owner, data=ProfileInput(
                name="测试", id_type="resident_id", id_number=first17 + resident_id_check_char(first17),
                relation="other"))
            return "created"
        except Conflict as exc:
            return exc.code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(create, range(10)))
    assert outcomes.count("created") == 8
    assert outcomes.count("profile_limit_reached") == 2
    assert PatientProfile.objects.filter(owner=owner).count() == 8
    assert PatientProfile.objects.filter(owner=owner, is_default=True).count() == 1
