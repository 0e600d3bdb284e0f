"""Run the whole platform on embedded defaults: sandboxes, the ASGI app under uvicorn, a banner."""

from __future__ import annotations

import threading
import time
import urllib.request
from urllib.parse import urlsplit

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand

from backend.demo import people
from backend.demo.sandboxes import start_payment_sandboxes
from backend.demo.seed import demo_logins
from backend.gateways.sandboxes import start_sandboxes


def _port(url: str) -> int:
    return urlsplit(url).port or 80


class Command(BaseCommand):
    help = "Start the gateway sandboxes and the ASGI server, and print the URLs and demo logins."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, host: str, port: int, **options):
        boxes = start_sandboxes(
            settings.SANDBOX_HOST, _port(settings.WECHAT_API_BASE), _port(settings.REALNAME_API_BASE),
            wechat_appid=settings.WECHAT_APPID, wechat_secret=settings.WECHAT_APP_SECRET,
            realname_key=settings.REALNAME_APP_KEY, realname_secret=settings.REALNAME_APP_SECRET)
        for _openid, _display, profiles in people.PATIENTS:
            for name, id_number, _relation, _phone in profiles:
                boxes.realname.add_person(name, id_number)
        base = f"http://{host}:{port}"
        pay_boxes = start_payment_sandboxes(notify_base=base)
        threading.Thread(target=self._banner_when_ready, args=(base, boxes), daemon=True).start()
        try:
            uvicorn.run("backend.config.asgi:application", host=host, port=port, log_level="warning",
                        lifespan="off")
        finally:
            boxes.stop()
            for box in pay_boxes:
                box.stop()

    def _banner_when_ready(self, base: str, boxes) -> None:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=1) as resp:  # noqa: S310 - loopback
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        self.stdout.write(self._banner(base, boxes))

    def _banner(self, base: str, boxes) -> str:
        logins = demo_logins()
        staff = "\n".join(f"    {user:<18} {password}" for user, password in logins.items())
        wechat = boxes.wechat.base_url
        return f"""
  岐黄 Qihuang is running (embedded demo: SQLite, in-memory channel layer, in-process jobs).

  API docs (OpenAPI)     {base}/api/docs
  Staff login            {base}/staff/login/
  Operator admin         {base}/admin/
  Readiness              {base}/readyz
  Doctor console         {base}/console/   (log in as dr_li)
  Review queue (issue 7)   Courier app (issue 8)

  Staff demo logins (generated for this install, kept in .data/demo-logins.json):
{staff}

  Mini-program patients log in through the WeChat sandbox ({wechat}).
  Get a wx.login code for a demo patient, then exchange it:
    curl -s -X POST {wechat}/__sandbox__/login-code -d '{{"openid":"oDEMO_WANG"}}'
    curl -s -X POST {base}/api/auth/wechat-login -H 'Content-Type: application/json' -d '{{"code":"<code>"}}'

  Take a payment end to end (WeChat Pay or Alipay sandbox → notification → ledger):
    .venv/bin/python manage.py demo_pay --base {base} --channel wechat --amount-fen 2500

  Send a paid follow-up consultation to dr_li's console (it appears live):
    .venv/bin/python manage.py demo_consult --base {base}

  Press Ctrl+C to stop.
"""
