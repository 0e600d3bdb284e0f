"""Schemas shared by the patient API, the staff API and the WebSocket stream."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any
from uuid import UUID

from ninja import Schema

from backend.consultations.models import MediaFile, Message
from backend.consultations.services.media import media_signed_url
from backend.consultations.services.messages import message_event
from miniprogram_api.schemas import text


class MediaOut(Schema):
    id: UUID
    url: str
    content_type: str
    size: int


class MessageOut(Schema):
    consultation_id: UUID
    seq: int
    kind: str
    sender_role: str
    body: str
    created_at: datetime
    payload: dict[str, Any]
    client_msg_id: str
    recalled: bool


class MessageIn(Schema):
    kind: text(16, 1) = "text"
    body: text(2000) = ""
    payload: dict[str, Any] = {}
    client_msg_id: text(64) = ""


def message_out(message: Message) -> dict[str, Any]:
    return dataclasses.asdict(message_event(message))


def media_out(media: MediaFile) -> MediaOut:
    return MediaOut(id=media.pk, url=media_signed_url(media.pk), content_type=media.content_type, size=media.size)


class IceServersOut(Schema):
    ice_servers: list[dict[str, Any]]
    expires_at: int | None  # unix time when the TURN credential stops working (fetch again before)
