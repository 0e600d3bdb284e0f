"""The payable contract implemented by the demo charge (see payments.payables)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import F
from django.utils import timezone

from backend.core.errors import InvalidTransition, NotFound
from backend.core.transitions import transition
from backend.demo.models import DemoCharge
from payments.payables import PayableInfo

KIND = "demo_charge"


def _get(payable_id: str) -> DemoCharge:
    try:
        return DemoCharge.objects.get(pk=payable_id)
    except (DemoCharge.DoesNotExist, ValidationError, ValueError) as exc:
        raise NotFound() from exc


def _expired(charge: DemoCharge) -> bool:
    return charge.pay_before is not None and charge.pay_before <= timezone.now()


class DemoChargePayable:
    def describe(self, payable_id: str) -> PayableInfo:
        charge = _get(payable_id)
        open_ = charge.status == DemoCharge.Status.UNPAID and not _expired(charge)
        return PayableInfo(account_id=str(charge.account_id), amount_fen=charge.amount_fen,
                           description=charge.description, payable_now=open_, pay_before=charge.pay_before)

    def on_paid(self, payable_id: str, intent_id: str) -> bool:
        """Delivered only if still unpaid (a cancelled charge gets its money back)."""
        if _expired(_get(payable_id)):
            return False  # released at its deadline, like a booking hold: the money goes back
        try:  # False for a replay (already paid) too: a second payment is refunded
            return transition(DemoCharge, pk=payable_id, source=[DemoCharge.Status.UNPAID],
                              target=DemoCharge.Status.PAID)
        except InvalidTransition:
            return False

    def on_closed(self, payable_id: str, intent_id: str) -> None:
        return None  # an unpaid demo charge stays payable with a new intent

    def on_refunded(self, payable_id: str, intent_id: str, amount_fen: int) -> None:
        DemoCharge.objects.filter(pk=payable_id).update(refunded_fen=F("refunded_fen") + amount_fen)
