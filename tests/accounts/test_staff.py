"""Staff web login (sessions, CSRF, lockout) and the qualification rules IH-04 / IH-09."""

from __future__ import annotations

from datetime import date

import pytest
from django.test import Client
from django.utils import timezone

from backend.accounts.models import DoctorProfile, PharmacistProfile
from backend.accounts.services.staff import doctor_assert_may_consult_online, pharmacist_assert_may_review
from backend.core.errors import PermissionDenied
from backend.core.models import AuditEvent

PASSWORD = "Li-Doctor-2026!"


def _csrf_client() -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True)
    page = client.get("/staff/login/")
    assert page.status_code == 200 and "工作人员登录" in page.content.decode()
    return client, page.cookies["csrftoken"].value


def test_staff_login_with_session_and_csrf(dr_li):
    client, token = _csrf_client()
    resp = client.post("/staff/login/", {"username": "dr_li", "password": PASSWORD, "csrfmiddlewaretoken": token})
    assert resp.status_code == 302 and resp["Location"] == "/staff/"
    home = client.get("/staff/")
    assert home.status_code == 200 and "医生" in home.content.decode()
    assert AuditEvent.objects.filter(action="staff.login", actor_id=str(dr_li.pk)).count() == 1


def test_staff_login_without_csrf_token_is_refused(dr_li):
    client, _ = _csrf_client()
    resp = client.post("/staff/login/", {"username": "dr_li", "password": PASSWORD})
    assert resp.status_code == 403
    assert "_auth_user_id" not in client.session


def test_staff_home_requires_login(db):
    resp = Client().get("/staff/")
    assert resp.status_code == 302 and resp["Location"].startswith("/staff/login/")


def test_wrong_password_then_lockout(dr_li, settings):
    settings.STAFF_LOGIN_MAX_FAILURES = 5
    client, token = _csrf_client()
    for attempt in range(4):
        resp = client.post("/staff/login/", {"username": "dr_li", "password": f"wrong{attempt}",
                                             "csrfmiddlewaretoken": token})
        assert resp.status_code == 401 and "用户名或密码错误" in resp.content.decode()
    fifth = client.post("/staff/login/", {"username": "dr_li", "password": "wrong5", "csrfmiddlewaretoken": token})
    assert fifth.status_code == 429 and "锁定" in fifth.content.decode()
    # even the right password is refused while locked
    right = client.post("/staff/login/", {"username": "dr_li", "password": PASSWORD, "csrfmiddlewaretoken": token})
    assert right.status_code == 429
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="staff.login_failed").count() == 5
    assert AuditEvent.objects.filter(action="staff.locked_out").count() == 1
    assert AuditEvent.objects.filter(action="staff.login_refused_locked").count() == 1


def test_a_success_resets_the_failure_count(dr_li, settings):
    settings.STAFF_LOGIN_MAX_FAILURES = 3
    client, token = _csrf_client()
    for _ in range(2):
        client.post("/staff/login/", {"username": "dr_li", "password": "bad", "csrfmiddlewaretoken": token})
    ok = client.post("/staff/login/", {"username": "dr_li", "password": PASSWORD, "csrfmiddlewaretoken": token})
    assert ok.status_code == 302
    client2, token2 = _csrf_client()
    for _ in range(2):
        resp = client2.post("/staff/login/", {"username": "dr_li", "password": "bad", "csrfmiddlewaretoken": token2})
        assert resp.status_code == 401


def test_patient_accounts_cannot_use_the_staff_login(patient_wang):
    from backend.accounts.models import User

    user = User.objects.get(pk=patient_wang.user_id)
    user.set_password("Patient-Pass-2026!")
    user.save()
    client, token = _csrf_client()
    resp = client.post("/staff/login/", {"username": user.username, "password": "Patient-Pass-2026!",
                                         "csrfmiddlewaretoken": token})
    assert resp.status_code == 401


def test_open_redirect_is_refused(dr_li):
    client, token = _csrf_client()
    resp = client.post("/staff/login/", {"username": "dr_li", "password": PASSWORD, "csrfmiddlewaretoken": token,
                                         "next": "https://evil.example/"})
    assert resp["Location"] == "/staff/"


def _years_ago(years: int, days: int = 0) -> date:
    today = timezone.localdate()
    return today.replace(year=today.year - years) + timezone.timedelta(days=days)


def test_doctor_needs_three_years_of_independent_practice(dr_li):
    doctor = DoctorProfile.objects.get(user=dr_li)
    doctor_assert_may_consult_online(doctor)  # since 2015
    doctor.independent_practice_since = _years_ago(3, days=1)  # one day short of three years
    with pytest.raises(PermissionDenied) as exc:
        doctor_assert_may_consult_online(doctor)
    assert exc.value.code == "doctor_practice_years_insufficient" and exc.value.detail == {"years": 2}
    doctor.independent_practice_since = _years_ago(3)
    doctor_assert_may_consult_online(doctor)
    doctor.is_active = False
    with pytest.raises(PermissionDenied, match="不在岗"):
        doctor_assert_may_consult_online(doctor)


def test_pharmacist_needs_three_years_and_training(pharmacist_zhao, settings):
    pharmacist = PharmacistProfile.objects.get(user=pharmacist_zhao)
    pharmacist_assert_may_review(pharmacist)
    pharmacist.dispensing_since = _years_ago(2)
    with pytest.raises(PermissionDenied) as exc:
        pharmacist_assert_may_review(pharmacist)
    assert exc.value.code == "pharmacist_experience_insufficient"
    settings.PHARMACIST_MIN_DISPENSING_YEARS_REVIEW = 2  # the threshold is policy, not code
    pharmacist_assert_may_review(pharmacist)
    pharmacist.review_training_passed = False
    with pytest.raises(PermissionDenied) as exc:
        pharmacist_assert_may_review(pharmacist)
    assert exc.value.code == "pharmacist_training_missing"


def test_admin_login_form_is_not_a_way_around_the_lockout(db):
    from backend.accounts.models import Role
    from backend.accounts.services.staff import StaffAccount, staff_user_create

    staff_user_create(account=StaffAccount("op_wu", "Operator-Wu-2026!", "吴运营", (Role.OPERATOR,)))
    client = Client()
    resp = client.post("/admin/login/?next=/admin/", {"username": "op_wu", "password": "Operator-Wu-2026!"})
    assert resp.status_code == 302 and resp["Location"].startswith("/staff/login/?next=/admin/")
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/")["Location"].startswith("/admin/login/")


@pytest.mark.django_db(transaction=True)
def test_parallel_guesses_cannot_outrun_the_lockout(dr_li, settings):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    settings.STAFF_LOGIN_MAX_FAILURES = 5
    client, token = _csrf_client()
    cookies = client.cookies

    def guess(i: int) -> int:
        c = Client(enforce_csrf_checks=True)
        c.cookies = cookies
        try:
            return c.post("/staff/login/", {"username": "dr_li", "password": f"guess{i}",
                                            "csrfmiddlewaretoken": token}).status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(guess, range(40)))
    checked = AuditEvent.objects.filter(action="staff.login_failed").count()
    assert checked <= 5, checked  # at most five passwords were ever checked
    assert statuses.count(429) >= 35
