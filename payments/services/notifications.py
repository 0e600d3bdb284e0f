"""Provider notifications: verify, store, then act — idempotently (DESIGN rule 6).

1. The gateway verifies the signature (and timestamp) and decrypts; a forgery is stored as
   rejected and answered with the provider's failure reply, changing nothing.
2. The notification is stored under (provider, dedupe key) in its own commit. A duplicate of a
   processed one gets the normal success reply and changes nothing.
3. It is processed under the intent's row lock: merchant and order checked, amount compared,
   the capture or refund recorded once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from payments.gateways.base import NotificationAck, NotificationRejected, PaymentNotification
from payments.gateways.factory import gateway_for
from payments.models import InboundNotification, PaymentIntent
from payments.selectors import payment_intent_qs_for_update, refund_qs_for_update
from payments.services.flags import intent_flag
from payments.services.ledger import capture_record, refund_succeeded_record
from payments.services.refunds import refund_mark_failed
from payments.states import NotificationOutcome as Outcome
from payments.states import RefundStatus

logger = logging.getLogger(__name__)
KEEP_HEADERS = ("content-type", "wechatpay-timestamp", "wechatpay-nonce", "wechatpay-serial",
                "wechatpay-signature", "wechatpay-signature-type", "user-agent")


def _merchant(channel: str) -> tuple[str, str]:
    if channel == "wechat":
        return settings.WECHATPAY_APPID, settings.WECHATPAY_MCHID
    return settings.ALIPAY_APPID, settings.ALIPAY_SELLER_ID


def _store(channel: str, key: str, headers: Mapping[str, str], body: bytes,
           note: PaymentNotification | None, outcome: str = Outcome.RECEIVED, detail: str = "") -> tuple[int, bool]:
    """Store the raw notification in its own commit. Returns (row id, already processed)."""
    kept = {k.lower(): v for k, v in headers.items() if k.lower() in KEEP_HEADERS}
    try:
        with transaction.atomic():
            row = InboundNotification.objects.create(
                provider=channel, dedupe_key=key[:128], headers=kept,
                body=body.decode("utf-8", "replace").replace("\x00", "\\u0000"),  # PostgreSQL refuses NUL
                kind=note.kind if note else "", out_trade_no=(note.out_trade_no if note else "")[:32],
                outcome=outcome, detail=detail[:200])
        return row.pk, False
    except IntegrityError:
        row = InboundNotification.objects.get(provider=channel, dedupe_key=key[:128])
        return row.pk, row.outcome in (Outcome.PROCESSED, Outcome.FLAGGED, Outcome.REJECTED)


def _finish(row_id: int, outcome: str, detail: str = "") -> None:
    InboundNotification.objects.filter(pk=row_id).update(outcome=outcome, detail=detail[:200],
                                                         processed_at=timezone.now())


def notification_receive(*, channel: str, headers: Mapping[str, str], body: bytes) -> NotificationAck:
    gateway = gateway_for(channel)
    try:
        note = gateway.parse_notification(headers, body)
    except NotificationRejected as exc:
        digest = hashlib.sha256(body + repr(sorted(headers.items())).encode()).hexdigest()
        _store(channel, f"rejected:{digest}", headers, body, None, Outcome.REJECTED, exc.reason)
        logger.warning("%s notification rejected: %s", channel, exc.reason)
        return gateway.notification_ack(False)
    row_id, done = _store(channel, note.dedupe_key, headers, body, note)
    if done:
        return gateway.notification_ack(True)
    outcome, detail = _process(channel, note)
    _finish(row_id, outcome, detail)
    return gateway.notification_ack(outcome != Outcome.DEFERRED)


@transaction.atomic
def _process(channel: str, note: PaymentNotification) -> tuple[str, str]:
    appid, mchid = _merchant(channel)
    intent = payment_intent_qs_for_update().filter(out_trade_no=note.out_trade_no, channel=channel).first()
    if intent is None:
        return Outcome.FLAGGED, "unknown out_trade_no"
    # a payment must name our appid and merchant; a refund notice at least our merchant
    if note.mchid != mchid or (note.appid != appid and (note.kind == "payment" or note.appid)):
        intent_flag(intent, f"merchant_mismatch:{note.appid}/{note.mchid}")
        return Outcome.FLAGGED, "appid/mchid mismatch"
    if note.kind == "payment":
        return _process_payment(intent, note)
    return _process_refund(intent, note)


def _process_payment(intent: PaymentIntent, note: PaymentNotification) -> tuple[str, str]:
    if note.state != "paid":
        return Outcome.PROCESSED, f"state {note.state}"
    if note.amount_fen != intent.amount_fen:
        intent_flag(intent, f"amount_mismatch:{note.amount_fen}")
        return Outcome.FLAGGED, f"amount {note.amount_fen} != {intent.amount_fen}"
    captured = capture_record(intent, amount_fen=note.amount_fen, provider_trade_no=note.provider_trade_no,
                              source="notification")
    return Outcome.PROCESSED, "captured" if captured else "already captured"


def _process_refund(intent: PaymentIntent, note: PaymentNotification) -> tuple[str, str]:
    refund = refund_qs_for_update().filter(out_refund_no=note.out_refund_no, intent=intent).first()
    if refund is None:
        intent_flag(intent, f"unknown_refund:{note.out_refund_no}")
        return Outcome.FLAGGED, "unknown out_refund_no"
    if not intent.transactions.filter(kind="capture").exists():
        # a refund notice ahead of its payment notice: answer "not yet" so the provider retries
        # after the payment is recorded (the reconcile job will query the order meanwhile)
        return Outcome.DEFERRED, "refund before capture"
    if note.state == "succeeded":
        if note.amount_fen != refund.amount_fen:
            intent_flag(intent, f"refund_amount_mismatch:{note.out_refund_no}")
            return Outcome.FLAGGED, "refund amount mismatch"
        done = refund_succeeded_record(refund, provider_refund_id=note.provider_refund_id, source="notification")
        return Outcome.PROCESSED, "refunded" if done else "already refunded"
    if refund.status != RefundStatus.SUCCEEDED:
        refund_mark_failed(refund, reason=note.state)
    return Outcome.PROCESSED, f"refund {note.state}"

