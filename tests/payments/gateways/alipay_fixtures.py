"""Alipay fixtures: the app key pair generated per run, the sandbox on a random loopback port (one
per session, reset for every test), the gateway wired to it, and a local notification receiver.

Imported by ``conftest.py`` with ``from ... import *``; every public name starts with ``alipay``
/ ``Alipay`` / ``ALIPAY`` so other providers' fixtures cannot collide. Nothing here needs the database.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from payments.gateways.alipay import SHANGHAI, AlipayGateway
from payments.gateways.alipay_sandbox import AlipaySandbox
from payments.gateways.alipay_sandbox import keys as alipay_keys
from payments.gateways.base import NotificationRejected, PaymentNotification, PrepayRequest

ALIPAY_APPID = "2021000000000001"
ALIPAY_SELLER_ID = "2088000000000001"
ALIPAY_BUYER_ID = "2088102177000001"
ALIPAY_TIMEOUT = 2.0
ALIPAY_NOWHERE = "http://127.0.0.1:9/api/payments/alipay/notify"  # nothing listens (port 9, discard)
__all__ = [
    "ALIPAY_APPID", "ALIPAY_BUYER_ID", "ALIPAY_NOWHERE", "ALIPAY_SELLER_ID", "ALIPAY_TIMEOUT", "AlipayAppKeys",
    "AlipayReceiver", "alipay_app_keys", "alipay_gateway", "alipay_make_gateway", "alipay_prepay_request",
    "alipay_receiver", "alipay_sandbox", "alipay_sandbox_session", "alipay_set_clock",
]


@dataclass(frozen=True)
class AlipayAppKeys:
    private_pem: str
    public_pem: str


@pytest.fixture(scope="session")
def alipay_app_keys() -> AlipayAppKeys:
    """Our app's RSA2 key pair, generated for this run (nothing committed)."""
    key = alipay_keys.new_key()
    return AlipayAppKeys(alipay_keys.private_pem(key), alipay_keys.public_pem(key))


@pytest.fixture(scope="session")
def alipay_sandbox_session(alipay_app_keys: AlipayAppKeys) -> Iterator[AlipaySandbox]:
    sandbox = AlipaySandbox(ALIPAY_APPID, ALIPAY_SELLER_ID, alipay_app_keys.public_pem, auto_deliver=False)
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def alipay_sandbox(alipay_sandbox_session: AlipaySandbox) -> Iterator[AlipaySandbox]:
    """The sandbox, reset; notices are delivered only when the test says so (``auto_deliver`` off)."""
    sandbox = alipay_sandbox_session
    sandbox.auto_deliver, sandbox.time_scale = False, 1.0
    sandbox.reset()
    yield sandbox
    sandbox.auto_deliver = False
    sandbox.reset()


@pytest.fixture
def alipay_make_gateway(alipay_app_keys: AlipayAppKeys) -> Iterator[Callable[..., AlipayGateway]]:
    made: list[AlipayGateway] = []

    def make(sandbox: AlipaySandbox, **overrides: Any) -> AlipayGateway:
        options: dict[str, Any] = {
            "appid": ALIPAY_APPID, "seller_id": ALIPAY_SELLER_ID, "app_private_key_pem": alipay_app_keys.private_pem,
            "alipay_public_key_pem": sandbox.alipay_public_key_pem, "gateway_url": sandbox.gateway_url,
            "timeout": ALIPAY_TIMEOUT,
        }
        gateway = AlipayGateway(**{**options, **overrides})
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        gateway.close()


@pytest.fixture
def alipay_gateway(
    alipay_make_gateway: Callable[..., AlipayGateway], alipay_sandbox: AlipaySandbox
) -> AlipayGateway:
    return alipay_make_gateway(alipay_sandbox)


@pytest.fixture
def alipay_prepay_request(alipay_sandbox: AlipaySandbox) -> Callable[..., PrepayRequest]:
    """``make(out_trade_no, amount_fen=8800, **overrides)``; expiry = sandbox clock + 30 min."""

    def make(out_trade_no: str, amount_fen: int = 8800, **overrides: Any) -> PrepayRequest:
        options: dict[str, Any] = {
            "out_trade_no": out_trade_no, "amount_fen": amount_fen, "description": "中医复诊问诊费",
            "payer_id": ALIPAY_BUYER_ID, "client_ip": "127.0.0.1", "notify_url": ALIPAY_NOWHERE,
            "expires_at": datetime.fromtimestamp(alipay_sandbox.now(), SHANGHAI) + timedelta(minutes=30),
        }
        return PrepayRequest(**{**options, **overrides})

    return make


def alipay_set_clock(sandbox: AlipaySandbox, moment: datetime) -> None:
    """Move the sandbox clock so that it reads ``moment`` now."""
    sandbox.advance_clock(moment.timestamp() - sandbox.now())


# --- our notify endpoint, on 127.0.0.1 ------------------------------------------------------------
@dataclass
class AlipayReceiver:
    """Parses each POST with the gateway and answers its ack (``success`` / ``fail``), unless told
    to answer ``fail`` regardless (our endpoint failing, e.g. its database down)."""

    gateway: AlipayGateway
    url: str = ""
    received: list[bytes] = field(default_factory=list)
    outcomes: list[PaymentNotification | NotificationRejected | str] = field(default_factory=list)
    forced_failures: int = 0
    changed: threading.Condition = field(default_factory=threading.Condition)

    def reply_fail(self, times: int = 1) -> None:
        with self.changed:
            self.forced_failures += times

    def answer(self, headers: dict[str, str], body: bytes) -> bytes:
        with self.changed:
            forced = self.forced_failures > 0
            self.forced_failures -= 1 if forced else 0
        outcome: PaymentNotification | NotificationRejected | str = "forced_fail"
        if not forced:
            try:
                outcome = self.gateway.parse_notification(headers, body)
            except NotificationRejected as exc:
                outcome = exc
        with self.changed:
            self.received.append(body)
            self.outcomes.append(outcome)
            self.changed.notify_all()
        return self.gateway.notification_ack(isinstance(outcome, PaymentNotification)).body

    def accepted(self) -> list[PaymentNotification]:
        return [outcome for outcome in self.outcomes if isinstance(outcome, PaymentNotification)]

    def rejected(self) -> list[str]:
        return [outcome.reason for outcome in self.outcomes if isinstance(outcome, NotificationRejected)]

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"expected {count} notifications, got {len(self.received)}")


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: Any

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        reply = self.server.receiver.answer(dict(self.headers.items()), body)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def alipay_receiver(alipay_gateway: AlipayGateway) -> Iterator[AlipayReceiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ReceiverHandler)
    server.daemon_threads = True
    receiver = AlipayReceiver(alipay_gateway, f"http://127.0.0.1:{server.server_address[1]}/api/payments/alipay/notify")
    server.receiver = receiver  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
