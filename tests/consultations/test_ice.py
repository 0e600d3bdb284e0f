"""ICE servers for video visits: coturn's REST credentials (checked against openssl), and who gets them."""

from __future__ import annotations

import base64
import subprocess

import pytest

from backend.consultations.services.eligibility import StartRequest, consultation_start
from backend.consultations.services.ice import turn_credential
from backend.consultations.services.lifecycle import consultation_accept, consultation_end
from tests.consultations.helpers import (
    TERMS_VERSION,
    consent_terms,
    doctor_service,
    in_progress,
    offline_visit,
    paid,
    patient_client,
    staff_client,
)
from tests.scheduling.helpers import patient_account

TURN = "turn:turn.example.org:3478?transport=udp"


@pytest.fixture
def turn(settings):
    settings.STUN_URLS = ["stun:turn.example.org:3478"]
    settings.TURN_URLS = [TURN]
    settings.TURN_SHARED_SECRET = "north-gate-5f2c"
    settings.TURN_CREDENTIAL_TTL_SECONDS = 3600
    return settings


def test_the_credential_is_coturns_rest_scheme(turn):
    cred = turn_credential(user_id="u-42", now=1_700_000_000)
    assert cred.username == "1700003600:u-42" and cred.expires_at == 1_700_003_600
    openssl = subprocess.run(["openssl", "dgst", "-sha1", "-hmac", turn.TURN_SHARED_SECRET, "-binary"],
                             input=cred.username.encode(), capture_output=True, check=True)
    assert cred.credential == base64.b64encode(openssl.stdout).decode()


def _video_visit(doctor_user, label: str):
    consent_terms()
    user, patient = patient_account(label)
    c = paid(consultation_start(account=user, ip="", req=StartRequest(
        patient_id=patient.pk, service_id=doctor_service(doctor_user, kind="video", fee_fen=5000).pk,
        terms_version=TERMS_VERSION, offline_visit_id=offline_visit(patient).pk)))
    return user, consultation_accept(user=doctor_user, consultation_id=c.pk)


def test_the_two_parties_of_an_open_video_visit_get_servers(db, turn, dr_li):
    user, c = _video_visit(dr_li, "video_wang")
    mine = patient_client(user).get(f"/api/consultations/{c.pk}/ice-servers").json()
    assert mine["ice_servers"][0] == {"urls": ["stun:turn.example.org:3478"]}
    relay = mine["ice_servers"][1]
    assert relay["urls"] == [TURN] and relay["username"].endswith(f":{user.pk}")
    assert mine["expires_at"] == int(relay["username"].split(":")[0])
    doctors = staff_client(dr_li).get(f"/api/staff/consultations/{c.pk}/ice-servers").json()
    assert doctors["ice_servers"][1]["username"].endswith(f":{dr_li.pk}")
    stranger, _ = patient_account("video_stranger")
    assert patient_client(stranger).get(f"/api/consultations/{c.pk}/ice-servers").status_code == 404
    consultation_end(user=dr_li, consultation_id=c.pk)
    ended = patient_client(user).get(f"/api/consultations/{c.pk}/ice-servers")
    assert ended.status_code == 409 and ended.json()["code"] == "consultation_not_open"


def test_a_text_visit_gets_no_relay_and_a_bare_demo_gets_an_empty_list(db, turn, dr_li, settings):
    user, patient = patient_account("text_wang")
    text = in_progress(user, patient, dr_li)
    refused = patient_client(user).get(f"/api/consultations/{text.pk}/ice-servers")
    assert refused.status_code == 409 and refused.json()["code"] == "consultation_not_video"
    settings.STUN_URLS, settings.TURN_URLS = [], []
    video_user, video = _video_visit(dr_li, "video_demo")
    assert patient_client(video_user).get(f"/api/consultations/{video.pk}/ice-servers").json() == {
        "ice_servers": [], "expires_at": None}
