"""Asynchronous notifications (异步通知, ``notify_type=trade_status_sync``) to a trade's notify_url.

Each notice is a form POST (``application/x-www-form-urlencoded; charset=utf-8``) of Alipay's
fields, signed with the sandbox's Alipay key over the sorted ``k=v`` string of every non-empty
field except ``sign`` and ``sign_type``. Only the exact body ``success`` counts as received; any
other answer (or none) is retried after 4m, 10m, 10m, 1h, 2h, 6h and 15h (8 attempts, about 25
hours), each delay multiplied by ``time_scale``, with the same notify_id, notify_time and sign.
Due times follow the sandbox clock, so ``advance_clock`` brings retries forward too.

Chaos flags (probabilities 0..1, ``True`` = 1), drawn once per notice when it is scheduled from a
generator seeded with ``seed``:
* ``duplicate``: the same notice (same notify_id) is delivered twice;
* ``reorder``: a payment notice is held back until a later notice of the same trade (a refund)
  has been attempted, or for 4 minutes × time_scale;
* ``corrupt_signature``: the first attempt carries a broken sign (retries carry the right one);
* ``alter_amount``: the amounts (total/receipt/buyer_pay/invoice, or refund_fee) are
  ``alter_delta_fen`` more than the truth, validly signed: only an amount check can catch it;
* ``drop``: the notice is never sent (logged as ``dropped``).
Notices are only ever sent to loopback hosts; any other notify_url is logged as ``refused``.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from payments.gateways.alipay_sandbox.keys import corrupt
from payments.gateways.alipay_sandbox.trades import parse_yuan, yuan
from payments.gateways.sandbox_chaos import Chaos

RETRY_DELAYS = (240, 600, 600, 3600, 7200, 21600, 54000)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
CHAOS_FLAGS = ("duplicate", "reorder", "corrupt_signature", "alter_amount", "drop")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
AMOUNT_FIELDS: Mapping[str, tuple[str, ...]] = {
    "payment": ("total_amount", "receipt_amount", "buyer_pay_amount", "invoice_amount"),
    "refund": ("refund_fee",),
}
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"


@dataclass(frozen=True)
class Notice:
    """What to tell: ``kind`` is payment, refund or close; ``fields`` lack notify_id and sign."""

    kind: str
    out_trade_no: str
    url: str
    fields: Mapping[str, str]
    out_refund_no: str = ""


@dataclass
class _Delivery:
    seq: int
    generation: int
    notice: Notice
    notify_id: str
    form: dict[str, str]
    chaos: frozenset[str]
    due: float
    copy: int = 1
    held_until: float | None = None
    attempts: int = 0


class Notifier:
    """Schedules, signs, sends and retries notices; logs every attempt (thread-safe)."""

    def __init__(
        self, *, signer: Callable[[Mapping[str, str]], str], clock: Callable[[], float],
        time_scale: float, timeout: float,
    ) -> None:
        self._signer, self._clock = signer, clock
        self.time_scale, self.timeout, self.alter_delta_fen = time_scale, timeout, 1
        self._lock = threading.RLock()
        self._seq = itertools.count(1)
        self._generation = 0
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._generation += 1
            self._pending: list[_Delivery] = []
            self._log: list[dict[str, Any]] = []
            self._followed: set[str] = set()  # trades with a non-payment notice attempted
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

    def outbox(self) -> list[dict[str, Any]]:
        """The queued notices as they would be POSTed next (body = the exact form bytes)."""
        with self._lock:
            return [
                {"notify_id": d.notify_id, "kind": d.notice.kind, "out_trade_no": d.notice.out_trade_no,
                 "url": d.notice.url, "body": urlencode(self._form_for(d)).encode("ascii")}
                for d in sorted(self._pending, key=lambda d: d.seq)
            ]

    # --- scheduling ----------------------------------------------------------------------------
    def schedule(self, notice: Notice, notify_id: str) -> None:
        with self._lock:
            chaos = self._chaos.draw()
            form = self._signed(notice, notify_id, "alter_amount" in chaos)
            if "drop" in chaos:
                self._log.append(_entry(notice, notify_id, chaos, 1, 0, "dropped", self._clock()))
                return
            now = self._clock()
            held = "reorder" in chaos and notice.kind == "payment"
            for copy_no in (1, 2) if "duplicate" in chaos else (1,):
                self._pending.append(_Delivery(
                    seq=next(self._seq), generation=self._generation, notice=notice, notify_id=notify_id,
                    form=form, chaos=chaos, due=now, copy=copy_no,
                    held_until=now + RETRY_DELAYS[0] * self.time_scale if held else None,
                ))

    def _signed(self, notice: Notice, notify_id: str, alter: bool) -> dict[str, str]:
        form = {**notice.fields, "notify_id": notify_id}
        if alter:
            for name in AMOUNT_FIELDS.get(notice.kind, ()):
                if name in form:
                    form[name] = yuan(parse_yuan(form[name], name) + self.alter_delta_fen)
        form["sign"] = self._signer(form)
        return form

    # --- delivery ------------------------------------------------------------------------------
    def deliver_due(self) -> int:
        """One attempt for every notice whose time has come; returns the number of attempts."""
        now = self._clock()
        batch = self._take(lambda d: d.due <= now and self._released(d, now))
        for delivery in batch:
            self._attempt(delivery)
        return len(batch)

    def deliver_all_now(self) -> int:
        """One attempt for every queued notice, due or not; held ("reorder") notices last."""
        batch = self._take(lambda d: True)
        now = self._clock()
        with self._lock:
            batch.sort(key=lambda d: (not self._released(d, now), d.seq))
        for delivery in batch:
            self._attempt(delivery)
        return len(batch)

    def _released(self, delivery: _Delivery, now: float) -> bool:
        held_until = delivery.held_until
        return held_until is None or now >= held_until or delivery.notice.out_trade_no in self._followed

    def _take(self, ready: Callable[[_Delivery], bool]) -> list[_Delivery]:
        with self._lock:
            batch = sorted((d for d in self._pending if ready(d)), key=lambda d: d.seq)
            taken = {id(d) for d in batch}
            self._pending = [d for d in self._pending if id(d) not in taken]
            return batch

    def _form_for(self, delivery: _Delivery) -> dict[str, str]:
        if "corrupt_signature" in delivery.chaos and delivery.attempts == 0:
            return {**delivery.form, "sign": corrupt(delivery.form["sign"])}
        return delivery.form

    def _attempt(self, delivery: _Delivery) -> None:
        status, http_status, reply = self._post(delivery.notice.url, self._form_for(delivery))
        with self._lock:
            if delivery.generation != self._generation:
                return  # reset() while this attempt was on the wire: it belongs to the old state
            delivery.attempts += 1
            entry = _entry(delivery.notice, delivery.notify_id, delivery.chaos, delivery.copy,
                           delivery.attempts, status, self._clock())
            self._log.append({**entry, "http_status": http_status, "reply": reply})
            if delivery.notice.kind != "payment":
                self._followed.add(delivery.notice.out_trade_no)
            if status in ("fail", "error") and delivery.attempts < MAX_ATTEMPTS:
                delivery.due = self._clock() + RETRY_DELAYS[delivery.attempts - 1] * self.time_scale
                delivery.held_until = None
                self._pending.append(delivery)

    def _post(self, url: str, form: Mapping[str, str]) -> tuple[str, int | None, str]:
        if urlsplit(url).hostname not in LOOPBACK_HOSTS:
            return "refused", None, "the sandbox only notifies loopback addresses"
        try:
            with requests.Session() as session:
                session.trust_env = False  # never through a proxy
                response = session.post(url, data=urlencode(form).encode("ascii"),
                                        headers={"Content-Type": FORM_CONTENT_TYPE}, timeout=self.timeout)
        except requests.RequestException as exc:
            return "error", None, f"{type(exc).__name__}: {exc}"[:200]
        ok = response.status_code == 200 and response.content == b"success"
        return ("success" if ok else "fail"), response.status_code, response.content[:200].decode("utf-8", "replace")


def _entry(
    notice: Notice, notify_id: str, chaos: frozenset[str], copy: int, attempt: int, status: str, at: float
) -> dict[str, Any]:
    return {
        "notify_id": notify_id, "kind": notice.kind, "out_trade_no": notice.out_trade_no,
        "out_refund_no": notice.out_refund_no, "attempt": attempt, "copy": copy, "status": status,
        "chaos": sorted(chaos), "at": at, "http_status": None, "reply": "",
    }
