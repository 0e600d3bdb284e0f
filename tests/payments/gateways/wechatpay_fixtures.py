"""WeChat Pay fixtures: keys generated per run, the sandbox on a random loopback port, the
gateway wired to it, a local notification receiver, and a hand-made notification builder.

Imported by ``conftest.py`` with ``from ... import *``; every public name starts with
``wechatpay`` so other providers' fixtures cannot collide. Nothing here needs the database.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from payments.gateways.base import NotificationRejected, PrepayRequest
from payments.gateways.wechatpay import WeChatPayGateway
from payments.gateways.wechatpay_sandbox import WeChatPaySandbox

WECHATPAY_APPID = "wx0paytest0000001"
WECHATPAY_MCHID = "1900000109"
WECHATPAY_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
WECHATPAY_TIMEOUT = 2.0
__all__ = [
    "WECHATPAY_APPID", "WECHATPAY_MCHID", "WECHATPAY_SERIAL", "WeChatPayKeys", "WeChatPayReceiver",
    "wechatpay_apiv3_key", "wechatpay_gateway", "wechatpay_keys", "wechatpay_make_gateway", "wechatpay_notice",
    "wechatpay_prepay_request", "wechatpay_receiver", "wechatpay_sandbox", "wechatpay_start_sandbox",
]


@dataclass(frozen=True)
class WeChatPayKeys:
    private_pem: str
    public_pem: str
    key: rsa.RSAPrivateKey


def _new_keys() -> WeChatPayKeys:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return WeChatPayKeys(private_pem, public_pem, key)


@pytest.fixture(scope="session")
def wechatpay_keys() -> dict[str, WeChatPayKeys]:
    """RSA key pairs made for this run: the merchant's, a stranger's, and a platform's of our own."""
    return {"merchant": _new_keys(), "stranger": _new_keys(), "platform": _new_keys()}


@pytest.fixture(scope="session")
def wechatpay_apiv3_key() -> str:
    return secrets.token_hex(16)  # 32 characters, as WeChat Pay requires


@pytest.fixture
def wechatpay_start_sandbox(
    wechatpay_keys: dict[str, WeChatPayKeys], wechatpay_apiv3_key: str
) -> Iterator[Callable[..., WeChatPaySandbox]]:
    """Start a sandbox (stopped after the test); keyword arguments go to the constructor."""
    started: list[WeChatPaySandbox] = []

    def start(**options: Any) -> WeChatPaySandbox:
        options = {"auto_deliver": False, "time_scale": 0.001, **options}
        sandbox = WeChatPaySandbox(WECHATPAY_APPID, WECHATPAY_MCHID, wechatpay_keys["merchant"].public_pem,
                                   WECHATPAY_SERIAL, wechatpay_apiv3_key, **options).start()
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def wechatpay_sandbox(wechatpay_start_sandbox: Callable[..., WeChatPaySandbox]) -> WeChatPaySandbox:
    """A sandbox that delivers notifications only when told (``deliver_all_now``/``deliver_due``)."""
    return wechatpay_start_sandbox()


@pytest.fixture
def wechatpay_make_gateway(
    wechatpay_keys: dict[str, WeChatPayKeys], wechatpay_apiv3_key: str
) -> Callable[..., WeChatPayGateway]:
    """A gateway for ``sandbox``; keyword arguments replace constructor arguments."""

    def make(sandbox: WeChatPaySandbox, **overrides: Any) -> WeChatPayGateway:
        options = {
            "appid": WECHATPAY_APPID, "mchid": WECHATPAY_MCHID,
            "merchant_private_key_pem": wechatpay_keys["merchant"].private_pem,
            "merchant_serial_no": WECHATPAY_SERIAL, "apiv3_key": wechatpay_apiv3_key,
            "platform_public_key_pem": sandbox.platform_public_key_pem,
            "platform_public_key_id": sandbox.platform_public_key_id,
            "api_base": sandbox.base_url, "timeout": WECHATPAY_TIMEOUT,
            **overrides,
        }
        return WeChatPayGateway(**options)

    return make


@pytest.fixture
def wechatpay_gateway(
    wechatpay_sandbox: WeChatPaySandbox, wechatpay_make_gateway: Callable[..., WeChatPayGateway]
) -> WeChatPayGateway:
    return wechatpay_make_gateway(wechatpay_sandbox)


@pytest.fixture
def wechatpay_prepay_request(wechatpay_receiver: WeChatPayReceiver) -> Callable[..., PrepayRequest]:
    """``PrepayRequest`` with sensible defaults, notifying the local receiver."""

    def make(out_trade_no: str, amount_fen: int = 3000, **overrides: Any) -> PrepayRequest:
        fields = {
            "out_trade_no": out_trade_no, "amount_fen": amount_fen, "description": "岐黄互联网医院-复诊问诊费",
            "payer_id": "oPATIENT_WANG", "expires_at": datetime.now(UTC) + timedelta(minutes=15),
            "client_ip": "127.0.0.1", "notify_url": wechatpay_receiver.url, **overrides,
        }
        return PrepayRequest(**fields)

    return make


# --- a merchant endpoint on 127.0.0.1 ------------------------------------------------------------
@dataclass
class WeChatPayReceiver:
    """Records every POST; answers with queued statuses, else (with a gateway) the gateway's ack."""

    url: str = ""
    gateway: WeChatPayGateway | None = None
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    outcomes: list[Any] = field(default_factory=list)  # PaymentNotification or NotificationRejected
    statuses: deque[int] = field(default_factory=deque)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def respond_with(self, *statuses: int) -> None:
        self.statuses.extend(statuses)

    def answer(self, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        status, reply = 200, b""
        if self.gateway is not None:
            try:
                self.outcomes.append(self.gateway.parse_notification(headers, body))
                ack = self.gateway.notification_ack(True)
            except NotificationRejected as exc:
                self.outcomes.append(exc)
                ack = self.gateway.notification_ack(False)
            status, reply = ack.status, ack.body
        if self.statuses:
            status = self.statuses.popleft()
        with self.changed:
            self.received.append((headers, body))
            self.changed.notify_all()
        return status, reply

    def wait_for(self, count: int, timeout: float = 5.0) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"expected {count} notifications, got {len(self.received)}")


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: Any

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, reply = self.server.receiver.answer(dict(self.headers.items()), body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def wechatpay_receiver() -> Iterator[WeChatPayReceiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ReceiverHandler)
    server.daemon_threads = True
    receiver = WeChatPayReceiver(url=f"http://127.0.0.1:{server.server_address[1]}/api/payments/wechat/notify")
    server.receiver = receiver  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


# --- hand-made notifications, signed with a platform key of our own ---------------------------------
@pytest.fixture
def wechatpay_notice(
    wechatpay_keys: dict[str, WeChatPayKeys], wechatpay_apiv3_key: str
) -> Callable[..., tuple[dict[str, str], bytes]]:
    """Build ``(headers, body)`` of a v3 notification, with knobs to break it one way at a time."""
    platform = wechatpay_keys["platform"].key

    def build(
        event_type: str, resource: Mapping[str, Any], *, event_id: str | None = None, timestamp: int | None = None,
        serial: str = "PUB_KEY_ID_TEST", apiv3_key: str | None = None, signing_key: rsa.RSAPrivateKey | None = None,
        mangle: Callable[[dict[str, Any]], None] | None = None, raw_body: bytes | None = None,
    ) -> tuple[dict[str, str], bytes]:
        kind = "transaction" if event_type.startswith("TRANSACTION") else "refund"
        nonce = secrets.token_hex(6)
        sealed = AESGCM((apiv3_key or wechatpay_apiv3_key).encode()).encrypt(
            nonce.encode(), json.dumps(resource, ensure_ascii=False).encode(), kind.encode())
        envelope = {
            "id": event_id or str(uuid.uuid4()), "create_time": "2026-01-05T10:20:31+08:00",
            "resource_type": "encrypt-resource", "event_type": event_type, "summary": "支付成功",
            "resource": {"original_type": kind, "algorithm": "AEAD_AES_256_GCM", "associated_data": kind,
                         "ciphertext": base64.b64encode(sealed).decode(), "nonce": nonce},
        }
        if mangle is not None:
            mangle(envelope)
        body = raw_body if raw_body is not None else json.dumps(envelope, ensure_ascii=False).encode()
        ts, header_nonce = str(int(time.time()) if timestamp is None else timestamp), secrets.token_hex(16)
        message = f"{ts}\n{header_nonce}\n".encode() + body + b"\n"
        signature = (signing_key or platform).sign(message, padding.PKCS1v15(), hashes.SHA256())
        headers = {
            "Wechatpay-Timestamp": ts, "Wechatpay-Nonce": header_nonce, "Wechatpay-Serial": serial,
            "Wechatpay-Signature": base64.b64encode(signature).decode(),
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048", "Content-Type": "application/json",
        }
        return headers, body

    return build
