"""The consultation chat and the doctor console over Channels, with the real Redis channel layer."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import date

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client
from django.utils import timezone

from backend.accounts.models import DoctorProfile, DoctorTitle, User
from backend.accounts.services.tokens import token_family_start
from backend.config.asgi import application
from backend.consultations.events import ConsultationChanged, consultation_group, department_pool_group
from backend.consultations.models import Consultation, Message
from backend.consultations.services.messages import message_event, message_post
from backend.core.publish import event_message, publish_now
from tests.consultations.helpers import in_progress, paid, started
from tests.realtime.helpers import refused_with
from tests.scheduling.helpers import patient_account

pytestmark = pytest.mark.django_db(transaction=True)
ORIGIN = (b"origin", b"http://127.0.0.1")


# --- people, a visit in progress, and sockets -------------------------------------------------

def patient_token(label: str) -> str:
    """A patient account of its own (a stranger to every visit so far) and its access token."""
    user, _ = patient_account(label)
    return token_family_start(user=user).access_token


def staff_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


@dataclass(frozen=True)
class Room:
    """A text consultation in progress between a patient account (token) and a doctor (session)."""

    consultation_id: str
    patient: User
    patient_token: str
    doctor: User
    doctor_cookie: str

    @property
    def path(self) -> str:
        return f"/ws/consultations/{self.consultation_id}/"


def chat_room(doctor_user: User, label: str = "chat_wang") -> Room:
    user, patient = patient_account(label)
    c = in_progress(user, patient, doctor_user)
    return Room(str(c.pk), user, token_family_start(user=user).access_token, doctor_user, staff_cookie(doctor_user))


def other_doctor(department_id: object, username: str = "dr_zhou") -> User:
    user = User.objects.create(username=username, display_name="周医生")
    DoctorProfile.objects.create(user=user, department_id=department_id, title=DoctorTitle.ATTENDING,
                                 qualification_certificate_no="200811110110199",
                                 practice_certificate_no="110110000012399",
                                 independent_practice_since=date(2014, 7, 1))
    return user


def ws(path: str, *, token: str = "", cookie: str = "", last_seq: int | None = None) -> WebsocketCommunicator:
    query = "&".join(q for q in (f"access_token={token}" if token else "",
                                 f"last_seq={last_seq}" if last_seq is not None else "") if q)
    headers = [ORIGIN] + ([(b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode())] if cookie else [])
    return WebsocketCommunicator(application, path + (f"?{query}" if query else ""), headers=headers)


def patient_ws(room: Room, last_seq: int | None = None) -> WebsocketCommunicator:
    return ws(room.path, token=room.patient_token, last_seq=last_seq)


def doctor_ws(room: Room, last_seq: int | None = None) -> WebsocketCommunicator:
    return ws(room.path, cookie=room.doctor_cookie, last_seq=last_seq)


async def opened(comm: WebsocketCommunicator) -> WebsocketCommunicator:
    connected, _ = await comm.connect()
    assert connected
    return comm


async def frames(comm: WebsocketCommunicator, n: int) -> list[dict]:
    return [await comm.receive_json_from(timeout=3) for _ in range(n)]


async def seqs(comm: WebsocketCommunicator, n: int) -> list[int]:
    got = await frames(comm, n)
    assert all(f["type"] == "message" for f in got), got
    return [f["data"]["seq"] for f in got]


def text_frame(client_msg_id: str, body: str) -> dict:
    return {"type": "message", "client_msg_id": client_msg_id, "kind": "text", "body": body, "payload": {}}


async def last_seq(room: Room) -> int:
    return await Consultation.objects.filter(pk=room.consultation_id).values_list("last_seq", flat=True).aget()


@pytest.fixture
def room(dr_li) -> Room:
    return chat_room(dr_li)


# --- who may open the chat --------------------------------------------------------------------

async def test_unauthenticated_is_refused_4401(room):
    assert await refused_with(ws(room.path)) == 4401
    assert await refused_with(ws(room.path, token="forged")) == 4401


async def test_strangers_are_refused_4403(room, pharmacist_zhao):
    other_token = await sync_to_async(patient_token)("chat_stranger")
    zhou = await sync_to_async(other_doctor)(
        (await DoctorProfile.objects.aget(user=room.doctor)).department_id)
    assert await refused_with(ws(room.path, token=other_token)) == 4403
    assert await refused_with(ws(room.path, cookie=await sync_to_async(staff_cookie)(zhou))) == 4403
    assert await refused_with(ws(room.path, cookie=await sync_to_async(staff_cookie)(pharmacist_zhao))) == 4403
    unknown = "/ws/consultations/00000000-0000-4000-8000-000000000000/"
    assert await refused_with(ws(unknown, token=room.patient_token)) == 4403


# --- the stream -------------------------------------------------------------------------------

async def test_patient_and_doctor_each_see_every_message_once_in_order(room):
    patient, doctor = await opened(patient_ws(room)), await opened(doctor_ws(room))
    assert await seqs(patient, 2) == [1, 2] and await seqs(doctor, 2) == [1, 2]  # paid, accepted (system)

    await patient.send_json_to(text_frame("p-1", "医生好，胃胀两周"))
    assert await patient.receive_json_from(timeout=3) == {"type": "ack", "client_msg_id": "p-1", "seq": 3}
    await doctor.send_json_to(text_frame("d-1", "饭后加重吗？"))
    assert await doctor.receive_json_from(timeout=3) == {"type": "ack", "client_msg_id": "d-1", "seq": 4}

    for comm in (patient, doctor):
        got = await frames(comm, 2)
        assert [(f["type"], f["data"]["seq"], f["data"]["sender_role"], f["data"]["body"]) for f in got] == [
            ("message", 3, "patient", "医生好，胃胀两周"), ("message", 4, "doctor", "饭后加重吗？")]
        assert got[0]["data"]["client_msg_id"] == "p-1" and got[0]["data"]["consultation_id"] == room.consultation_id
        assert await comm.receive_nothing(timeout=0.3)
    await patient.disconnect()
    await doctor.disconnect()


async def test_resend_with_the_same_client_msg_id_is_acked_with_the_stored_seq_and_not_broadcast(room):
    patient, doctor = await opened(patient_ws(room, 2)), await opened(doctor_ws(room, 2))
    await patient.send_json_to(text_frame("p-dup", "舌苔白腻"))
    assert (await patient.receive_json_from(timeout=3))["seq"] == 3
    assert await seqs(patient, 1) == [3] and await seqs(doctor, 1) == [3]

    await patient.send_json_to(text_frame("p-dup", "舌苔白腻"))
    assert await patient.receive_json_from(timeout=3) == {"type": "ack", "client_msg_id": "p-dup", "seq": 3}
    assert await patient.receive_nothing(timeout=0.3) and await doctor.receive_nothing(timeout=0.3)
    assert await Message.objects.filter(consultation_id=room.consultation_id, client_msg_id="p-dup").acount() == 1
    assert await last_seq(room) == 3
    await patient.disconnect()
    await doctor.disconnect()


async def test_resume_with_last_seq_gets_exactly_the_missed_messages(room):
    patient = await opened(patient_ws(room, 2))
    await patient.send_json_to(text_frame("p-1", "在吗"))
    assert (await patient.receive_json_from(timeout=3))["seq"] == 3
    assert await seqs(patient, 1) == [3]
    await patient.disconnect()

    for i in range(3):  # the doctor answers while the patient is away
        await sync_to_async(message_post)(user=room.doctor, consultation_id=room.consultation_id, kind="text",
                                          body=f"回复{i}")
    back = await opened(patient_ws(room, 3))
    got = await frames(back, 3)
    assert [(f["data"]["seq"], f["data"]["body"]) for f in got] == [(4, "回复0"), (5, "回复1"), (6, "回复2")]
    assert await back.receive_nothing(timeout=0.3)
    await back.disconnect()


async def test_a_gap_in_the_broadcasts_is_filled_from_the_database_and_late_duplicates_are_dropped(room):
    """Broadcasts go out after commit and may arrive out of order: here #4's arrives first, #3's last."""
    doctor = await opened(doctor_ws(room, 2))

    def two_messages_broadcast_late() -> list[Message]:
        made = []
        for body in ("第一条", "第二条"):  # stored as the service stores them, their broadcasts held back
            c = Consultation.objects.get(pk=room.consultation_id)
            made.append(Message.objects.create(consultation=c, seq=c.last_seq + 1, sender=room.patient,
                                               sender_role="patient", kind="text", body=body,
                                               created_at=c.created_at))
            Consultation.objects.filter(pk=c.pk).update(last_seq=c.last_seq + 1)
        return made

    first, second = await sync_to_async(two_messages_broadcast_late)()
    group = consultation_group(room.consultation_id)
    await sync_to_async(publish_now)(group, message_event(second))
    got = await frames(doctor, 2)
    assert [(f["data"]["seq"], f["data"]["body"]) for f in got] == [(3, "第一条"), (4, "第二条")]
    await sync_to_async(publish_now)(group, message_event(first))
    await sync_to_async(publish_now)(group, message_event(second))
    assert await doctor.receive_nothing(timeout=0.3)
    await doctor.disconnect()


async def test_both_sides_sending_at_once_see_every_message_once_in_order_and_their_own_in_sending_order(room):
    """Two sockets sending at once: the row lock numbers the messages, each socket's frames go in arrival order
    (Channels awaits a frame's handler before it takes the next), every broadcast reaches both sides once."""
    patient, doctor = await opened(patient_ws(room, 2)), await opened(doctor_ws(room, 2))
    n = 15
    for i in range(n):  # no waiting for acks
        await patient.send_json_to(text_frame(f"p-{i}", f"患者{i}"))
        await doctor.send_json_to(text_frame(f"d-{i}", f"医生{i}"))
    for comm, mine in ((patient, "p-"), (doctor, "d-")):
        got = await frames(comm, 3 * n)  # its n acks and all 2n messages
        messages = [f["data"] for f in got if f["type"] == "message"]
        acks = [(f["client_msg_id"], f["seq"]) for f in got if f["type"] == "ack"]
        assert [m["seq"] for m in messages] == list(range(3, 3 + 2 * n))
        assert acks == [(m["client_msg_id"], m["seq"]) for m in messages if m["client_msg_id"].startswith(mine)]
        assert [cid for cid, _ in acks] == [f"{mine}{i}" for i in range(n)]
        assert await comm.receive_nothing(timeout=0.3)
    assert await last_seq(room) == 2 + 2 * n
    await patient.disconnect()
    await doctor.disconnect()


async def test_typing_reaches_only_the_other_side_once_a_second_and_is_not_stored(room):
    patient, doctor = await opened(patient_ws(room, 2)), await opened(doctor_ws(room, 2))
    await patient.send_json_to({"type": "typing"})
    await patient.send_json_to({"type": "typing"})  # within the second: dropped
    assert await doctor.receive_json_from(timeout=3) == {"type": "typing", "role": "patient"}
    assert await doctor.receive_nothing(timeout=0.3)
    assert await patient.receive_nothing(timeout=0.1)
    await doctor.send_json_to({"type": "typing"})
    assert await patient.receive_json_from(timeout=3) == {"type": "typing", "role": "doctor"}
    assert await doctor.receive_nothing(timeout=0.3)
    assert await Message.objects.filter(consultation_id=room.consultation_id).acount() == 2
    assert await last_seq(room) == 2
    await patient.disconnect()
    await doctor.disconnect()


async def test_recall_produces_a_recall_message_for_both(room):
    patient, doctor = await opened(patient_ws(room, 2)), await opened(doctor_ws(room, 2))
    await patient.send_json_to(text_frame("p-oops", "发错了"))
    assert (await patient.receive_json_from(timeout=3))["seq"] == 3
    assert await seqs(patient, 1) == [3] and await seqs(doctor, 1) == [3]
    await patient.send_json_to({"type": "recall", "seq": 3})
    for comm in (patient, doctor):
        frame = await comm.receive_json_from(timeout=3)
        assert frame["type"] == "message"
        assert {k: frame["data"][k] for k in ("seq", "kind", "sender_role", "payload")} == {
            "seq": 4, "kind": "recall", "sender_role": "system", "payload": {"seq": 3}}
        assert frame["data"]["body"] == "患者撤回了一条消息"
    recalled = await Message.objects.aget(consultation_id=room.consultation_id, seq=3)
    assert recalled.recalled_at is not None and recalled.body == ""
    await patient.disconnect()
    await doctor.disconnect()


async def test_bad_frames_get_an_error_and_the_socket_stays_open(room):
    patient = await opened(patient_ws(room, 2))

    async def error_for(raw: str | bytes) -> tuple[str, object]:
        await (patient.send_to(bytes_data=raw) if isinstance(raw, bytes) else patient.send_to(text_data=raw))
        frame = await patient.receive_json_from(timeout=3)
        assert frame["type"] == "error" and frame["message"], frame
        return frame["code"], frame["client_msg_id"]

    assert await error_for("not json") == ("bad_frame", None)
    assert await error_for("[1, 2]") == ("bad_frame", None)
    assert await error_for(json.dumps({"type": "shout"})) == ("bad_frame", None)
    assert await error_for(json.dumps({"type": ["message"]})) == ("bad_frame", None)
    assert await error_for(b"\x00\x01") == ("bad_frame", None)
    assert await error_for(json.dumps({"type": "message", "client_msg_id": "p-9", "body": 42})) == (
        "bad_frame", "p-9")
    assert await error_for(json.dumps({"type": "recall", "seq": "3"})) == ("bad_frame", None)
    assert await error_for(json.dumps(text_frame("p-big", "长" * 6000))) == ("frame_too_large", None)
    assert await error_for(json.dumps(text_frame("p-empty", "   "))) == ("message_empty", "p-empty")
    assert await error_for(json.dumps({**text_frame("p-kind", ""), "kind": "tongue_request"})) == (
        "message_kind_invalid", "p-kind")
    assert await error_for(json.dumps({"type": "recall", "seq": 99})) == ("message_not_found", None)

    await patient.send_json_to({"type": "ping"})
    assert await patient.receive_json_from(timeout=3) == {"type": "pong"}
    assert await Message.objects.filter(consultation_id=room.consultation_id).acount() == 2
    await patient.disconnect()


async def test_an_idle_socket_still_gets_messages_after_ten_seconds(room):
    """redis-py 8 times reads out after 5 s by default, exactly channels-redis's blocking receive: an idle
    consumer died unless the channel layer's hosts allow longer reads (backend/config/settings.py)."""
    doctor = await opened(doctor_ws(room, 2))
    await asyncio.sleep(11)
    await sync_to_async(message_post)(user=room.patient, consultation_id=room.consultation_id, kind="text",
                                      body="还在吗")
    assert await seqs(doctor, 1) == [3]
    await doctor.disconnect()


# --- the doctor console -----------------------------------------------------------------------

async def test_console_gets_a_queue_event_when_a_consultation_is_paid(room, pharmacist_zhao):
    assert await refused_with(ws("/ws/console/")) == 4401
    assert await refused_with(ws("/ws/console/", token=room.patient_token)) == 4401  # a token is not a session
    assert await refused_with(ws("/ws/console/", cookie=await sync_to_async(staff_cookie)(pharmacist_zhao))) == 4403
    console = await opened(ws("/ws/console/", cookie=room.doctor_cookie))
    await console.send_json_to({"type": "ping"})
    assert await console.receive_json_from(timeout=3) == {"type": "pong"}

    def a_new_visit_paid() -> Consultation:
        user, patient = patient_account("console_li")
        return paid(started(user, patient, room.doctor))

    visit = await sync_to_async(a_new_visit_paid)()
    frame = await console.receive_json_from(timeout=3)
    assert frame["type"] == "queue"
    assert {k: frame["data"][k] for k in ("consultation_id", "status", "kind", "patient_name")} == {
        "consultation_id": str(visit.pk), "status": "waiting", "kind": "text", "patient_name": "王测试"}
    assert await console.receive_nothing(timeout=0.3)
    await console.disconnect()


async def test_a_unicode_digit_as_last_seq_reads_as_zero(room):
    comm = WebsocketCommunicator(application, f"{room.path}?access_token={room.patient_token}&last_seq=%C2%B2",
                                 headers=[ORIGIN])
    patient = await opened(comm)
    assert await seqs(patient, await last_seq(room)) == list(range(1, await last_seq(room) + 1))
    await patient.disconnect()


async def test_the_department_pool_reaches_only_consoles_of_doctors_who_may_take_from_it(room):
    def junior() -> str:
        doctor = other_doctor(DoctorProfile.objects.get(user=room.doctor).department_id, "dr_junior")
        DoctorProfile.objects.filter(user=doctor).update(independent_practice_since=timezone.localdate())
        return staff_cookie(doctor)

    junior_console = await opened(ws("/ws/console/", cookie=await sync_to_async(junior)()))
    li_console = await opened(ws("/ws/console/", cookie=room.doctor_cookie))
    department = await sync_to_async(lambda: DoctorProfile.objects.get(user=room.doctor).department_id)()
    event = ConsultationChanged(consultation_id="c1", status="waiting", kind="text", doctor_id=None,
                                department_id=str(department), patient_name="王测试", waiting_since=None)
    await get_channel_layer().group_send(department_pool_group(department), event_message(event))
    assert (await li_console.receive_json_from(timeout=3))["data"]["consultation_id"] == "c1"
    assert await junior_console.receive_nothing(timeout=0.5)
    await li_console.disconnect()
    await junior_console.disconnect()
