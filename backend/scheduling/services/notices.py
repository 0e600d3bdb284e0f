"""Booking notices through WeChat subscribe messages: only for templates the patient subscribed to,
sent by Celery after commit, retried on retryable errors, every outcome recorded."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from backend.gateways.errors import GatewayRetryable, GatewayTerminal
from backend.gateways.factory import wechat_gateway
from backend.gateways.wechat.base import SubscribeMessage
from backend.scheduling.models import Booking, NoticeLog, SubscriptionGrant

KIND_TEXT = {"confirmed": "预约成功", "cancelled": "预约已取消，费用原路退回", "stopped": "医生停诊，费用原路退回",
             "waitlist_offer": "候补成功，请在15分钟内支付", "day_before": "明日就诊提醒", "soon": "30分钟后就诊"}


def notice_on_commit(*, booking_id: object, kind: str) -> None:
    from backend.scheduling.tasks import booking_notice

    transaction.on_commit(lambda: booking_notice.delay(booking_id=str(booking_id), kind=kind), robust=True)


def subscriptions_grant(*, account, template_ids: list[str]) -> None:
    """The mini-program reports the templates the patient accepted (one send each)."""
    for template_id in template_ids:
        grant, _ = SubscriptionGrant.objects.get_or_create(account=account, template_id=template_id[:64])
        SubscriptionGrant.objects.filter(pk=grant.pk).update(remaining=F("remaining") + 1)


def _message(booking: Booking, template_id: str, kind: str, openid: str) -> SubscribeMessage:
    s = booking.schedule
    when = timezone.localtime(booking.window_start) if booking.window_start else s.visit_starts()
    data = {"thing1": f"{s.department.name} {s.doctor.user}"[:20], "time2": when.strftime("%Y-%m-%d %H:%M"),
            "name3": booking.patient.name[:10], "thing4": KIND_TEXT.get(kind, kind)[:20]}
    return SubscribeMessage(openid=openid, template_id=template_id, data=data,
                            page=f"pages/booking/detail?id={booking.pk}")


def _log(booking: Booking, kind: str, template_id: str, status: str, detail: str = "") -> str:
    try:
        NoticeLog.objects.create(booking=booking, kind=kind, template_id=template_id, status=status,
                                 detail=detail[:200])
    except IntegrityError:
        return "already_sent"
    return status


def booking_notice_send(*, booking_id: object, kind: str) -> str:
    booking = Booking.objects.select_related("schedule__department", "schedule__doctor__user", "patient").get(
        pk=booking_id)
    if NoticeLog.objects.filter(booking=booking, kind=kind, status="sent").exists():
        return "already_sent"
    template_id = settings.BOOKING_NOTICE_TEMPLATES.get(kind, "")
    identity = booking.account.wechat_identities.filter(appid=settings.WECHAT_APPID).first()
    if not template_id or identity is None:
        return _log(booking, kind, template_id, "no_template" if not template_id else "no_wechat")
    spent = SubscriptionGrant.objects.filter(account=booking.account, template_id=template_id,
                                             remaining__gt=0).update(remaining=F("remaining") - 1)
    if not spent:
        return _log(booking, kind, template_id, "not_subscribed")
    try:
        wechat_gateway().send_subscribe_message(_message(booking, template_id, kind, identity.openid))
    except GatewayRetryable:
        SubscriptionGrant.objects.filter(account=booking.account, template_id=template_id).update(
            remaining=F("remaining") + 1)  # not spent: the retry will spend it
        _log(booking, kind, template_id, "retrying")
        raise
    except GatewayTerminal as exc:
        return _log(booking, kind, template_id, "failed", exc.code)
    return _log(booking, kind, template_id, "sent")
