"""Typed realtime events, sent to named groups after the transaction commits (DESIGN rule 9)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction


def account_group(user_id: object) -> str:
    """Events addressed to one account (its own records' status changes, notices)."""
    return f"account.{user_id}"


def event_message(event: Any) -> dict[str, Any]:
    """The channel-layer message for a dataclass event: JSON-safe by construction."""
    if not dataclasses.is_dataclass(event):
        raise TypeError("realtime events are dataclasses")
    data = json.loads(json.dumps(dataclasses.asdict(event), default=str, ensure_ascii=False))
    return {"type": "event.push", "event": type(event).__name__, "data": data}


def publish_now(group: str, event: Any) -> None:
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(group, event_message(event))


def publish_on_commit(group: str, event: Any) -> None:
    message = event_message(event)  # fail fast, inside the caller's transaction
    layer = get_channel_layer()
    if layer is not None:
        # robust: a broadcast that fails (Redis down) is logged and must not stop later hooks (a refund task)
        # nor turn a committed write into an error; clients resume from the database by sequence number
        transaction.on_commit(lambda: async_to_sync(layer.group_send)(group, message), robust=True)
