"""Alipay (支付宝) for the Alipay mini-program, built on python-alipay-sdk (RSA2, public-key mode).

``AlipayGateway`` implements :class:`payments.gateways.base.PaymentGateway` (channel "alipay"):

* ``prepay`` → ``alipay.trade.create`` (product JSAPI_PAY, ``buyer_id`` for 2088… ids, else
  ``buyer_open_id``; ``time_expire`` in Asia/Shanghai) → ``client_params = {"tradeNO": trade_no}``
  for ``my.tradePay``;
* ``query_order`` / ``close_order`` / ``refund`` / ``query_refund`` → ``alipay.trade.query`` /
  ``.close`` / ``.refund`` / ``.fastpay.refund.query``;
* ``parse_notification`` / ``notification_ack`` for ``trade_status_sync`` form POSTs (``success``);
* ``download_bill`` → ``alipay.data.dataservice.bill.downloadurl.query`` + the zipped GBK CSV.

Modules: :mod:`.gateway` (the class), :mod:`.protocol` (signed answers, error codes),
:mod:`.values` (yuan ↔ fen, Shanghai times), :mod:`.bill` (the trade bill).
The loopback simulator is :mod:`payments.gateways.alipay_sandbox`.
"""

from payments.gateways.alipay.bill import parse_bill_csv, parse_bill_zip
from payments.gateways.alipay.gateway import AlipayGateway
from payments.gateways.alipay.values import SHANGHAI, fen_to_yuan, parse_shanghai, shanghai_text, yuan_to_fen

__all__ = [
    "SHANGHAI",
    "AlipayGateway",
    "fen_to_yuan",
    "parse_bill_csv",
    "parse_bill_zip",
    "parse_shanghai",
    "shanghai_text",
    "yuan_to_fen",
]
