"""Payments end to end: both provider sandboxes on loopback, our notify endpoints served by a live
server, the demo charge as the payable, Celery eager (the tasks run in-process, after commit)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import serialization
from django.conf import settings as django_settings

from backend.config.celery import app as celery_app
from backend.demo.models import DemoCharge
from backend.demo.payables import KIND as DEMO_KIND
from payments.gateways.alipay_sandbox import AlipaySandbox
from payments.gateways.wechatpay_sandbox import WeChatPaySandbox

ALIPAY_BUYER = "2088102177000001"


def public_pem(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


@dataclass
class PayBoxes:
    wechat: WeChatPaySandbox
    alipay: AlipaySandbox

    def box(self, channel: str):
        return self.wechat if channel == "wechat" else self.alipay

    def reset(self) -> None:
        for box in (self.wechat, self.alipay):
            box.reset()
            box.chaos()


@pytest.fixture(scope="session")
def pay_boxes():
    s = django_settings
    wechat = WeChatPaySandbox(s.WECHATPAY_APPID, s.WECHATPAY_MCHID, public_pem(s.WECHATPAY_MERCHANT_PRIVATE_KEY),
                              s.WECHATPAY_MERCHANT_SERIAL_NO, s.WECHATPAY_APIV3_KEY, auto_deliver=False,
                              time_scale=0.001).start()
    alipay = AlipaySandbox(s.ALIPAY_APPID, s.ALIPAY_SELLER_ID, public_pem(s.ALIPAY_APP_PRIVATE_KEY),
                           auto_deliver=False, time_scale=0.001).start()
    yield PayBoxes(wechat, alipay)
    wechat.stop()
    alipay.stop()


@pytest.fixture
def pay(settings, live_server, pay_boxes, transactional_db):
    """Settings pointed at the sandboxes; notifications go to the live server; tasks run eagerly."""
    settings.WECHATPAY_API_BASE = pay_boxes.wechat.base_url
    settings.WECHATPAY_PUBLIC_KEY = pay_boxes.wechat.platform_public_key_pem
    settings.WECHATPAY_PUBLIC_KEY_ID = pay_boxes.wechat.platform_public_key_id
    settings.ALIPAY_GATEWAY = pay_boxes.alipay.gateway_url
    settings.ALIPAY_PUBLIC_KEY = pay_boxes.alipay.alipay_public_key_pem
    settings.PAYMENT_NOTIFY_BASE_URL = live_server.url
    pay_boxes.reset()
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield pay_boxes
    celery_app.conf.task_always_eager = eager


def new_charge(user_id: str, amount_fen: int = 3000, description: str = "复诊问诊费") -> DemoCharge:
    return DemoCharge.objects.create(account_id=user_id, amount_fen=amount_fen, description=description)


def checkout(who, charge: DemoCharge, channel: str = "wechat"):
    payload = {"payable_type": DEMO_KIND, "payable_id": str(charge.pk), "channel": channel}
    if channel == "alipay":
        payload["alipay_buyer_id"] = ALIPAY_BUYER
    resp = who.post("/api/payments/checkout", payload)
    assert resp.status_code == 200, resp.content
    return resp.json()
