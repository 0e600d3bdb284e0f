"""Bookings implement the payments contract (payments.payables)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils import timezone

from backend.core.errors import NotFound
from backend.scheduling.models import Booking
from backend.scheduling.selectors import booking_qs_for_update
from backend.scheduling.states import BookingStatus
from payments.payables import PayableInfo

KIND = "booking"


def _get(payable_id: str) -> Booking:
    try:
        return Booking.objects.select_related("schedule__doctor__user", "schedule__department").get(pk=payable_id)
    except (Booking.DoesNotExist, ValidationError, ValueError) as exc:
        raise NotFound() from exc


class BookingPayable:
    def describe(self, payable_id: str) -> PayableInfo:
        booking = _get(payable_id)
        s = booking.schedule
        text = f"挂号费 {s.department.name} {s.doctor.user} {s.date:%m-%d} {s.get_period_display()}"
        payable = booking.status == BookingStatus.HELD and booking.hold_expires_at > timezone.now()
        return PayableInfo(account_id=str(booking.account_id), amount_fen=booking.fee_fen, description=text[:127],
                           payable_now=payable, pay_before=booking.hold_expires_at)

    def on_paid(self, payable_id: str, intent_id: str) -> bool:
        """Confirm the held place; False (→ automatic refund) if the hold expired or was cancelled."""
        from backend.scheduling.services.bookings import booking_confirm_locked

        booking = booking_qs_for_update().get(pk=payable_id)
        return booking_confirm_locked(booking)

    def on_closed(self, payable_id: str, intent_id: str) -> None:
        return None  # the hold expires on its own clock (bookings_expire_due)

    def on_refunded(self, payable_id: str, intent_id: str, amount_fen: int) -> None:
        return None  # a refund follows a cancellation or 停诊, already recorded on the booking
