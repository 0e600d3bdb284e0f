"""WebSocket consumers: thin, they join groups and forward typed events."""

from __future__ import annotations

import contextlib
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from backend.core.publish import account_group

CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


class BaseConsumer(AsyncJsonWebsocketConsumer):
    """Shared plumbing: refusals a browser can read, sends that survive a vanished client."""

    async def refuse(self, code: int) -> None:
        # Accept first: a close before the handshake reaches a browser as a bare HTTP 403, without the code.
        await self.accept()
        await self.close(code=code)

    async def send_frame(self, frame: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # the client vanished mid-handler; its disconnect is already queued
            await self.send_json(frame)


class AccountEventsConsumer(BaseConsumer):
    """Events addressed to one account (notices, status changes of its own records)."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.refuse(CLOSE_NOT_AUTHENTICATED)
            return
        self.group = account_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def event_push(self, message):
        await self.send_json({"type": message["event"], "data": message["data"]})
