"""The payable contract: what booking, consultations and prescriptions implement to be paid.

Contexts register an implementation in their ``AppConfig.ready()``; payments looks it up by
kind and never imports them. The callbacks run inside the payments transaction that captured,
closed or refunded, so a booking is confirmed in the same commit as its capture. Lock order: the
payment intent's row is already locked when a callback runs; a callback may lock its own rows
after it, and must never call back into payments (refund_create) while holding them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from django.utils.translation import gettext_lazy as _

from backend.core.errors import NotFound


@dataclass(frozen=True)
class PayableInfo:
    account_id: str  # who must pay (the only account that may create its intent)
    amount_fen: int
    description: str  # shown on the payment sheet, ≤ 127 characters
    payable_now: bool  # False once it was paid, cancelled or released
    pay_before: datetime | None = None  # the payable's own deadline (e.g. a booking hold)


class Payable(Protocol):
    def describe(self, payable_id: str) -> PayableInfo:
        """Raise ``NotFound`` for an unknown id."""
        ...

    def on_paid(self, payable_id: str, intent_id: str) -> bool:
        """Deliver what was paid for. False if it can no longer be delivered (released, cancelled):
        payments then refunds the money automatically."""
        ...

    def on_closed(self, payable_id: str, intent_id: str) -> None:
        """The intent was closed unpaid (timed out or replaced)."""
        ...

    def on_refunded(self, payable_id: str, intent_id: str, amount_fen: int) -> None:
        """A refund of ``amount_fen`` succeeded."""
        ...


_registry: dict[str, Payable] = {}


def register_payable(kind: str, payable: Payable) -> None:
    existing = _registry.get(kind)
    if existing is not None and existing is not payable:
        raise ValueError(f"payable kind {kind!r} is already registered")
    _registry[kind] = payable


def payable_for(kind: str) -> Payable:
    try:
        return _registry[kind]
    except KeyError as exc:
        raise NotFound(_("支付对象不存在"), code="payable_not_found") from exc


def payable_kinds() -> list[str]:
    return sorted(_registry)
