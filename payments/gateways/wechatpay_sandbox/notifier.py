"""Notifications (支付/退款结果通知) from the sandbox to the merchant's ``notify_url``.

Each notice is the real v3 envelope with its ``resource`` sealed under the APIv3 key, POSTed
with ``Wechatpay-*`` signature headers made with the platform key. HTTP 200 or 204 is success;
anything else (or no answer) is retried on WeChat's schedule, scaled by ``time_scale``. Chaos
flags, drawn per notice when it is scheduled, make notices duplicate, late, forged or lost.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from payments.gateways.sandbox_chaos import Chaos
from payments.gateways.wechatpay_sandbox.crypto import rfc3339, seal, signed_headers

# Seconds between attempts, as WeChat Pay documents it: 16 attempts over about 24 hours.
RETRY_INTERVALS = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600)
MAX_ATTEMPTS = len(RETRY_INTERVALS) + 1
CHAOS_FLAGS = ("duplicate", "reorder", "corrupt_signature", "alter_amount", "drop", "stale_timestamp")
STALE_BY_SECONDS = 600
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
SUMMARIES = {
    "TRANSACTION.SUCCESS": "支付成功",
    "REFUND.SUCCESS": "退款成功",
    "REFUND.ABNORMAL": "退款异常",
    "REFUND.CLOSED": "退款关闭",
}


@dataclass(frozen=True)
class Notice:
    """What happened, before it is sealed: ``resource`` is the plaintext resource object."""

    event_type: str
    out_trade_no: str
    url: str
    resource: Mapping[str, Any]
    create_time: float
    out_refund_no: str = ""

    @property
    def kind(self) -> str:
        return "payment" if self.event_type.startswith("TRANSACTION.") else "refund"


@dataclass
class _Delivery:
    seq: int
    generation: int
    notice: Notice
    event_id: str
    body: bytes
    chaos: frozenset[str]
    due: float  # time.monotonic()
    copy: int = 1
    held_until: float | None = None  # "reorder": a payment notice waiting for a refund notice
    attempts: int = 0


class Notifier:
    """Schedules, signs, sends and retries notifications; keeps a log of every attempt."""

    def __init__(
        self, *, key: rsa.RSAPrivateKey, serial: str, apiv3_key: str, time_scale: float,
        timeout: float, loopback_only: bool, hold_seconds: float,
    ) -> None:
        self._key, self._serial, self._apiv3_key = key, serial, apiv3_key
        self.time_scale, self.timeout, self.loopback_only = time_scale, timeout, loopback_only
        self.hold_seconds = hold_seconds
        self._lock = threading.RLock()
        self._seq = itertools.count(1)
        self._generation = 0
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._generation += 1
            self._pending: list[_Delivery] = []
            self._log: list[dict[str, Any]] = []
            self._refund_noticed: set[str] = set()
            self._chaos = Chaos.of(CHAOS_FLAGS)

    def set_chaos(self, seed: int | None = None, **flags: float | bool) -> None:
        chaos = Chaos.of(CHAOS_FLAGS, seed, **flags)
        with self._lock:
            self._chaos = chaos

    def log(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._log]

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    # --- scheduling -------------------------------------------------------------------------------
    def schedule(self, notice: Notice) -> str:
        """Queue ``notice`` for delivery now (subject to chaos); returns its event id."""
        event_id = str(uuid.uuid4())
        with self._lock:
            chaos = self._chaos.draw()
            body = self._envelope(notice, event_id, "alter_amount" in chaos)
            if "drop" in chaos:
                self._log.append(_entry(notice, event_id, chaos, 1, attempt=0, status=None, error="dropped"))
                return event_id
            held = "reorder" in chaos and notice.kind == "payment"
            now = time.monotonic()
            for copy_no in (1, 2) if "duplicate" in chaos else (1,):
                self._pending.append(_Delivery(
                    seq=next(self._seq), generation=self._generation, notice=notice, event_id=event_id,
                    body=body, chaos=chaos, due=now, copy=copy_no,
                    held_until=now + self.hold_seconds * self.time_scale if held else None,
                ))
        return event_id

    def _envelope(self, notice: Notice, event_id: str, alter: bool) -> bytes:
        resource = _altered(notice.resource) if alter else notice.resource
        original_type = "transaction" if notice.kind == "payment" else "refund"
        plaintext = json.dumps(resource, ensure_ascii=False).encode("utf-8")
        envelope = {
            "id": event_id,
            "create_time": rfc3339(notice.create_time),
            "resource_type": "encrypt-resource",
            "event_type": notice.event_type,
            "summary": SUMMARIES.get(notice.event_type, notice.event_type),
            "resource": {**seal(self._apiv3_key, plaintext, original_type), "original_type": original_type},
        }
        return json.dumps(envelope, ensure_ascii=False).encode("utf-8")

    # --- delivery ---------------------------------------------------------------------------------
    def deliver_due(self) -> int:
        """Attempt every notice whose time has come; returns the number of attempts made."""
        now = time.monotonic()
        batch = self._take(lambda d: d.due <= now and self._released(d, now))
        for delivery in batch:
            self._attempt(delivery)
        return len(batch)

    def deliver_all_now(self) -> int:
        """One attempt for every queued notice, due or not: held ("reorder") notices last."""
        batch = self._take(lambda d: True)
        with self._lock:
            batch.sort(key=lambda d: (not self._released(d, time.monotonic()), d.seq))
        for delivery in batch:
            self._attempt(delivery)
        return len(batch)

    def _released(self, delivery: _Delivery, now: float) -> bool:
        if delivery.held_until is None:
            return True
        return now >= delivery.held_until or delivery.notice.out_trade_no in self._refund_noticed

    def _take(self, ready: Any) -> list[_Delivery]:
        with self._lock:
            batch = sorted((d for d in self._pending if ready(d)), key=lambda d: d.seq)
            taken = {id(d) for d in batch}
            self._pending = [d for d in self._pending if id(d) not in taken]
            return batch

    def _attempt(self, delivery: _Delivery) -> None:
        status, error = self._post(delivery)
        with self._lock:
            delivery.attempts += 1
            notice = delivery.notice
            self._log.append(_entry(notice, delivery.event_id, delivery.chaos, delivery.copy,
                                    attempt=delivery.attempts, status=status, error=error))
            if notice.kind == "refund":
                self._refund_noticed.add(notice.out_trade_no)
            retry = status not in (200, 204) and error != _REFUSED and delivery.attempts < MAX_ATTEMPTS
            if retry and delivery.generation == self._generation:
                delivery.due = time.monotonic() + RETRY_INTERVALS[delivery.attempts - 1] * self.time_scale
                delivery.held_until = None
                self._pending.append(delivery)

    def _post(self, delivery: _Delivery) -> tuple[int | None, str]:
        url = delivery.notice.url
        if self.loopback_only and urlsplit(url).hostname not in LOOPBACK_HOSTS:
            return None, _REFUSED
        timestamp = int(time.time()) - (STALE_BY_SECONDS if "stale_timestamp" in delivery.chaos else 0)
        signed_body = delivery.body + (b"#forged" if "corrupt_signature" in delivery.chaos else b"")
        headers = {**signed_headers(self._key, self._serial, signed_body, timestamp),
                   "Content-Type": "application/json", "User-Agent": "Mozilla/4.0"}
        try:
            response = requests.post(url, data=delivery.body, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            return None, f"{type(exc).__name__}: {exc}"
        return response.status_code, ""


_REFUSED = "refused: notify_url is not a loopback address"


def _altered(resource: Mapping[str, Any]) -> dict[str, Any]:
    """The resource with its amounts one fen higher than the truth."""
    altered = copy.deepcopy(dict(resource))
    amount = altered.get("amount", {})
    for name in ("total", "payer_total", "refund", "payer_refund"):
        if name in amount:
            amount[name] += 1
    return altered


def _entry(notice: Notice, event_id: str, chaos: frozenset[str], copy_no: int, **outcome: Any) -> dict[str, Any]:
    return {
        "event_id": event_id, "event_type": notice.event_type, "kind": notice.kind,
        "out_trade_no": notice.out_trade_no, "out_refund_no": notice.out_refund_no, "url": notice.url,
        "copy": copy_no, "chaos": sorted(chaos), **outcome,
    }
