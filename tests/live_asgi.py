"""A real ASGI server (uvicorn, HTTP + WebSockets) on loopback, in a thread of the test process.

It serves ``backend.config.asgi.application`` against the test database and the Redis channel layer,
so WebSocket tests and browser tests talk to the same code as production, over real sockets. Tests
that use it must commit their data: mark them ``django_db(transaction=True)``.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass

import pytest
import uvicorn


@dataclass
class LiveAsgi:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # not the main thread
        pass


@pytest.fixture
def live_asgi(transactional_db, settings):
    from backend.config.asgi import application

    settings.ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
    port = _free_port()
    server = _Server(uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning",
                                    lifespan="off", ws="websockets-sansio", ws_ping_interval=None,
                                    timeout_graceful_shutdown=2))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    yield LiveAsgi("127.0.0.1", port)
    server.should_exit = True
    thread.join(timeout=10)
