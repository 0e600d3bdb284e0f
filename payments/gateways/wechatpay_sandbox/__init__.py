"""A loopback WeChat Pay API v3 for one merchant (DESIGN rule 8), for tests and the demo.

API (what ``WeChatPayGateway`` calls, as on api.mch.weixin.qq.com; every request must carry the
merchant's ``WECHATPAY2-SHA256-RSA2048`` signature, every answer is signed with the platform key):
  POST /v3/pay/transactions/jsapi                           prepay → prepay_id
  GET  /v3/pay/transactions/out-trade-no/{no}?mchid=        order query (also /id/{transaction_id})
  POST /v3/pay/transactions/out-trade-no/{no}/close         close → 204 (400 ORDERPAID once paid)
  POST /v3/refund/domestic/refunds                          refund → PROCESSING (400 INVALID_REQUEST over the paid sum)
  GET  /v3/refund/domestic/refunds/{out_refund_no}          refund query
  GET  /v3/bill/tradebill?bill_date=&bill_type=[&tar_type=GZIP]   → download_url + SHA1
  GET  /v3/billdownload/file?token=                         the bill (CSV; unsigned, like WeChat's)

Controls, as methods and as routes under ``/__sandbox__/``: ``pay`` (POST pay), ``settle_refunds``
(POST settle-refunds), ``chaos`` (POST chaos), ``deliver_due``/``deliver_all_now`` (POST deliver,
``{"all": true}``), ``notifications`` (GET notifications), ``truth`` (GET truth), ``order`` (GET order),
``forge_responses`` (POST forge-responses), ``corrupt_next_bill``, plus the shared ``fail_next``,
``advance_clock``, ``calls`` and ``reset``.
"""

from payments.gateways.wechatpay_sandbox.ledger import SandboxConflict
from payments.gateways.wechatpay_sandbox.notifier import CHAOS_FLAGS, MAX_ATTEMPTS, RETRY_INTERVALS
from payments.gateways.wechatpay_sandbox.server import WeChatPaySandbox

__all__ = ["CHAOS_FLAGS", "MAX_ATTEMPTS", "RETRY_INTERVALS", "SandboxConflict", "WeChatPaySandbox"]
