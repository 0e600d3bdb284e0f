"""Settings choose the payment gateway implementation (DESIGN rule 7)."""

from __future__ import annotations

import functools

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from payments.gateways.base import PaymentGateway


def gateway_for(channel: str) -> PaymentGateway:
    if channel == "wechat":
        return _wechatpay(settings.WECHATPAY_APPID, settings.WECHATPAY_MCHID, settings.WECHATPAY_MERCHANT_PRIVATE_KEY,
                          settings.WECHATPAY_MERCHANT_SERIAL_NO, settings.WECHATPAY_APIV3_KEY,
                          settings.WECHATPAY_PUBLIC_KEY, settings.WECHATPAY_PUBLIC_KEY_ID,
                          settings.WECHATPAY_API_BASE, settings.WECHATPAY_TIMEOUT_SECONDS)
    if channel == "alipay":
        return _alipay(settings.ALIPAY_APPID, settings.ALIPAY_SELLER_ID, settings.ALIPAY_APP_PRIVATE_KEY,
                       settings.ALIPAY_PUBLIC_KEY, settings.ALIPAY_GATEWAY, settings.ALIPAY_TIMEOUT_SECONDS)
    raise ValueError(f"unknown payment channel {channel!r}")


@functools.lru_cache(maxsize=8)
def _wechatpay(appid, mchid, private_key, serial_no, apiv3_key, public_key, public_key_id, api_base, timeout):
    from payments.gateways.wechatpay import WeChatPayGateway

    if not public_key or not public_key_id:
        raise ImproperlyConfigured("WECHATPAY_PUBLIC_KEY and WECHATPAY_PUBLIC_KEY_ID are required")
    return WeChatPayGateway(appid=appid, mchid=mchid, merchant_private_key_pem=private_key,
                            merchant_serial_no=serial_no, apiv3_key=apiv3_key, platform_public_key_pem=public_key,
                            platform_public_key_id=public_key_id, api_base=api_base, timeout=timeout)


@functools.lru_cache(maxsize=8)
def _alipay(appid, seller_id, private_key, public_key, gateway_url, timeout):
    from payments.gateways.alipay import AlipayGateway

    if not public_key:
        raise ImproperlyConfigured("ALIPAY_PUBLIC_KEY is required")
    return AlipayGateway(appid=appid, seller_id=seller_id, app_private_key_pem=private_key,
                         alipay_public_key_pem=public_key, gateway_url=gateway_url, timeout=timeout)
