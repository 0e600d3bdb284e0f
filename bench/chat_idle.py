"""Idle chat sockets for bench/chat.py: how many one worker holds, the memory each costs, survivors."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def idle_sockets(ws_base: str, rooms: list[tuple[str, str]], pid: int, tracebacks, *, hold: float,
                       concurrency: int = 100) -> dict[str, float]:
    """Open one authenticated chat socket per room, leave them idle for ``hold`` seconds, ping them all,
    close them all at once: the worker's memory per socket, and how many survived."""
    before = _rss_kib(pid)
    gate = asyncio.Semaphore(concurrency)
    opened, failed = [], 0

    async def open_one(consultation: str, token: str) -> None:
        nonlocal failed
        async with gate:
            try:
                opened.append(await connect(f"{ws_base}/ws/consultations/{consultation}/?access_token={token}",
                                            proxy=None, ping_interval=None, open_timeout=60))
            except (OSError, TimeoutError):
                failed += 1

    started = time.perf_counter()
    await asyncio.gather(*(open_one(c, t) for c, t in rooms))
    open_seconds = time.perf_counter() - started
    await asyncio.sleep(3)
    after = _rss_kib(pid)
    await asyncio.sleep(hold)
    alive = sum(await asyncio.gather(*(_pong(ws) for ws in opened)))
    held = tracebacks()
    await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)  # all at once
    await asyncio.sleep(3)
    return {"opened": len(opened), "failed": failed, "open_seconds": open_seconds, "before": before,
            "after": after, "alive": alive, "tracebacks_held": held, "tracebacks_closed": tracebacks() - held}


async def _pong(ws) -> bool:
    try:
        await ws.send('{"type": "ping"}')
        return json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong"}
    except (ConnectionClosed, TimeoutError):
        return False
