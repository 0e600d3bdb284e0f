"""Pay a demo charge end to end against a running demo: WeChat login (sandbox) → checkout (our API)
→ the patient pays in the provider sandbox → the provider notifies us → the ledger shows it."""

from __future__ import annotations

import json
import time
import urllib.request

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from backend.accounts.models import WeChatIdentity
from backend.demo.models import DemoCharge
from backend.demo.payables import KIND

ALIPAY_DEMO_BUYER = "2088102177000001"


def _call(url: str, data: dict | None = None, token: str = "") -> dict:
    req = urllib.request.Request(url, data=json.dumps(data).encode() if data is not None else None,  # noqa: S310
                                 method="POST" if data is not None else "GET",
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - loopback demo
        return json.loads(resp.read() or b"{}")


class Command(BaseCommand):
    help = "Take a demo payment end to end through the WeChat Pay or Alipay sandbox of a running demo."

    def add_arguments(self, parser):
        parser.add_argument("--base", default="http://127.0.0.1:8000")
        parser.add_argument("--channel", choices=["wechat", "alipay"], default="wechat")
        parser.add_argument("--amount-fen", type=int, default=2500)
        parser.add_argument("--openid", default="oDEMO_WANG")

    def handle(self, *args, base: str, channel: str, amount_fen: int, openid: str, **options):
        code = _call(f"{settings.WECHAT_API_BASE}/__sandbox__/login-code", {"openid": openid})["code"]
        token = _call(f"{base}/api/auth/wechat-login", {"code": code})["access_token"]
        account = WeChatIdentity.objects.get(appid=settings.WECHAT_APPID, openid=openid).user
        charge = DemoCharge.objects.create(account=account, amount_fen=amount_fen, description="演示：复诊问诊费")
        payload = {"payable_type": KIND, "payable_id": str(charge.pk), "channel": channel}
        if channel == "alipay":
            payload["alipay_buyer_id"] = ALIPAY_DEMO_BUYER
        started = _call(f"{base}/api/payments/checkout", payload, token)
        intent = started["intent"]
        self.stdout.write(f"checkout {intent['out_trade_no']}: {intent['amount_fen']} fen via {channel}")
        self.stdout.write(f"  client parameters for the mini-program: {json.dumps(started['client_params'])}")
        box = settings.WECHATPAY_API_BASE if channel == "wechat" else settings.ALIPAY_GATEWAY.rsplit("/", 1)[0]
        _call(f"{box}/__sandbox__/pay", {"out_trade_no": intent["out_trade_no"]})
        self.stdout.write("  the patient paid in the sandbox; waiting for the notification…")
        for _ in range(50):
            seen = _call(f"{base}/api/payments/intents/{intent['id']}", token=token)
            if seen["status"] == "succeeded":
                self.stdout.write(self.style.SUCCESS(f"  paid: status {seen['status']}, ledger {seen['paid_fen']} fen"))
                return
            time.sleep(0.2)
        raise CommandError(f"no payment recorded yet: {seen}")
