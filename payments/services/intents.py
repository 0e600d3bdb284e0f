"""Payment intents: create for a payable, prepay with the provider, sync with the provider, close."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backend.core.audit import audit_record
from backend.core.errors import Conflict, NotFound, UpstreamUnavailable
from backend.core.transitions import transition
from backend.gateways.errors import GatewayError, GatewayRetryable, GatewayTerminal
from payments.gateways.base import OrderStatus, PrepayRequest
from payments.gateways.factory import gateway_for
from payments.models import PaymentIntent
from payments.payables import payable_for
from payments.selectors import payment_intent_qs_for_update
from payments.services.flags import intent_flag
from payments.services.ledger import capture_record
from payments.services.urls import notify_url
from payments.states import OPEN_INTENT, IntentStatus


@dataclass(frozen=True)
class Checkout:
    intent: PaymentIntent
    client_params: dict[str, str]


def _out_trade_no() -> str:
    return "QH" + timezone.localtime().strftime("%Y%m%d%H%M%S") + secrets.token_hex(6).upper()


def _live_intent(payable_type: str, payable_id: str) -> PaymentIntent | None:
    return PaymentIntent.objects.filter(payable_type=payable_type, payable_id=payable_id,
                                        status__in=[*OPEN_INTENT, IntentStatus.SUCCEEDED]).first()


def _new_intent(*, account, payable_type: str, payable_id: str, channel: str, payer_id: str) -> PaymentIntent:
    info = payable_for(payable_type).describe(payable_id)
    if str(info.account_id) != str(account.pk):
        raise NotFound(_("支付对象不存在"), code="payable_not_found")
    if not info.payable_now or info.amount_fen <= 0:
        raise Conflict(_("该订单当前无需支付或已失效"), code="payable_not_payable")
    ttl = timezone.now() + timedelta(seconds=settings.PAYMENT_INTENT_TTL_SECONDS)
    expires_at = min(ttl, info.pay_before) if info.pay_before else ttl
    first_check = timezone.now() + timedelta(seconds=settings.PAYMENT_RECONCILE_FIRST_CHECK_SECONDS)
    with transaction.atomic():
        intent = PaymentIntent.objects.create(
            payable_type=payable_type, payable_id=payable_id, account=account, channel=channel,
            amount_fen=info.amount_fen, description=info.description[:127], out_trade_no=_out_trade_no(),
            payer_id=payer_id, expires_at=expires_at, next_check_at=first_check)
        audit_record(action="payment.intent_created", actor=account, obj=intent,
                     detail={"amount_fen": intent.amount_fen, "channel": channel})
    return intent


def checkout_start(*, account, payable_type: str, payable_id: str, channel: str, payer_id: str,
                   client_ip: str) -> Checkout:
    """The intent for this payable (reusing a live one on the same channel) and the client's pay parameters."""
    live = _live_intent(payable_type, payable_id)
    if live is not None and str(live.account_id) != str(account.pk):
        raise NotFound(_("支付对象不存在"), code="payable_not_found")
    if live is not None and (live.channel != channel or live.expires_at <= timezone.now()):
        try:
            live = intent_close(intent_id=live.pk, reason="replaced")  # asks the provider first
        except GatewayError as exc:
            raise UpstreamUnavailable(_("支付服务暂时不可用，请稍后重试"), code="payment_unavailable") from exc
        live = live if live.status == IntentStatus.SUCCEEDED else None
    if live is not None and live.status == IntentStatus.SUCCEEDED:
        raise Conflict(_("该订单已支付"), code="payable_already_paid")
    try:
        intent = live or _new_intent(account=account, payable_type=payable_type, payable_id=payable_id,
                                     channel=channel, payer_id=payer_id)
    except IntegrityError as exc:
        raise Conflict(_("该订单正在支付中，请稍后重试"), code="payment_in_progress") from exc
    gateway = gateway_for(channel)
    if intent.provider_ref:  # the order exists at the provider: sign the pay parameters again
        return Checkout(intent=intent, client_params=dict(gateway.resume_params(intent.provider_ref)))
    request = PrepayRequest(out_trade_no=intent.out_trade_no, amount_fen=intent.amount_fen,
                            description=intent.description, payer_id=payer_id, expires_at=intent.expires_at,
                            client_ip=client_ip or "127.0.0.1", notify_url=notify_url(channel))
    try:
        result = gateway.prepay(request)
    except GatewayRetryable as exc:
        raise UpstreamUnavailable(_("支付服务暂时不可用，请稍后重试"), code="payment_unavailable") from exc
    except GatewayTerminal as exc:
        raise Conflict(_("支付下单失败，请重新发起支付"), code="prepay_failed", detail={"reason": exc.code}) from exc
    transition(PaymentIntent, pk=intent.pk, source=[IntentStatus.CREATED], target=IntentStatus.PENDING,
               provider_ref=result.provider_ref)
    intent.refresh_from_db()
    return Checkout(intent=intent, client_params=dict(result.client_params))


@transaction.atomic
def order_status_apply(*, intent_id: object, status: OrderStatus, source: str) -> PaymentIntent:
    """Apply what the provider says about an order (from a query): capture if paid."""
    intent = payment_intent_qs_for_update().get(pk=intent_id)
    if status.state in ("paid", "refunded") and status.amount_fen:
        if status.amount_fen != intent.amount_fen:
            intent_flag(intent, f"amount_mismatch:{status.amount_fen}")
        else:
            capture_record(intent, amount_fen=status.amount_fen, provider_trade_no=status.provider_trade_no,
                           source=source)
    intent.refresh_from_db()
    return intent


def intent_sync(*, intent_id: object) -> PaymentIntent:
    """主动查单: ask the provider about an open intent and apply the answer."""
    intent = PaymentIntent.objects.get(pk=intent_id)
    if intent.status == IntentStatus.SUCCEEDED:
        return intent
    try:
        status = gateway_for(intent.channel).query_order(intent.out_trade_no)
    except GatewayTerminal as exc:
        if exc.code != "order_not_found":
            raise
        return intent  # never reached the provider (prepay failed): nothing to apply
    return order_status_apply(intent_id=intent.pk, status=status, source="query")


def intent_close(*, intent_id: object, reason: str) -> PaymentIntent:
    """Close an unpaid intent: ask the provider first, close it there, then here (and tell the payable)."""
    intent = intent_sync(intent_id=intent_id)
    if intent.status not in OPEN_INTENT:
        return intent
    try:  # even without a prepay id: the order may exist at the provider if our write after prepay failed
        gateway_for(intent.channel).close_order(intent.out_trade_no)
    except GatewayTerminal as exc:
        if exc.code == "order_paid":  # paid in the meantime: capture instead
            return intent_sync(intent_id=intent_id)
        if exc.code != "order_not_found":
            raise
    with transaction.atomic():
        intent = payment_intent_qs_for_update().get(pk=intent_id)
        if intent.status not in OPEN_INTENT:
            return intent
        transition(PaymentIntent, pk=intent.pk, source=OPEN_INTENT, target=IntentStatus.CLOSED,
                   closed_at=timezone.now(), close_reason=reason, next_check_at=None)
        audit_record(action="payment.intent_closed", obj=intent, detail={"reason": reason})
        payable_for(intent.payable_type).on_closed(intent.payable_id, str(intent.pk))
    intent.refresh_from_db()
    return intent


def payable_intents_close(*, payable_type: str, payable_id: object, reason: str) -> int:
    """Close every open intent of a payable that no longer wants paying (e.g. cancelled before payment).
    A payment that arrived meanwhile is captured instead, and the payable's on_paid decides (refund)."""
    open_ids = list(PaymentIntent.objects.filter(payable_type=payable_type, payable_id=str(payable_id),
                                                 status__in=OPEN_INTENT).values_list("pk", flat=True))
    return sum(intent_close(intent_id=pk, reason=reason).status == IntentStatus.CLOSED for pk in open_ids)
