"""The consultation chat and the doctor console over WebSockets.

Thin: services and selectors of ``backend.consultations`` do the work. The chat stream is numbered
(``seq``); a client resumes with ``?last_seq=N`` and sees every message exactly once, in order,
whatever order the after-commit broadcasts arrive in (gaps are filled from the database).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.contrib.auth import SESSION_KEY
from django.utils.translation import gettext_lazy as _
from pydantic import BaseModel, Field, StrictInt
from pydantic import ValidationError as SchemaError

from backend.consultations.events import consultation_group, department_pool_group, doctor_group
from backend.consultations.schemas import MessageIn, message_out
from backend.consultations.selectors import consultation_party_role, doctor_of, doctor_sees_pool, messages_after
from backend.consultations.services.messages import message_post, message_recall
from backend.consultations.services.reads import consultation_read_audited
from backend.core.errors import DomainError, ValidationFailed
from realtime.consumers import CLOSE_FORBIDDEN, CLOSE_NOT_AUTHENTICATED, BaseConsumer

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 16 * 1024
TYPING_EVERY_SECONDS = 1.0
BACKLOG_BATCH = 500


class BadFrame(ValidationFailed):
    code = "bad_frame"
    default_message = _("消息格式错误")


class FrameTooLarge(ValidationFailed):
    status = 413
    code = "frame_too_large"
    default_message = _("消息内容过大")


class RecallIn(BaseModel):
    seq: StrictInt = Field(ge=1)


def _parsed(schema: type[BaseModel], frame: dict[str, Any]):
    try:
        return schema.model_validate(frame)
    except SchemaError as exc:
        raise BadFrame(detail=exc.errors(include_url=False, include_context=False, include_input=False)) from exc


def _query_int(scope, name: str) -> int:
    value = parse_qs(scope.get("query_string", b"").decode()).get(name, ["0"])[0]
    return int(value) if value.isascii() and value.isdigit() and len(value) < 10 else 0  # "²" is a digit too


def _client_ip(scope) -> str:
    return (scope.get("client") or ("",))[0] or ""


# --- database work, off the event loop ----------------------------------------------------------

@database_sync_to_async
def _chat_role(user, consultation_id: object, ip: str) -> str | None:
    """The user's side of the consultation (the read is audited, IH-23), or None for anyone else."""
    try:
        consultation = consultation_read_audited(user=user, consultation_id=consultation_id, ip=ip, what="chat")
    except DomainError:
        return None
    return consultation_party_role(consultation, user)


@database_sync_to_async
def _stream_after(consultation_id: object, after_seq: int) -> list[dict[str, Any]]:
    """Every message after ``after_seq``, in order, as the frames' data."""
    out: list[dict[str, Any]] = []
    while True:
        batch = messages_after(consultation_id=consultation_id, after_seq=after_seq, limit=BACKLOG_BATCH)
        out.extend(message_out(m) for m in batch)
        if len(batch) < BACKLOG_BATCH:
            return out
        after_seq = batch[-1].seq


@database_sync_to_async
def _post(user, consultation_id: object, data: MessageIn) -> int:
    message, _created = message_post(user=user, consultation_id=consultation_id, kind=data.kind, body=data.body,
                                     payload=data.payload, client_msg_id=data.client_msg_id)
    return message.seq


@database_sync_to_async
def _recall(user, consultation_id: object, seq: int) -> int:
    return message_recall(user=user, consultation_id=consultation_id, seq=seq).seq


@database_sync_to_async
def _console_doctor(scope):
    """(signed in by a staff session?, the user's DoctorProfile or None, may they see the department pool?)."""
    user = scope.get("user")
    session = scope.get("session")
    if user is None or not user.is_authenticated or session is None or session.get(SESSION_KEY) != str(user.pk):
        return False, None, False
    try:
        doctor = doctor_of(user)
        return True, doctor, doctor_sees_pool(doctor)
    except DomainError:
        return True, None, False


# --- consumers ----------------------------------------------------------------------------------

class ConsultationChatConsumer(BaseConsumer):
    """``ws/consultations/<id>/?last_seq=N``: the patient's account and the assigned doctor only."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return await self.refuse(CLOSE_NOT_AUTHENTICATED)
        self.consultation_id = self.scope["url_route"]["kwargs"]["consultation_id"]
        self.role = await _chat_role(user, self.consultation_id, _client_ip(self.scope))
        if self.role is None:
            return await self.refuse(CLOSE_FORBIDDEN)
        self.sent_seq = _query_int(self.scope, "last_seq")
        self.typing_at = float("-inf")
        self.groups = [consultation_group(self.consultation_id)]
        await self.channel_layer.group_add(self.groups[0], self.channel_name)  # before the backlog read
        await self.accept()
        await self.catch_up()

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        frame: dict[str, Any] = {}
        try:
            frame = self.decoded(text_data, bytes_data)
            await self.FRAMES[frame["type"]](self, frame)
        except DomainError as exc:
            await self.send_error(exc, frame)
        except Exception:  # the socket stays open, like the HTTP API's 500 envelope
            logger.exception("chat frame failed (consultation %s)", self.consultation_id)
            await self.send_error(DomainError(_("服务器开小差了，请稍后再试"), code="server_error"), frame)

    @classmethod
    def decoded(cls, text_data, bytes_data) -> dict[str, Any]:
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > MAX_FRAME_BYTES:
            raise FrameTooLarge(detail={"max_bytes": MAX_FRAME_BYTES})
        try:
            frame = json.loads(text_data) if text_data is not None else None
        except ValueError as exc:
            raise BadFrame(detail={"reason": "json"}) from exc
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str) or frame["type"] not in cls.FRAMES:
            raise BadFrame(detail={"types": sorted(cls.FRAMES)})
        return frame

    async def send_error(self, exc: DomainError, frame: dict[str, Any]) -> None:
        client_msg_id = frame.get("client_msg_id") if isinstance(frame.get("client_msg_id"), str) else None
        await self.send_frame({"type": "error", "code": exc.code, "message": exc.message,
                               "detail": json.loads(json.dumps(exc.detail, default=str)),
                               "client_msg_id": client_msg_id})

    # client → server frames

    async def on_message(self, frame: dict[str, Any]) -> None:
        data = _parsed(MessageIn, frame)
        seq = await _post(self.scope["user"], self.consultation_id, data)
        await self.send_frame({"type": "ack", "client_msg_id": data.client_msg_id, "seq": seq})

    async def on_recall(self, frame: dict[str, Any]) -> None:
        await _recall(self.scope["user"], self.consultation_id, _parsed(RecallIn, frame).seq)

    async def on_typing(self, frame: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self.typing_at < TYPING_EVERY_SECONDS:
            return  # one per second per socket; extras are dropped
        self.typing_at = now
        await self.channel_layer.group_send(self.groups[0], {"type": "chat.typing", "role": self.role})

    async def on_ping(self, frame: dict[str, Any]) -> None:
        await self.send_frame({"type": "pong"})

    FRAMES = {"message": on_message, "recall": on_recall, "typing": on_typing, "ping": on_ping}

    # channel-layer events → client

    async def chat_typing(self, event: dict[str, Any]) -> None:
        if event["role"] != self.role:  # never back to the side that is typing
            await self.send_frame({"type": "typing", "role": event["role"]})

    async def event_push(self, event: dict[str, Any]) -> None:
        if event["event"] == "ChatMessage":
            await self.deliver(event["data"])
        elif event["event"] == "ConsultationChanged":
            await self.send_frame({"type": "status", "data": event["data"]})

    async def deliver(self, data: dict[str, Any]) -> None:
        """Exactly once and in order: a duplicate is dropped, a gap is read from the database."""
        if data["seq"] <= self.sent_seq:
            return
        if data["seq"] > self.sent_seq + 1:
            return await self.catch_up()
        await self.send_frame({"type": "message", "data": data})
        self.sent_seq = data["seq"]

    async def catch_up(self) -> None:
        for data in await _stream_after(self.consultation_id, self.sent_seq):
            await self.send_frame({"type": "message", "data": data})
            self.sent_seq = data["seq"]


class ConsoleConsumer(BaseConsumer):
    """``ws/console/``: a doctor's queue (their own visits and their department's pool), staff session only."""

    async def connect(self):
        by_session, doctor, sees_pool = await _console_doctor(self.scope)
        if not by_session:
            return await self.refuse(CLOSE_NOT_AUTHENTICATED)
        if doctor is None:
            return await self.refuse(CLOSE_FORBIDDEN)
        self.groups = [doctor_group(doctor.pk)]  # and the pool only for doctors who may take from it (IH-04)
        if sees_pool:
            self.groups.append(department_pool_group(doctor.department_id))
        for group in self.groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """The console only listens; a ping is answered, anything else is ignored."""
        try:
            frame = json.loads(text_data or "")
        except ValueError:
            return
        if isinstance(frame, dict) and frame.get("type") == "ping":
            await self.send_frame({"type": "pong"})

    async def event_push(self, event: dict[str, Any]) -> None:
        if event["event"] == "ConsultationChanged":
            await self.send_frame({"type": "queue", "data": event["data"]})
