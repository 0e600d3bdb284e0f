"""Fixtures of the payment gateway tests; each provider keeps its own in a module of its own."""

from tests.payments.gateways.alipay_fixtures import *  # noqa
from tests.payments.gateways.wechatpay_fixtures import *  # noqa: F403
