"""Provider callback endpoints: parse, call one service, answer in the provider's format."""

from __future__ import annotations

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from payments.services.notifications import notification_receive


def _notify(request, channel: str) -> HttpResponse:
    ack = notification_receive(channel=channel, headers=dict(request.headers), body=request.body)
    return HttpResponse(ack.body, status=ack.status, content_type=ack.content_type)


@csrf_exempt
@require_POST
def wechat_notify(request):
    return _notify(request, "wechat")


@csrf_exempt
@require_POST
def alipay_notify(request):
    return _notify(request, "alipay")
