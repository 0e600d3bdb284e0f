"""Paying from the mini-program: start a checkout, follow the intent, ask for a status check."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from ninja import Router, Schema

from backend.accounts.models import WeChatIdentity
from backend.core.authz import client_ip
from backend.core.errors import UpstreamUnavailable, ValidationFailed
from backend.gateways.errors import GatewayError
from miniprogram_api.auth import access_token_auth
from miniprogram_api.errors import ERRORS
from miniprogram_api.schemas import text
from payments.models import PaymentIntent
from payments.selectors import intent_amounts, intent_of_account
from payments.services.intents import checkout_start, intent_sync
from payments.states import Channel, IntentStatus

router = Router(tags=["payments"], auth=access_token_auth)


class CheckoutIn(Schema):
    payable_type: text(32, 1)
    payable_id: text(64, 1)
    channel: Channel
    alipay_buyer_id: text(64) | None = None


class IntentOut(Schema):
    id: UUID
    status: IntentStatus
    channel: Channel
    amount_fen: int
    description: str
    out_trade_no: str
    expires_at: datetime
    paid_fen: int
    refunded_fen: int


class CheckoutOut(Schema):
    intent: IntentOut
    client_params: dict[str, str]
    provider: Literal["wechat", "alipay"]


def _intent_out(intent: PaymentIntent) -> IntentOut:
    amounts = intent_amounts(intent.pk)
    return IntentOut(id=intent.pk, status=intent.status, channel=intent.channel, amount_fen=intent.amount_fen,
                     description=intent.description, out_trade_no=intent.out_trade_no, expires_at=intent.expires_at,
                     paid_fen=amounts.paid_fen, refunded_fen=amounts.refunded_fen)


def _payer_id(user, payload: CheckoutIn) -> str:
    if payload.channel == Channel.ALIPAY:
        if not payload.alipay_buyer_id:
            raise ValidationFailed(_("请提供支付宝用户标识"), code="alipay_buyer_id_required")
        return payload.alipay_buyer_id
    openid = WeChatIdentity.objects.filter(user=user, appid=settings.WECHATPAY_APPID).values_list(
        "openid", flat=True).first()
    if not openid:
        raise ValidationFailed(_("请先通过微信登录"), code="wechat_identity_missing")
    return openid


@router.post("/payments/checkout", response={200: CheckoutOut, **ERRORS},
             summary="Start paying for a payable: returns what wx.requestPayment / my.tradePay need")
def checkout(request, payload: CheckoutIn):
    result = checkout_start(account=request.auth, payable_type=payload.payable_type, payable_id=payload.payable_id,
                            channel=payload.channel, payer_id=_payer_id(request.auth, payload),
                            client_ip=client_ip(request))
    return CheckoutOut(intent=_intent_out(result.intent), client_params=result.client_params,
                       provider=result.intent.channel)


@router.get("/payments/intents/{intent_id}", response={200: IntentOut, **ERRORS}, summary="A payment intent")
def get_intent(request, intent_id: UUID):
    return _intent_out(intent_of_account(account=request.auth, intent_id=intent_id))


@router.post("/payments/intents/{intent_id}/sync", response={200: IntentOut, **ERRORS},
             summary="Ask the provider now (after wx.requestPayment returns)")
def sync_intent(request, intent_id: UUID):
    intent = intent_of_account(account=request.auth, intent_id=intent_id)
    try:
        intent = intent_sync(intent_id=intent.pk)
    except GatewayError as exc:
        raise UpstreamUnavailable(_("支付状态查询暂时不可用，请稍后重试"), code="payment_unavailable") from exc
    return _intent_out(intent)
