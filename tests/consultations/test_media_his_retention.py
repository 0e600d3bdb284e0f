"""Images (type, size, signed short-lived links), tongue-photo requests, the HIS import, audited reads, retention."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from backend.consultations.models import ClinicalRecord, Consultation, MediaFile, Message, OfflineVisit
from backend.consultations.services.eligibility import offline_visits_for
from backend.consultations.services.lifecycle import consultation_end
from backend.consultations.services.messages import message_post
from backend.consultations.services.retention import retention_purge
from backend.core.errors import ValidationFailed
from backend.core.models import AuditEvent
from tests.consultations.helpers import in_progress, patient_client, png_bytes, staff_client
from tests.scheduling.helpers import patient_account


@pytest.fixture
def visit(db, dr_li):
    user, patient = patient_account("wang")
    return user, in_progress(user, patient, dr_li)


def _upload(client, cid, data: bytes, purpose="chat_image", name="a.png"):
    return client.post(f"/api/consultations/{cid}/media?purpose={purpose}",
                       {"file": SimpleUploadedFile(name, data, content_type="image/png")})


def test_images_are_checked_stored_and_served_by_expiring_links(visit, settings, dr_li):
    user, c = visit
    client = patient_client(user)
    assert _upload(client, c.pk, b"GIF89a....").json()["code"] == "upload_type_invalid"
    settings.CONSULT_UPLOAD_MAX_BYTES = 100
    big = _upload(client, c.pk, png_bytes((200, 200), "blue"))
    assert big.status_code == 422 and big.json()["code"] == "upload_too_large"
    settings.CONSULT_UPLOAD_MAX_BYTES = 10 * 2**20
    up = _upload(client, c.pk, png_bytes())
    assert up.status_code == 201 and up.json()["content_type"] == "image/png"
    media = MediaFile.objects.get(pk=up.json()["id"])
    assert media.consultation_id == c.pk and len(media.sha256) == 64
    served = Client().get(up.json()["url"])  # no login: the link itself is the permission, for a short while
    assert served.status_code == 200 and served.content == png_bytes()
    sent = client.post(f"/api/consultations/{c.pk}/messages", {"kind": "image", "payload": {"media_id": str(media.pk)}},
                       content_type="application/json")
    assert sent.status_code == 201 and sent.json()["payload"]["url"].startswith("/media/c/")
    settings.MEDIA_URL_TTL_SECONDS = 0
    time.sleep(1.1)
    expired = Client().get(up.json()["url"])
    assert expired.status_code == 404 and expired.json()["code"] == "media_link_invalid"
    forged = Client().get(up.json()["url"][:-3] + "abc")
    assert forged.status_code == 404
    stranger, _ = patient_account("stranger")
    assert _upload(patient_client(stranger), c.pk, png_bytes()).status_code == 404


def test_someone_elses_image_cannot_be_sent(visit, dr_li):
    user, c = visit
    doctors = MediaFile.objects.create(uploader=dr_li, purpose="chat_image", consultation=c, content_type="image/png",
                                       size=1, sha256="0" * 64, file="x.png")
    with pytest.raises(ValidationFailed):
        message_post(user=user, consultation_id=c.pk, kind="image", payload={"media_id": str(doctors.pk)})


def test_tongue_photo_request_and_answer(visit, dr_li):
    user, c = visit
    request, _ = message_post(user=dr_li, consultation_id=c.pk, kind="tongue_request", body="请拍舌面和舌下",
                              payload={"views": ["surface", "underside"]})
    client = patient_client(user)
    surface = _upload(client, c.pk, png_bytes(color="pink"), purpose="tongue").json()["id"]
    under = _upload(client, c.pk, png_bytes(color="purple"), purpose="tongue").json()["id"]
    half = client.post(f"/api/consultations/{c.pk}/messages", {"kind": "tongue_photos", "payload": {
        "request_seq": request.seq, "photos": {"surface": surface}}}, content_type="application/json")
    assert half.status_code == 422 and half.json()["detail"] == {"missing": ["underside"]}
    done = client.post(f"/api/consultations/{c.pk}/messages", {"kind": "tongue_photos", "payload": {
        "request_seq": request.seq, "photos": {"surface": surface, "underside": under}}},
        content_type="application/json")
    assert done.status_code == 201
    assert set(done.json()["payload"]["urls"]) == {"surface", "underside"}
    with pytest.raises(ValidationFailed):  # a patient cannot ask for tongue photos
        message_post(user=user, consultation_id=c.pk, kind="tongue_request")


def test_his_import_needs_the_token_and_upserts(db, settings):
    _, patient = patient_account("his")
    row = {"his_visit_no": "MZ20261101-0001", "patient_name": patient.name, "id_number": patient.id_number.lower(),
           "visit_date": str(timezone.localdate() - timedelta(days=10)), "department_name": "内科",
           "tcm_diagnosis": "不寐·心脾两虚证", "western_diagnosis": "失眠", "icd10_code": "G47.0"}
    anonymous = Client().post("/api/his/offline-visits", {"visits": [row]}, content_type="application/json")
    assert anonymous.status_code == 401
    wrong = Client().post("/api/his/offline-visits", {"visits": [row]}, content_type="application/json",
                          HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 401
    auth = {"HTTP_AUTHORIZATION": f"Bearer {settings.HIS_IMPORT_TOKEN}"}
    first = Client().post("/api/his/offline-visits", {"visits": [row]}, content_type="application/json", **auth)
    assert first.json() == {"created": 1, "updated": 0}
    again = Client().post("/api/his/offline-visits", {"visits": [row | {"doctor_name": "李医生"}]},
                          content_type="application/json", **auth)
    assert again.json() == {"created": 0, "updated": 1}
    assert OfflineVisit.objects.get().doctor_name == "李医生"
    assert [v.his_visit_no for v in offline_visits_for(patient)] == ["MZ20261101-0001"]
    no_diagnosis = Client().post("/api/his/offline-visits", {"visits": [row | {"his_visit_no": "X2",
                                 "tcm_diagnosis": "", "western_diagnosis": ""}]}, content_type="application/json",
                                 **auth)
    assert no_diagnosis.status_code == 422 and no_diagnosis.json()["code"] == "his_visit_without_diagnosis"


def test_every_read_is_audited(visit, dr_li):
    user, c = visit
    client = patient_client(user)
    before = AuditEvent.objects.filter(object_id=str(c.pk), action__startswith="consultation.read").count()
    client.get(f"/api/consultations/{c.pk}")
    client.get(f"/api/consultations/{c.pk}/messages")
    doctor = staff_client(dr_li)
    doctor.get(f"/api/staff/consultations/{c.pk}")
    doctor.get(f"/api/staff/consultations/{c.pk}/messages?after_seq=1")
    actions = list(AuditEvent.objects.filter(object_id=str(c.pk), action__startswith="consultation.read")
                   .order_by("seq").values_list("action", "actor_id"))[before:]
    assert actions == [("consultation.read_consultation", str(user.pk)), ("consultation.read_messages", str(user.pk)),
                       ("consultation.read_consultation", str(dr_li.pk)), ("consultation.read_messages", str(dr_li.pk))]


def _ended_days_ago(c, days: int, *, follow_up_days_ago: int | None = None) -> None:
    """The visit ended ``days`` ago; its 追问 window closed ``follow_up_days_ago`` (default: 2 days later)."""
    now = timezone.now()
    follow_up = days - 2 if follow_up_days_ago is None else follow_up_days_ago
    Consultation.objects.filter(pk=c.pk).update(ended_at=now - timedelta(days=days),
                                                follow_up_until=now - timedelta(days=follow_up))


def test_retention_purges_only_what_is_past_it(visit, dr_li, settings, django_capture_on_commit_callbacks):
    user, c = visit
    message_post(user=user, consultation_id=c.pk, kind="text", body="三年前的消息")
    client = patient_client(user)
    media_id = _upload(client, c.pk, png_bytes()).json()["id"]
    proof = MediaFile.objects.create(uploader=user, purpose="proof", consultation=c, content_type="image/png",
                                     size=1, sha256="0" * 64, file="consultations/proof.png")
    consultation_end(user=dr_li, consultation_id=c.pk)
    ClinicalRecord.objects.create(consultation=c, doctor=c.doctor, chief_complaint="胃脘痛")
    assert retention_purge() == {"consultations": 0, "messages": 0, "files": 0, "records": 0}
    chat_days = settings.RETENTION_CHAT_DAYS
    _ended_days_ago(c, chat_days - 1)
    assert retention_purge()["consultations"] == 0 and Message.objects.filter(consultation=c).exists()
    _ended_days_ago(c, chat_days + 1, follow_up_days_ago=chat_days - 1)  # 追问 messages came later: kept
    assert retention_purge()["consultations"] == 0
    _ended_days_ago(c, chat_days + 3)
    media = MediaFile.objects.get(pk=media_id)
    path = media.file.path
    with django_capture_on_commit_callbacks(execute=True):  # files go after the rows are committed
        result = retention_purge()
    assert result["consultations"] == 1 and result["files"] == 1 and result["records"] == 0
    assert not Message.objects.filter(consultation=c).exists()
    assert MediaFile.objects.get(pk=media_id).purged_at is not None
    assert not Path(path).exists()
    assert ClinicalRecord.objects.filter(consultation=c).exists()  # the record is kept 15 years …
    assert MediaFile.objects.get(pk=proof.pk).purged_at is None  # … with the proof of the prior diagnosis
    _ended_days_ago(c, settings.RETENTION_RECORD_DAYS + 3)
    assert retention_purge()["records"] == 1 and not ClinicalRecord.objects.filter(consultation=c).exists()
    assert MediaFile.objects.get(pk=proof.pk).purged_at is not None
    assert AuditEvent.objects.filter(action="retention.chat_purged", object_id=str(c.pk)).count() == 1


def test_retention_below_the_legal_minimum_is_refused():
    proc = subprocess.run([sys.executable, "-c", "import django; django.setup()"], capture_output=True, text=True,
                          env={**os.environ, "RETENTION_CHAT_DAYS": str(3 * 365),  # three years less the leap day
                               "DJANGO_SETTINGS_MODULE": "backend.config.settings"}, timeout=60)
    assert proc.returncode != 0 and "IH-20" in proc.stderr
