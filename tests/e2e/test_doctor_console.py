"""The doctor console in a real browser (Debian's Chromium via Playwright) against a live uvicorn with WebSockets.

A doctor logs in, watches the queue fill LIVE, accepts the visit, chats with a patient who uses the HTTP API
(and a WebSocket for typing), survives a dropped socket without losing or doubling a message, writes and signs
the TCM record (codes picked through the search boxes), verifies the signature, amends it, and ends the visit.
Select with ``pytest -m e2e``. Without /usr/bin/chromium the test fails (bin/test installs it).
"""

from __future__ import annotations

import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from django.db import connections
from websockets.sync.client import connect as ws_connect

from backend.accounts.models import DoctorProfile, User
from backend.accounts.services.tokens import token_family_start
from backend.consultations.models import ClinicalRecord, Consultation, DiagnosisCode, Message, OnlineService
from backend.consultations.services.eligibility import StartRequest, consultation_start
from backend.consultations.states import ConsultStatus
from tests.consultations.helpers import TERMS_VERSION, offline_visit, paid, started
from tests.live_asgi import live_asgi  # noqa: F401 - the fixture
from tests.scheduling.helpers import patient_account, verified_patient
from tools.screenshots import ARGS

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
# docs/ keeps the committed picture; a run refreshes it only when asked (QIHUANG_UPDATE_SCREENSHOTS=1)
_DOCS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SCREENSHOT = (_DOCS if os.environ.get("QIHUANG_UPDATE_SCREENSHOTS") else Path(os.environ.get(
    "QIHUANG_STATE_DIR", "/tmp")) / "screenshots") / "doctor-console.png"
WAIT_MS = 10_000
PASSWORD = "Li-Doctor-2026!"  # dr_li's, see tests/conftest.py
CODES = [("tcm_disease", "QH-D-001", "胃脘痛", "WWT"), ("tcm_syndrome", "QH-S-001", "脾胃虚寒证", "PWXHZ"),
         ("icd10", "K29.5", "慢性胃炎", "MXWY")]


@pytest.fixture
def orm():
    """Playwright's sync API runs an event loop in this thread, where Django refuses sync ORM calls:
    database work of the test runs in a worker thread of its own (committed: live_asgi is transactional)."""
    pool = ThreadPoolExecutor(max_workers=1)
    yield lambda fn, *args, **kw: pool.submit(fn, *args, **kw).result(timeout=30)
    pool.submit(connections.close_all).result()
    pool.shutdown()


@pytest.fixture
def page():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's Chromium. Run bin/test (it installs "
                    "it) or `apt-get install chromium fonts-noto-cjk`.", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900}, locale="zh-CN")
        page.set_default_timeout(WAIT_MS)
        yield page
        browser.close()


class Patient:
    """The patient's side, as the mini-program does it: the public HTTP API with a Bearer access token."""

    def __init__(self, live, token: str, consultation_id: object):
        self.live, self.token, self.consultation_id = live, token, consultation_id
        self.url = f"{live.url}/api/consultations/{consultation_id}/messages"
        self.http = requests.Session()
        self.http.trust_env = False  # loopback: never through a proxy
        self.http.headers["Authorization"] = f"Bearer {token}"

    def send(self, body: str, client_msg_id: str) -> dict:
        resp = self.http.post(self.url, json={"kind": "text", "body": body, "client_msg_id": client_msg_id},
                              timeout=10)
        assert resp.status_code == 201, resp.text
        return resp.json()

    def messages(self) -> list[dict]:
        resp = self.http.get(self.url, timeout=10)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def socket(self):
        path = f"/ws/consultations/{self.consultation_id}/?access_token={self.token}&last_seq=0"
        return ws_connect(self.live.ws_url + path, proxy=None, open_timeout=10)


def frame_where(ws, predicate, timeout: float = WAIT_MS / 1000) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
        if predicate(frame):
            return frame


def _setup_people():
    user, patient = patient_account("console_e2e")
    for system, code, name, initials in CODES:
        DiagnosisCode.objects.get_or_create(system=system, code=code, defaults=dict(
            name=name, initials=initials, edition="e2e"))
    return user, patient, token_family_start(user=user).access_token


def _new_paid_visit(user, patient, doctor_user) -> Consultation:
    return paid(started(user, patient, doctor_user, complaint="胃胀两周，饭后加重"))


def _new_pool_visit(doctor_user) -> Consultation:
    """A paid visit in the department's pool (科室号): no doctor until one accepts it."""
    department = DoctorProfile.objects.get(user=doctor_user).department
    pool = OnlineService.objects.create(department=department, kind="video", fee_fen=2500)
    user = User.objects.create(username="wx_console_pool")
    patient = verified_patient(user, name="赵小梅")
    return paid(consultation_start(account=user, ip="127.0.0.1", req=StartRequest(
        patient_id=patient.pk, service_id=pool.pk, terms_version=TERMS_VERSION,
        offline_visit_id=offline_visit(patient).pk, complaint="失眠一月")))


def test_doctor_console_end_to_end(live_asgi, dr_li, page, orm):  # noqa: F811 - live_asgi is the fixture
    user, patient, token = orm(_setup_people)
    login_and_watch_the_queue(page, live_asgi.url)
    visit = orm(_new_paid_visit, user, patient, dr_li)
    pool_visit = see_both_visits_arrive(page, visit, orm, dr_li)
    open_from_the_queue_and_accept(page, live_asgi.url, visit, orm)
    chat_with_the_patient(page, Patient(live_asgi, token, visit.pk), orm)
    write_sign_verify_and_amend_the_record(page, visit, orm)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.evaluate("document.getElementById('console-notice')?.replaceChildren()")
    page.screenshot(path=SCREENSHOT)
    assert SCREENSHOT.stat().st_size > 20_000  # a rendered page, not a blank one
    end_the_visit(page, visit, orm)
    take_the_pool_visit(page, pool_visit, orm, dr_li)


def login_and_watch_the_queue(page, base: str) -> None:
    page.goto(f"{base}/console/")
    assert page.url == f"{base}/staff/login/?next=/console/"
    page.fill("#username", "dr_li")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/console/")
    page.wait_for_selector("#ws-state[data-ws=open]")
    page.wait_for_selector("#queue-waiting tr.empty")


def see_both_visits_arrive(page, visit: Consultation, orm, doctor_user) -> Consultation:
    """Without a reload, the doctor's own visit, then a department pool visit (marked 科室号)."""
    row = page.locator(f"#queue-waiting tr[data-id='{visit.pk}']")
    row.wait_for()
    assert re.fullmatch(r"王测试\s+男\s+\d+岁\s+图文\s+胃脘痛·脾胃虚寒证；慢性胃炎\s+不到1分钟\s+查看并接诊",
                        row.inner_text().strip()), row.inner_text()
    assert row.locator(".badge-pool").count() == 0
    pool_visit = orm(_new_pool_visit, doctor_user)
    pool_row = page.locator(f"#queue-waiting tr[data-id='{pool_visit.pk}']")
    pool_row.wait_for()
    assert pool_row.locator(".badge-pool").inner_text() == "科室号" and "视频" in pool_row.inner_text()
    assert page.locator("#queue-waiting-count").inner_text() == "2"
    return pool_visit


def open_from_the_queue_and_accept(page, base: str, visit: Consultation, orm) -> None:
    page.locator(f"#queue-waiting tr[data-id='{visit.pk}'] a").first.click()
    page.wait_for_url(f"{base}/console/c/{visit.pk}/")
    page.wait_for_selector("#ws-state[data-ws=open]")
    assert page.locator("#p-name").inner_text() == "王测试"
    assert page.locator("#c-complaint").inner_text() == "胃胀两周，饭后加重"
    assert page.locator("#c-status").inner_text() == "待接诊"
    assert page.locator("#confirmations").is_hidden() and page.locator("#btn-end").is_hidden()
    page.click("#btn-accept")
    page.wait_for_selector("#visit-page[data-status=in_progress]")
    assert page.locator("#c-status").inner_text() == "问诊中"
    assert orm(lambda: Consultation.objects.get(pk=visit.pk).status) == ConsultStatus.IN_PROGRESS
    page.wait_for_selector("#messages li[data-kind=system] >> text=医生已接诊")


def chat_with_the_patient(page, patient: Patient, orm) -> None:
    sent = patient.send("医生您好，最近胃胀，饭后更明显", "patient-1")
    page.wait_for_selector(f"#messages li.msg-patient[data-seq='{sent['seq']}'] >> text=饭后更明显")
    with patient.socket() as ws:
        ws.send(json.dumps({"type": "typing"}))
        page.wait_for_selector("#typing:not([hidden])")
        page.fill("#chat-input", "请问大便怎么样？怕冷吗？")
        assert frame_where(ws, lambda f: f["type"] == "typing") == {"type": "typing", "role": "doctor"}
        page.press("#chat-input", "Enter")
        page.wait_for_selector("#messages li.msg-doctor[data-seq] >> text=怕冷吗")
        page.wait_for_function("() => document.querySelectorAll('#messages li.pending').length === 0")
    page.click("#btn-tongue")
    page.wait_for_selector("#messages li.msg-doctor[data-kind=tongue_request][data-seq]")
    # the socket drops: a message typed meanwhile waits, is resent with its client_msg_id, and arrives once
    page.evaluate("window.qhConsole.chat.socket.ws.close()")
    page.fill("#chat-input", "断线时输入的消息")
    page.press("#chat-input", "Enter")
    page.wait_for_selector("#messages li.msg-doctor[data-seq] >> text=断线时输入的消息")
    assert page.evaluate("window.qhConsole.chat.socket.opened") == 2
    doctor_said = [(m["kind"], m["body"]) for m in patient.messages() if m["sender_role"] == "doctor"]
    assert doctor_said == [("text", "请问大便怎么样？怕冷吗？"), ("tongue_request", "请拍摄舌面及舌下照片"),
                           ("text", "断线时输入的消息")]
    seqs = page.eval_on_selector_all("#messages li[data-seq]", "els => els.map(e => Number(e.dataset.seq))")
    assert seqs == list(range(1, orm(lambda: Consultation.objects.get(pk=patient.consultation_id).last_seq) + 1))


def write_sign_verify_and_amend_the_record(page, visit: Consultation, orm) -> None:
    fill_the_record(page)
    page.click("#btn-sign")
    page.wait_for_selector("#signature:not([hidden])")
    assert page.locator("#sig-version").inner_text() == "1"
    assert re.fullmatch(r"[0-9a-f]{64}", page.locator("#sig-digest").inner_text())
    assert page.locator("#r-chief_complaint").is_disabled() and page.locator("#btn-sign").is_hidden()
    page.click("#btn-verify")
    page.wait_for_selector("#sig-verify.valid")
    record = orm(lambda: ClinicalRecord.objects.select_related("tcm_disease", "tcm_syndrome", "western_diagnosis")
                 .get(consultation_id=visit.pk))
    assert (record.status, record.version, record.chief_complaint) == ("signed", 1, "胃脘胀满2周，饭后加重")
    assert (record.tongue_body, record.tongue_coating, record.pulse) == ("pale", "white_greasy", ["wiry", "thready"])
    assert (record.tcm_disease.code, record.tcm_syndrome.code, record.western_diagnosis.code) == (
        "QH-D-001", "QH-S-001", "K29.5")
    assert page.locator("#sig-digest").inner_text() == orm(lambda: record.versions.get(version=1).digest)
    page.click("#btn-amend")
    page.fill("#r-advice", "忌生冷油腻，规律饮食，5天后复诊。")
    page.fill("#r-amend-reason", "复诊时间调整为5天")
    page.click("#btn-amend-submit")
    page.wait_for_selector("#sig-version >> text=2")
    assert page.locator("#sig-reason").inner_text() == "修改原因：复诊时间调整为5天"
    page.click("#btn-verify")
    page.wait_for_selector("#sig-verify.valid >> text=2 个签名版本均验证通过")
    amended = orm(lambda: ClinicalRecord.objects.get(pk=record.pk))
    assert (amended.version, amended.advice) == (2, "忌生冷油腻，规律饮食，5天后复诊。")
    assert orm(lambda: list(amended.versions.values_list("version", "reason"))) == [(1, ""), (2, "复诊时间调整为5天")]


def fill_the_record(page) -> None:
    page.wait_for_selector("#record-form:not([hidden]) #r-pulse input")
    assert page.locator("#r-allergy_history").input_value() == ""  # none on the patient's profile
    page.fill("#r-chief_complaint", "胃脘胀满2周，饭后加重")
    page.fill("#r-present_illness", "两周前饮食生冷后出现胃脘胀满，喜温喜按，大便溏。")
    page.fill("#r-past_history", "慢性胃炎3年")
    page.fill("#r-allergy_history", "青霉素过敏")
    page.select_option("#r-tongue_body", "pale")
    page.select_option("#r-tongue_coating", "white_greasy")
    page.fill("#r-tongue_note", "边有齿痕")
    page.check("#r-pulse input[value=wiry]")
    page.check("#r-pulse input[value=thready]")
    for box, query, code in [("#r-tcm_disease", "胃脘", "QH-D-001"), ("#r-tcm_syndrome", "PWXH", "QH-S-001"),
                             ("#r-western_diagnosis", "K29", "K29.5")]:
        page.fill(box, query)
        page.click(f"{box} ~ .code-results li[data-code='{code}']")
        assert page.locator(f"{box} ~ .code-picked").inner_text().startswith(code)
    page.fill("#r-treatment_principle", "温中健脾，理气和胃")
    page.fill("#r-advice", "忌生冷油腻，规律饮食，7天后复诊。")


def end_the_visit(page, visit: Consultation, orm) -> None:
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#btn-end")
    page.wait_for_selector("#visit-page[data-status=ended]")
    assert page.locator("#c-status").inner_text() == "已结束"
    ended = orm(lambda: Consultation.objects.get(pk=visit.pk))
    assert ended.status == ConsultStatus.ENDED and ended.ended_at is not None
    page.wait_for_selector("#messages li[data-kind=system] >> text=医生结束问诊")
    assert orm(lambda: Message.objects.filter(consultation_id=visit.pk, sender_role="doctor").count()) == 3


def take_the_pool_visit(page, visit: Consultation, orm, doctor_user) -> None:
    """A pool visit's chat socket is refused until the doctor accepts it; then it connects."""
    page.click(".nav-home")
    page.wait_for_selector("#queue-waiting tr[data-id]")
    assert page.locator("#queue-waiting tr[data-id]").count() == 1  # the ended visit has left the queue
    page.click(f"#queue-waiting tr[data-id='{visit.pk}'] a.button-link")
    page.wait_for_selector("#ws-state[data-ws=refused]")
    assert page.locator("#record-form").is_hidden() and page.locator("#record-closed").is_visible()
    page.click("#btn-accept")
    page.wait_for_selector("#visit-page[data-status=in_progress]")
    page.wait_for_selector("#ws-state[data-ws=open]")
    page.wait_for_selector("#record-form:not([hidden]) #r-pulse input")
    taken = orm(lambda: Consultation.objects.select_related("doctor").get(pk=visit.pk))
    assert taken.status == ConsultStatus.IN_PROGRESS and taken.doctor.user_id == doctor_user.pk
