"""A loopback Alipay (支付宝开放平台) for one app and one seller (DESIGN rule 8), for tests and the demo.

API, as on openapi.alipay.com (``GET`` or form ``POST`` to ``/gateway.do``; the request must carry
the app's RSA2 signature over the sorted ``k=v&...`` of every non-empty parameter except ``sign``;
every answer is ``{"<method>_response": {...}, "sign": ...}`` signed with the sandbox's own Alipay
key over the exact JSON text of the response object):
  alipay.trade.create                            → trade_no (WAIT_BUYER_PAY; same params again → same trade_no)
  alipay.trade.query / .close                    → trade state / close (40004 ACQ.TRADE_STATUS_ERROR unless unpaid)
  alipay.trade.refund                            → synchronous (40004 ACQ.REFUND_AMT_NOT_EQUAL_TOTAL over the paid sum)
  alipay.trade.fastpay.refund.query              → refund_status REFUND_SUCCESS (absent when unknown)
  alipay.data.dataservice.bill.downloadurl.query → bill_download_url (GET /downloadBillFile.resource, 30 s)
Protocol errors: 40001 isv.missing-*, 40002 isv.invalid-app-id (unsigned) / isv.invalid-signature / ...

Controls, as methods and as routes under ``/__sandbox__/``: ``pay`` (POST pay), ``chaos`` (POST chaos),
``deliver_due`` / ``deliver_all_now`` (POST deliver, ``{"all": true}``), ``notifications`` (GET
notifications), ``truth`` (GET truth), ``order`` (GET order?out_trade_no=), ``forge_responses``
(POST forge-responses); Python only: ``outbox``, ``pending_notifications``, ``signed_form``,
``bill_zip``, and the ``time_scale`` / ``auto_deliver`` attributes; plus the shared ``fail_next``,
``advance_clock``, ``calls`` and ``reset``.
"""

from payments.gateways.alipay_sandbox.notifier import CHAOS_FLAGS, MAX_ATTEMPTS, RETRY_DELAYS
from payments.gateways.alipay_sandbox.server import BILL_PATH, GATEWAY_PATH, AlipaySandbox

__all__ = ["BILL_PATH", "CHAOS_FLAGS", "GATEWAY_PATH", "MAX_ATTEMPTS", "RETRY_DELAYS", "AlipaySandbox"]
