"""The operator admin: zh-hans, masked personal data, a read-only audit log, manual verification."""

from __future__ import annotations

import pytest
from django.test import Client

from backend.accounts.models import PatientProfile, Role, VerificationStatus
from backend.accounts.services.staff import StaffAccount, staff_user_create
from backend.core.models import AuditEvent
from tests.conftest import ID_WANG, profile_payload


@pytest.fixture
def operator(db):
    user = staff_user_create(account=StaffAccount("operator_sun", "Operator-2026!", "孙运营", (Role.OPERATOR,)))
    client = Client()
    client.force_login(user)
    return client


def test_patient_profiles_are_masked_in_the_admin(operator, patient_wang):
    created = patient_wang.post("/api/patients", profile_payload()).json()
    listing = operator.get("/admin/accounts/patientprofile/").content.decode()
    assert "就诊人" in listing and "110***********4518" in listing and "138****8000" in listing
    assert ID_WANG not in listing and "13800138000" not in listing
    detail = operator.get(f"/admin/accounts/patientprofile/{created['id']}/change/").content.decode()
    assert ID_WANG not in detail and "13800138000" not in detail and "110***********4518" in detail


def test_audit_log_is_read_only_in_the_admin(operator):
    assert AuditEvent.objects.exists()  # the operator's account creation was audited
    row = AuditEvent.objects.first()
    assert operator.get("/admin/core/auditevent/").status_code == 200
    assert operator.get("/admin/core/auditevent/add/").status_code == 403
    assert operator.post(f"/admin/core/auditevent/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=row.pk).exists()


def test_manual_verification_action(operator, patient_wang):
    created = patient_wang.post("/api/patients", profile_payload(
        id_type="passport", id_number="E12345678", name="John Smith", sex="male", birth_date="1980-01-02")).json()
    patient_wang.post(f"/api/patients/{created['id']}/verify")
    resp = operator.post("/admin/accounts/patientprofile/", {
        "action": "approve_manual_verification", "_selected_action": [created["id"]]})
    assert resp.status_code == 302
    profile = PatientProfile.objects.get(pk=created["id"])
    assert profile.verification_status == VerificationStatus.VERIFIED
    assert AuditEvent.objects.filter(action="patient_profile.verify_manual", object_id=created["id"]).count() == 1


def test_non_operator_staff_cannot_open_the_admin(dr_li):
    client = Client()
    client.force_login(dr_li)
    assert client.get("/admin/").status_code == 302


def test_admin_changes_are_audited(operator, dr_li):
    from backend.accounts.models import Department

    dept = Department.objects.get(code="internal")
    resp = operator.post(f"/admin/accounts/department/{dept.pk}/change/", {
        "code": "internal", "name": "中医内科", "description": "", "sort_order": 0, "is_active": "on"})
    assert resp.status_code == 302, resp.content.decode()[:2000]
    event = AuditEvent.objects.get(action="admin.change", object_id=str(dept.pk))
    assert event.actor_label == "operator_sun"


def test_operator_reads_of_patient_profiles_are_audited(operator, patient_wang):
    created = patient_wang.post("/api/patients", profile_payload()).json()
    operator.get("/admin/accounts/patientprofile/")
    operator.get(f"/admin/accounts/patientprofile/{created['id']}/change/")
    assert AuditEvent.objects.filter(action="admin.patient_profile.list", actor_label="operator_sun").count() == 1
    assert AuditEvent.objects.filter(action="admin.patient_profile.read", object_id=created["id"]).count() == 1


def test_operators_cannot_grant_superuser(operator):
    from backend.accounts.models import User

    me = User.objects.get(username="operator_sun")
    page = operator.get(f"/admin/accounts/user/{me.pk}/change/").content.decode()
    assert 'name="is_superuser"' not in page
