"""The payment sandboxes of the demo, wired to this process's settings."""

from __future__ import annotations

from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from django.conf import settings

from payments.gateways.alipay_sandbox import AlipaySandbox
from payments.gateways.wechatpay_sandbox import WeChatPaySandbox


def _public_pem(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def start_payment_sandboxes(*, notify_base: str) -> list:
    """Start WeChat Pay and Alipay sandboxes on the configured ports; point our gateways at them."""
    s = settings
    wechat = WeChatPaySandbox(s.WECHATPAY_APPID, s.WECHATPAY_MCHID, _public_pem(s.WECHATPAY_MERCHANT_PRIVATE_KEY),
                              s.WECHATPAY_MERCHANT_SERIAL_NO, s.WECHATPAY_APIV3_KEY, time_scale=0.01,
                              refund_settle_delay=2.0)
    wechat.start(s.SANDBOX_HOST, urlsplit(s.WECHATPAY_API_BASE).port or 0)
    alipay = AlipaySandbox(s.ALIPAY_APPID, s.ALIPAY_SELLER_ID, _public_pem(s.ALIPAY_APP_PRIVATE_KEY), time_scale=0.01)
    alipay.start(s.SANDBOX_HOST, urlsplit(s.ALIPAY_GATEWAY).port or 0)
    s.WECHATPAY_PUBLIC_KEY, s.WECHATPAY_PUBLIC_KEY_ID = wechat.platform_public_key_pem, wechat.platform_public_key_id
    s.ALIPAY_PUBLIC_KEY = alipay.alipay_public_key_pem
    s.PAYMENT_NOTIFY_BASE_URL = notify_base
    return [wechat, alipay]
