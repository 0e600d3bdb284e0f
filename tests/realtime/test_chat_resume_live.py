"""Acceptance (issue 5): a chat over real sockets survives 100 abrupt disconnects, nothing lost or doubled.

uvicorn serves the app on loopback (tests/live_asgi.py) with the Redis channel layer. A patient (access
token) and a doctor (staff session cookie) each send their messages while, at seeded random points,
either side's socket is cut without a close handshake — right after sending a message whose ack has
not come back, a moment later while frames are in flight, or after the ack. Each side reconnects with
the last seq it saw and resends every unacked message with the same client_msg_id. In the end both
sides saw exactly 1..N once each, in order, and the database holds every message sent exactly once.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field

import pytest
from django.conf import settings
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from backend.consultations.models import Consultation, Message
from tests.live_asgi import live_asgi  # noqa: F401  (fixture)
from tests.realtime.test_consultation_chat import Room, chat_room, patient_token

pytestmark = pytest.mark.django_db(transaction=True)
SEED = 20261123
PER_SIDE = 160
KILLS = 100
KILL_MODES = ("unacked", "in_flight", "after_ack")
DEADLINE_SECONDS = 50


@dataclass
class Side:
    """One party's client: what it sent, what was acked, every seq it was shown, and its kill plan."""

    role: str
    base_url: str
    headers: dict[str, str]
    kills: dict[int, str]
    rng: random.Random
    target: int
    last: int = 0
    sent: int = 0
    seen: list[int] = field(default_factory=list)
    bodies: dict[str, str] = field(default_factory=dict)
    unacked: dict[str, str] = field(default_factory=dict)  # client_msg_id → frame
    acked: dict[str, int] = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)
    connections: int = 0
    cuts: int = 0
    cutting: bool = False
    resends: int = 0
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def finished(self) -> bool:
        return self.sent == PER_SIDE and not self.unacked and self.last >= self.target

    async def run(self) -> None:
        while not self.finished:
            await self.session()

    async def session(self) -> None:
        ws = await connect(f"{self.base_url}last_seq={self.last}", additional_headers=self.headers, proxy=None,
                           ping_interval=None, open_timeout=10, max_queue=None)
        self.connections += 1
        reader = asyncio.create_task(self.read(ws))
        try:
            for frame in list(self.unacked.values()):  # resend: same client_msg_id
                self.resends += 1
                await ws.send(frame)
            await self.talk(ws)
        finally:
            if self.finished:
                await ws.close()
            else:
                self.cutting = True
                ws.transport.abort()  # no close frame: the server learns of it from the dead TCP connection
            await reader
            self.cutting = False

    async def talk(self, ws: ClientConnection) -> None:
        while self.sent < PER_SIDE:
            cid = self.send_next()
            await ws.send(self.unacked[cid])
            mode = self.kills.pop(self.sent - 1, None)
            if mode == "after_ack":
                await self.until(lambda c=cid: c in self.acked)
            if mode in ("in_flight", "after_ack"):
                await asyncio.sleep(self.rng.uniform(0, 0.02))  # the other side's messages are on the wire
            if mode:
                self.cuts += 1
                return
            await self.until(lambda c=cid: c in self.acked)
            await asyncio.sleep(self.rng.uniform(0, 0.005))
        await self.until(lambda: self.finished)

    def send_next(self) -> str:
        cid = f"{self.role}-{self.sent:03d}"
        self.bodies[cid] = f"{self.role} 第{self.sent}条 {self.rng.random():.6f}"
        self.unacked[cid] = json.dumps({"type": "message", "client_msg_id": cid, "kind": "text",
                                        "body": self.bodies[cid], "payload": {}}, ensure_ascii=False)
        self.sent += 1
        return cid

    async def until(self, done) -> None:
        while not done():
            assert not self.errors, self.errors
            self.progress.clear()
            await self.progress.wait()

    async def read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                self.on_frame(json.loads(raw))
                self.progress.set()
        except ConnectionClosed as exc:
            if not self.cutting:
                self.errors.append({"type": "closed by the server", "code": exc.rcvd and exc.rcvd.code})
                self.progress.set()

    def on_frame(self, frame: dict) -> None:
        if frame["type"] == "message":
            self.seen.append(frame["data"]["seq"])
            self.last = max(self.last, frame["data"]["seq"])
        elif frame["type"] == "ack":
            self.acked[frame["client_msg_id"]] = frame["seq"]
            self.unacked.pop(frame["client_msg_id"], None)
        elif frame["type"] != "typing":
            self.errors.append(frame)


def kill_plans(rng: random.Random) -> dict[str, dict[int, str]]:
    """KILLS distinct (side, message index) points, each with a way of dying."""
    points = rng.sample([(role, i) for role in ("patient", "doctor") for i in range(PER_SIDE)], KILLS)
    plans: dict[str, dict[int, str]] = {"patient": {}, "doctor": {}}
    for role, i in points:
        plans[role][i] = rng.choice(KILL_MODES)
    return plans


def sides(room: Room, ws_url: str, start: int) -> tuple[Side, Side]:
    rng = random.Random(SEED)
    plans = kill_plans(rng)
    target = start + 2 * PER_SIDE
    url = f"{ws_url}{room.path}?"
    cookie = {"Cookie": f"{settings.SESSION_COOKIE_NAME}={room.doctor_cookie}", "Origin": "http://127.0.0.1"}
    patient = Side("patient", f"{url}access_token={room.patient_token}&", {}, plans["patient"],
                   random.Random(rng.random()), target)
    doctor = Side("doctor", url, cookie, plans["doctor"], random.Random(rng.random()), target)
    return patient, doctor


@pytest.fixture
def room(dr_li, settings) -> Room:
    settings.CONSULT_MESSAGE_RATE = "100000/60"  # the live server runs in this process
    return chat_room(dr_li, "live_wang")


async def test_chat_survives_100_abrupt_disconnects_with_nothing_lost_or_doubled(live_asgi, room):  # noqa: F811
    start = await Consultation.objects.filter(pk=room.consultation_id).values_list("last_seq", flat=True).aget()
    patient, doctor = sides(room, live_asgi.ws_url, start)
    await asyncio.wait_for(asyncio.gather(patient.run(), doctor.run()), DEADLINE_SECONDS)

    n = start + 2 * PER_SIDE
    assert patient.cuts + doctor.cuts == KILLS
    assert patient.connections + doctor.connections == KILLS + 2
    for side in (patient, doctor):
        assert side.errors == [] and side.resends > 0
        assert side.seen == list(range(1, n + 1))  # every seq once, in order, across all reconnects
    stored = [m async for m in Message.objects.filter(consultation_id=room.consultation_id).order_by("seq")]
    assert [m.seq for m in stored] == list(range(1, n + 1))
    by_client_id = {(m.sender_role, m.client_msg_id): m for m in stored if m.client_msg_id}
    for side in (patient, doctor):
        mine = {cid: m for (role, cid), m in by_client_id.items() if role == side.role}
        assert {cid: m.body for cid, m in mine.items()} == side.bodies  # each message stored exactly once
        assert {cid: m.seq for cid, m in mine.items()} == side.acked


async def test_a_strangers_socket_is_closed_4403(live_asgi, room):  # noqa: F811
    from asgiref.sync import sync_to_async

    token = await sync_to_async(patient_token)("live_stranger")
    url = f"{live_asgi.ws_url}{room.path}?access_token={token}"
    async with connect(url, proxy=None, open_timeout=10) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
