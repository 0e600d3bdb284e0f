"""Shared fixtures: real PostgreSQL and Redis (set up by bin/test), loopback gateway sandboxes,
and the named people of the clinic (``patient_wang``, ``dr_li``, ``pharmacist_zhao``...)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connections
from django.test import Client

from backend.gateways.sandboxes import start_sandboxes

# Valid resident ID numbers (GB 11643 check digits computed, not real people).
ID_WANG = "110101198803074518"  # male, 1988-03-07
ID_WANG_WIFE = "110101199005126023"  # female, 1990-05-12
ID_CHILD = "440306202306011231"  # male, 2023-06-01: under 6
ID_GRANDPA = "310115195001010012"  # male, 1950-01-01
_openids = itertools.count(1)


@pytest.fixture(scope="session")
def sandboxes():
    boxes = start_sandboxes(
        wechat_appid=django_settings.WECHAT_APPID, wechat_secret=django_settings.WECHAT_APP_SECRET,
        realname_key=django_settings.REALNAME_APP_KEY, realname_secret=django_settings.REALNAME_APP_SECRET,
    )
    yield boxes
    boxes.stop()


@pytest.fixture(autouse=True)
def _gateway_settings(settings, sandboxes):
    """Point the gateways at the sandboxes (random loopback ports), start each test clean."""
    settings.WECHAT_API_BASE = sandboxes.wechat.base_url
    settings.REALNAME_API_BASE = sandboxes.realname.base_url
    sandboxes.wechat.reset()
    sandboxes.realname.reset()
    cache.clear()
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only
    yield


@pytest.fixture(autouse=True)
async def _close_async_thread_connections():
    """STACK-NOTES item 7: the async ORM runs in another thread with its own connection."""
    yield
    await sync_to_async(connections.close_all)()


@dataclass
class LoggedIn:
    """A mini-program user: their tokens and a client that sends the bearer token."""

    openid: str
    access_token: str
    refresh_token: str
    user_id: str
    client: Client

    def auth(self) -> dict[str, str]:
        return {"HTTP_AUTHORIZATION": f"Bearer {self.access_token}"}

    def get(self, path: str, **kw):
        return self.client.get(path, **self.auth(), **kw)

    def post(self, path: str, data: object = None, **kw):
        return self.client.post(path, data=data if data is not None else {}, content_type="application/json",
                                **self.auth(), **kw)

    def patch(self, path: str, data: object, **kw):
        return self.client.patch(path, data=data, content_type="application/json", **self.auth(), **kw)

    def delete(self, path: str, **kw):
        return self.client.delete(path, **self.auth(), **kw)


def wechat_login(sandboxes, openid: str | None = None, unionid: str | None = None) -> LoggedIn:
    openid = openid or f"oTEST{next(_openids):08d}"
    code = sandboxes.wechat.issue_login_code(openid, unionid=unionid)
    client = Client()
    resp = client.post("/api/auth/wechat-login", {"code": code}, content_type="application/json")
    assert resp.status_code == 200, resp.content
    body = resp.json()
    return LoggedIn(openid, body["access_token"], body["refresh_token"], body["user"]["id"], client)


@pytest.fixture
def login(db, sandboxes):
    return lambda openid=None, unionid=None: wechat_login(sandboxes, openid, unionid)


@pytest.fixture
def patient_wang(login):
    return login("oPATIENT_WANG")


@pytest.fixture
def patient_zhang(login):
    return login("oPATIENT_ZHANG")


def profile_payload(**overrides) -> dict[str, object]:
    data = {"name": "王建国", "id_type": "resident_id", "id_number": ID_WANG, "phone": "13800138000",
            "relation": "self", "allergies": "青霉素"}
    data.update(overrides)
    return data


@pytest.fixture
def departments(db):
    from backend.accounts.models import Department

    return {code: Department.objects.create(code=code, name=name, sort_order=i)
            for i, (code, name) in enumerate([("internal", "内科"), ("gynecology", "妇科"),
                                               ("pediatrics", "儿科"), ("acupuncture", "针灸推拿科")])}


@pytest.fixture
def dr_li(departments):
    from backend.accounts.models import DoctorProfile, DoctorTitle, Role
    from backend.accounts.services.staff import StaffAccount, staff_user_create

    user = staff_user_create(account=StaffAccount("dr_li", "Li-Doctor-2026!", "李医生", (Role.DOCTOR,)))
    DoctorProfile.objects.create(
        user=user, department=departments["internal"], title=DoctorTitle.ATTENDING,
        qualification_certificate_no="200811110110101", practice_certificate_no="110110000012345",
        independent_practice_since=date(2015, 7, 1))
    return user


@pytest.fixture
def pharmacist_zhao(db):
    from backend.accounts.models import PharmacistProfile, PharmacistTitle, Role
    from backend.accounts.services.staff import StaffAccount, staff_user_create

    user = staff_user_create(account=StaffAccount("pharmacist_zhao", "Zhao-Pharm-2026!", "赵药师",
                                                  (Role.PHARMACIST,)))
    PharmacistProfile.objects.create(user=user, title=PharmacistTitle.SUPERVISING, certificate_no="YS2012001",
                                     dispensing_since=date(2012, 3, 1), review_training_passed=True)
    return user
