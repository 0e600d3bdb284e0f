"""Start and pay a follow-up consultation as a demo patient, so it appears live in the doctor console:
WeChat login (sandbox) → the HIS's offline visit → consent → start → WeChat Pay sandbox → waiting."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from backend.demo.management.commands.demo_pay import _call


class Command(BaseCommand):
    help = "Start and pay a demo follow-up with a doctor of a running demo (it appears in the doctor console)."

    def add_arguments(self, parser):
        parser.add_argument("--base", default="http://127.0.0.1:8000")
        parser.add_argument("--openid", default="oDEMO_WANG")
        parser.add_argument("--doctor", default="李思远", help="the doctor's name")
        parser.add_argument("--message", default="医生您好，服药后胃胀好转，但最近睡眠不好。")

    def handle(self, *args, base: str, openid: str, doctor: str, message: str, **options):
        code = _call(f"{settings.WECHAT_API_BASE}/__sandbox__/login-code", {"openid": openid})["code"]
        token = _call(f"{base}/api/auth/wechat-login", {"code": code})["access_token"]
        patient = _call(f"{base}/api/patients", token=token)["items"][0]
        visits = _call(f"{base}/api/patients/{patient['id']}/offline-visits", token=token)
        services = [s for s in _call(f"{base}/api/consult/services", token=token)
                    if s["doctor_name"] == doctor and s["kind"] == "text"]
        if not visits or not services:
            raise CommandError(f"no offline visit for {patient['name']} or no text service of {doctor}")
        terms = _call(f"{base}/api/consult/terms", token=token)
        c = _call(f"{base}/api/consultations", {
            "patient_id": patient["id"], "service_id": services[0]["id"], "terms_version": terms["version"],
            "offline_visit_id": visits[0]["id"], "complaint": message}, token)
        self.stdout.write(f"consultation {c['id']} for {patient['name']} with {doctor}: {c['status']}")
        intent = _call(f"{base}/api/payments/checkout", {"payable_type": "consultation", "payable_id": c["id"],
                                                         "channel": "wechat"}, token)["intent"]
        _call(f"{settings.WECHATPAY_API_BASE}/__sandbox__/pay", {"out_trade_no": intent["out_trade_no"]})
        for _ in range(50):
            seen = _call(f"{base}/api/consultations/{c['id']}", token=token)
            if seen["status"] == "waiting":
                _call(f"{base}/api/consultations/{c['id']}/messages", {"kind": "text", "body": message}, token)
                self.stdout.write(self.style.SUCCESS(f"  paid: waiting for {doctor} at {base}/console/"))
                return
            time.sleep(0.2)
        raise CommandError(f"the consultation was not paid: {seen}")
