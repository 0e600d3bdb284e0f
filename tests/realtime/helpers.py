"""WebSocket test helpers."""

from __future__ import annotations

from channels.testing import WebsocketCommunicator


async def refused_with(comm: WebsocketCommunicator) -> int:
    """Refusals come after the handshake, so a browser can read the close code."""
    connected, _ = await comm.connect()
    assert connected
    closing = await comm.receive_output(timeout=3)
    assert closing["type"] == "websocket.close"
    await comm.disconnect()
    return closing["code"]
