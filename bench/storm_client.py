"""A minimal HTTP/1.1 client on raw keep-alive asyncio sockets, for bench/booking_storm.py:
thousands of connections from one process with the least client-side cost."""

from __future__ import annotations

import asyncio
import collections
import json
from dataclasses import dataclass, field

# --- the client: HTTP/1.1 on raw keep-alive sockets --------------------------------------------

class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        assert self.reader and self.writer
        self.writer.write(raw)
        line = await self.reader.readline()
        if not line:
            raise ConnectionResetError("server closed the connection")
        status = int(line.split(b" ", 2)[1])
        length, chunked, close = 0, False, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = b"close" in value.lower()
        if chunked:
            parts = []
            while size := int((await self.reader.readline()).split(b";")[0], 16):
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            await self.reader.readline()
            body = b"".join(parts)
        else:
            body = await self.reader.readexactly(length)
        if close:
            self.writer.close()
            await self.open()
        return status, body

    def close(self) -> None:
        if self.writer:
            self.writer.close()


def _request(method: str, path: str, token: str, port: int, body: bytes = b"") -> bytes:
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            f"Accept: application/json\r\n")
    if method == "POST":
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


@dataclass
class Outcome:
    label: str
    started: float = 0.0  # perf_counter of the instant the clients were let go
    finished: float = 0.0
    latencies: list[float] = field(default_factory=list)  # final answers only
    codes: collections.Counter = field(default_factory=collections.Counter)  # "201", "409 booking_slot_full", …
    retries: int = 0  # answered "booking_not_released" and sent again
    held_patients: list[str] = field(default_factory=list)
    last_held: float = 0.0  # perf_counter of the last 201: the places were gone by then
    release: float = 0.0  # perf_counter of 放号 (started is earlier if the clients fire early)

    @property
    def requests(self) -> int:
        return len(self.latencies) + self.retries

    @property
    def wall(self) -> float:
        return self.finished - self.started

    @property
    def rate(self) -> float:
        return self.requests / self.wall if self.wall > 0 else 0.0

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def _code(status: int, body: bytes) -> str:
    if status in (200, 201):
        return str(status)
    try:
        return f"{status} {json.loads(body).get('code', '?')}"
    except (ValueError, AttributeError):
        return f"{status} (no envelope)"
