"""The doctor console's pages: who may open them, and what they render (the data itself comes from the API)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.consultations.helpers import paid, staff_client, started
from tests.scheduling.helpers import patient_account


@pytest.fixture
def visit_of_li(dr_li):
    user, patient = patient_account("console_page")
    return paid(started(user, patient, dr_li))


def test_anonymous_is_sent_to_the_staff_login(db):
    for path in ("/console/", "/console/c/0b7f4f59-3f2a-4e3c-9d1e-2b8d3c7c9a10/"):
        resp = Client().get(path)
        assert resp.status_code == 302
        assert resp["Location"] == f"/staff/login/?next={path}"


def test_a_pharmacist_is_refused(pharmacist_zhao, visit_of_li):
    client = staff_client(pharmacist_zhao)
    assert client.get("/console/").status_code == 403
    assert client.get(f"/console/c/{visit_of_li.pk}/").status_code == 403


def test_a_doctor_gets_the_queue_with_a_csrf_cookie(dr_li):
    resp = staff_client(dr_li).get("/console/")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert 'id="queue-page"' in html and 'data-visit-base="/console/c/"' in html
    assert 'id="queue-waiting"' in html and 'id="queue-in-progress"' in html
    assert "consultations/queue.js" in html and 'id="console-labels"' in html
    assert "待接诊" in html and "问诊中" in html and "李医生 · 内科 · 主治医师" in html
    assert resp.cookies["csrftoken"].value


def test_a_doctor_opens_their_own_consultation(dr_li, visit_of_li):
    resp = staff_client(dr_li).get(f"/console/c/{visit_of_li.pk}/")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert f'data-id="{visit_of_li.pk}"' in html
    for marker in ('id="btn-accept"', 'id="messages"', 'id="chat-form"', 'id="btn-tongue"', 'id="record-form"',
                   'data-system="tcm_disease"', 'data-system="tcm_syndrome"', 'data-system="icd10"',
                   'id="btn-sign"', 'id="btn-verify"', "consultations/visit.js"):
        assert marker in html, marker
    assert resp.cookies["csrftoken"].value


def test_another_doctors_consultation_is_not_found(dr_wu, visit_of_li):
    assert staff_client(dr_wu).get(f"/console/c/{visit_of_li.pk}/").status_code == 404


def test_unknown_consultation_is_not_found(dr_li):
    assert staff_client(dr_li).get("/console/c/0b7f4f59-3f2a-4e3c-9d1e-2b8d3c7c9a10/").status_code == 404


def test_staff_home_links_the_console_for_doctors_only(dr_li, pharmacist_zhao):
    assert 'href="/console/"' in staff_client(dr_li).get("/staff/").content.decode()
    assert 'href="/console/"' not in staff_client(pharmacist_zhao).get("/staff/").content.decode()
