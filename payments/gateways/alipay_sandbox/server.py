"""``AlipaySandbox``: Alipay's OpenAPI gateway for one app and one seller, on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode

from backend.gateways.loopback import CONTROL_PREFIX, LoopbackSandbox, Route, SandboxRequest, SandboxResponse
from payments.gateways.alipay_sandbox import keys
from payments.gateways.alipay_sandbox.bill import bill_zip
from payments.gateways.alipay_sandbox.notifier import Notice, Notifier
from payments.gateways.alipay_sandbox.trades import (
    SHANGHAI,
    TIME_FORMAT,
    ProviderError,
    Refund,
    Trade,
    TradeBook,
    business_error,
    fmt_time,
    fmt_time_ms,
    masked,
    yuan,
)

logger = logging.getLogger(__name__)

GATEWAY_PATH = "/gateway.do"
BILL_PATH = "/downloadBillFile.resource"
BILL_LINK_SECONDS = 30
POLL_SECONDS = 0.02
REQUIRED = {"app_id": "app-id", "method": "method", "charset": "charset", "sign_type": "signature-type",
            "sign": "signature", "timestamp": "timestamp", "version": "version"}
Handler = Callable[[dict[str, Any], Mapping[str, str]], dict[str, Any]]


class AlipaySandbox(LoopbackSandbox):
    """Alipay for one app (``appid``, whose RSA2 public key is ``app_public_key_pem``) and one seller."""

    name = "alipay"

    def __init__(
        self, appid: str, seller_id: str, app_public_key_pem: str, *,
        time_scale: float = 1.0, auto_deliver: bool = True, notify_timeout: float = 5.0,
    ) -> None:
        super().__init__()
        self.appid, self.seller_id = appid, seller_id
        self._app_key = keys.load_public(app_public_key_pem)
        self._alipay_key = keys.new_key()  # Alipay's own key pair, fresh for every sandbox
        self._forged_key = keys.new_key()
        self.auto_deliver = auto_deliver
        self._notifier = Notifier(signer=self._sign_notice, clock=self.now, time_scale=time_scale,
                                  timeout=notify_timeout)
        self._halt = threading.Event()
        self._worker: threading.Thread | None = None
        self.reset_state()

    # --- lifecycle -------------------------------------------------------------------------------
    def reset_state(self) -> None:
        with self._lock:
            self._book = TradeBook()
            self._bills: dict[str, tuple[float, str, bytes]] = {}  # token -> (expires, name, zip)
            self._forge_left = 0
            self._notifier.reset()

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Self:
        super().start(host, port)
        self._halt.clear()
        self._worker = threading.Thread(target=self._deliver_loop, name="alipay-sandbox-notify", daemon=True)
        self._worker.start()
        return self

    def stop(self) -> None:
        self._halt.set()
        if self._worker is not None:
            self._worker.join(timeout=5)
            self._worker = None
        super().stop()

    def _deliver_loop(self) -> None:
        while not self._halt.wait(POLL_SECONDS):
            if self.auto_deliver:
                try:
                    self.deliver_due()
                except Exception:
                    logger.exception("alipay sandbox: notification delivery failed")

    @property
    def alipay_public_key_pem(self) -> str:
        return keys.public_pem(self._alipay_key)

    @property
    def gateway_url(self) -> str:
        return self.base_url + GATEWAY_PATH

    @property
    def time_scale(self) -> float:
        return self._notifier.time_scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        self._notifier.time_scale = float(value)

    # --- user actions and controls -------------------------------------------------------------------
    def pay(self, out_trade_no: str, amount_fen: int | None = None) -> str:
        """The buyer pays in Alipay (``amount_fen``: settle another amount, an anomaly); returns
        the trade_no. ValueError for an unknown, closed, expired or already paid trade."""
        with self._lock:
            self._sweep()
            trade = self._book.pay(out_trade_no, amount_fen, self.now())
            self._notify("payment", trade)
            return trade.trade_no

    def chaos(self, seed: int | None = None, **flags: float | bool) -> None:
        """Chaos for notices scheduled from now on (see :mod:`.notifier`); no flags = none."""
        self._notifier.set_chaos(seed, **flags)

    def deliver_due(self) -> int:
        """Close expired trades, then one attempt for every notice due; returns the attempts made."""
        with self._lock:
            self._sweep()
        return self._notifier.deliver_due()

    def deliver_all_now(self) -> int:
        with self._lock:
            self._sweep()
        return self._notifier.deliver_all_now()

    def notifications(self) -> list[dict[str, Any]]:
        """Every delivery attempt: notify_id, kind, out_trade_no, out_refund_no, attempt, copy,
        status (success | fail | error | dropped | refused), http_status, reply, chaos, at."""
        return self._notifier.log()

    def pending_notifications(self) -> int:
        return self._notifier.pending()

    def outbox(self) -> list[dict[str, Any]]:
        """Queued notices with the exact form ``body`` the next attempt will POST."""
        return self._notifier.outbox()

    def truth(self) -> dict[str, dict[str, int]]:
        """``{out_trade_no: {"paid": fen, "refunded": fen}}``: what really happened."""
        with self._lock:
            return self._book.truth()

    def order(self, out_trade_no: str) -> dict[str, Any]:
        with self._lock:
            self._sweep()
            return self._book.trades[out_trade_no].snapshot()

    def forge_responses(self, times: int = 1) -> None:
        """Sign the next ``times`` API answers with a key that is not Alipay's."""
        with self._lock:
            self._forge_left = int(times)

    def signed_form(self, fields: Mapping[str, str]) -> bytes:
        """``fields`` plus a valid Alipay ``sign``, as a notification body (for hand-made notices)."""
        return urlencode({**fields, "sign": self._sign_notice(fields)}).encode("ascii")

    def bill_zip(self, bill_date: date) -> bytes:
        with self._lock:
            self._sweep()
            return bill_zip(self.seller_id, bill_date, self._book.trades.values(), self.now())[1]

    def control_routes(self) -> Mapping[tuple[str, str], Route]:
        def json_route(make: Callable[[dict[str, Any]], Any]) -> Route:
            return lambda request: SandboxResponse.json(make(request.json() if request.body else {}))

        def pay(body: dict[str, Any]) -> Any:
            return {"trade_no": self.pay(body["out_trade_no"], body.get("amount_fen"))}

        def deliver(body: dict[str, Any]) -> Any:
            return {"attempts": self.deliver_all_now() if body.get("all") else self.deliver_due()}

        prefix = CONTROL_PREFIX
        return {
            ("POST", prefix + "pay"): json_route(pay),
            ("POST", prefix + "chaos"): json_route(lambda body: self.chaos(**body) or {"ok": True}),
            ("POST", prefix + "deliver"): json_route(deliver),
            ("POST", prefix + "forge-responses"): json_route(
                lambda body: self.forge_responses(body.get("times", 1)) or {"ok": True}),
            ("GET", prefix + "notifications"): lambda request: SandboxResponse.json(self.notifications()),
            ("GET", prefix + "truth"): lambda request: SandboxResponse.json(self.truth()),
            ("GET", prefix + "order"): lambda request: SandboxResponse.json(self.order(request.query["out_trade_no"])),
        }

    # --- API -----------------------------------------------------------------------------------------
    def api_routes(self) -> Mapping[tuple[str, str], Route]:
        return {("GET", GATEWAY_PATH): self._gateway, ("POST", GATEWAY_PATH): self._gateway,
                ("GET", BILL_PATH): self._bill_file}

    def error_response(self, request: SandboxRequest, errcode: int | str) -> SandboxResponse:
        """``fail_next(GATEWAY_PATH, "errcode", "20000")`` or ``"40004/ACQ.SYSTEM_ERROR"``."""
        code, _, sub_code = str(errcode).partition("/")
        error = ProviderError(code, sub_code or "isp.unknow-error", "sandbox: injected failure")
        return self._answer(_params(request).get("method", ""), error.payload())

    def _handlers(self) -> dict[str, Handler]:
        return {
            "alipay.trade.create": self._create,
            "alipay.trade.query": lambda biz, _: _query_json(self._book.find(biz)),
            "alipay.trade.close": self._close,
            "alipay.trade.refund": self._refund,
            "alipay.trade.fastpay.refund.query": self._refund_query,
            "alipay.data.dataservice.bill.downloadurl.query": self._bill_url,
        }

    def _gateway(self, request: SandboxRequest) -> SandboxResponse:
        params = _params(request)
        method = params.get("method", "")
        try:
            self._authenticate(params)
            handler = self._handlers().get(method)
            if handler is None:
                raise ProviderError("40002", "isv.invalid-method", "不存在的方法名")
            biz = _biz_content(params)
            with self._lock:
                self._sweep()
                body = handler(biz, params)
        except ProviderError as exc:
            return self._answer(method, exc.payload(), signed=exc.signed)
        return self._answer(method, {"code": "10000", "msg": "Success", **body})

    def _authenticate(self, params: Mapping[str, str]) -> None:
        missing = [name for name in REQUIRED if not params.get(name)]
        if missing:
            raise ProviderError("40001", f"isv.missing-{REQUIRED[missing[0]]}", "缺少必选参数",
                                signed="app_id" not in missing)
        if params["app_id"] != self.appid:
            raise ProviderError("40002", "isv.invalid-app-id", "无效的AppID参数", signed=False)
        if params["sign_type"] != "RSA2":
            raise ProviderError("40002", "isv.invalid-signature-type", "无效的签名类型")
        if params["charset"].lower() != "utf-8":
            raise ProviderError("40002", "isv.invalid-charset", "字符集错误")
        try:
            datetime.strptime(params["timestamp"], TIME_FORMAT)
        except ValueError:
            raise ProviderError("40002", "isv.invalid-timestamp", "非法的时间戳参数") from None
        if not keys.verify(self._app_key, keys.sign_content(params, exclude=("sign",)), params["sign"]):
            raise ProviderError("40002", "isv.invalid-signature", "验签出错")

    def _answer(self, method: str, payload: Mapping[str, Any], signed: bool = True) -> SandboxResponse:
        key = method.replace(".", "_") + "_response" if method in self._handlers() else "error_response"
        inner = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        body = f'{{"{key}":{inner}'
        if signed:
            body += f',"sign":{json.dumps(keys.sign(self._response_key(), inner))}'
        return SandboxResponse(200, (body + "}").encode("utf-8"), {"Content-Type": "text/html;charset=utf-8"})

    def _response_key(self) -> Any:
        with self._lock:
            if self._forge_left > 0:
                self._forge_left -= 1
                return self._forged_key
        return self._alipay_key

    # --- methods (called with the lock held) ---------------------------------------------------------
    def _create(self, biz: dict[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
        trade = self._book.create(biz, params.get("notify_url", ""), self.now())
        return {"out_trade_no": trade.out_trade_no, "trade_no": trade.trade_no}

    def _close(self, biz: dict[str, Any], _: Mapping[str, str]) -> dict[str, Any]:
        trade = self._book.close(biz, self.now())
        return {"out_trade_no": trade.out_trade_no, "trade_no": trade.trade_no}

    def _refund(self, biz: dict[str, Any], _: Mapping[str, str]) -> dict[str, Any]:
        trade, refund, moved = self._book.refund(biz, self.now())
        if moved:
            self._notify("refund", trade, refund)
        return {
            "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no, "buyer_logon_id": masked(trade.buyer),
            "fund_change": "Y" if moved else "N", "refund_fee": yuan(trade.refunded_fen),
            "gmt_refund_pay": fmt_time(refund.at), _buyer_key(trade): trade.buyer,
        }

    def _refund_query(self, biz: dict[str, Any], _: Mapping[str, str]) -> dict[str, Any]:
        trade, refund = self._book.refund_of(biz)
        if refund is None:  # Alipay: success, without refund fields
            return {"out_trade_no": trade.out_trade_no, "trade_no": trade.trade_no}
        answer = {
            "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no, "out_request_no": refund.out_request_no,
            "total_amount": yuan(trade.amount_fen), "refund_amount": yuan(refund.amount_fen),
            "refund_status": "REFUND_SUCCESS",
        }
        if "gmt_refund_pay" in (biz.get("query_options") or []):
            answer["gmt_refund_pay"] = fmt_time(refund.at)
        return answer

    def _bill_url(self, biz: dict[str, Any], _: Mapping[str, str]) -> dict[str, Any]:
        if biz.get("bill_type") != "trade":
            raise business_error("isp.bill_type_not_support", "账单类型不支持 (sandbox: trade only)")
        try:
            bill_date = date.fromisoformat(str(biz.get("bill_date")))
        except ValueError:
            raise business_error("isv.invalid-bill-date", "账单日期格式错误 (sandbox: yyyy-MM-dd only)") from None
        if bill_date >= datetime.fromtimestamp(self.now(), SHANGHAI).date():
            raise business_error("isp.bill_not_exist", "账单不存在")
        name, content = bill_zip(self.seller_id, bill_date, self._book.trades.values(), self.now())
        token = secrets.token_urlsafe(16)
        self._bills[token] = (self.now() + BILL_LINK_SECONDS, name, content)
        query = urlencode({"bizType": "trade", "userId": f"{self.seller_id}0156", "fileType": "csv.zip",
                           "bizDates": bill_date.strftime("%Y%m%d"), "downloadFileName": name, "token": token})
        return {"bill_download_url": f"{self.base_url}{BILL_PATH}?{query}"}

    def _bill_file(self, request: SandboxRequest) -> SandboxResponse:
        with self._lock:
            entry = self._bills.get(request.query.get("token", ""))
            if entry is None or entry[0] < self.now():
                return SandboxResponse(404, b"file not found or link expired", {"Content-Type": "text/plain"})
        _, name, content = entry
        headers = {"Content-Type": "application/oct-stream", "Content-Disposition": f"attachment; filename={name}"}
        return SandboxResponse(200, content, headers)

    # --- notices -------------------------------------------------------------------------------------
    def _sweep(self) -> None:
        for trade in self._book.expire(self.now()):
            self._notify("close", trade)

    def _notify(self, kind: str, trade: Trade, refund: Refund | None = None) -> None:
        if not trade.notify_url:
            return
        fields = _notice_fields(self, trade, refund)
        notice = Notice(kind, trade.out_trade_no, trade.notify_url, fields, refund.out_request_no if refund else "")
        notify_id = datetime.fromtimestamp(self.now(), SHANGHAI).strftime("%Y%m%d") + "00222" + secrets.token_hex(12)
        self._notifier.schedule(notice, notify_id)

    def _sign_notice(self, fields: Mapping[str, str]) -> str:
        return keys.sign(self._alipay_key, keys.sign_content(fields, exclude=("sign", "sign_type")))


# --- helpers ---------------------------------------------------------------------------------------
def _params(request: SandboxRequest) -> dict[str, str]:
    params = dict(request.query)
    if request.method == "POST" and request.body:
        params.update(parse_qsl(request.body.decode("utf-8", errors="replace"), keep_blank_values=True))
    return params


def _biz_content(params: Mapping[str, str]) -> dict[str, Any]:
    try:
        biz = json.loads(params.get("biz_content") or "{}")
    except ValueError:
        biz = None
    if not isinstance(biz, dict):
        raise ProviderError("40002", "isv.invalid-parameter", "biz_content 不是 JSON 对象")
    return biz


def _buyer_key(trade: Trade) -> str:
    return "buyer_user_id" if trade.buyer_field == "buyer_id" else "buyer_open_id"


def _query_json(trade: Trade) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no, "trade_status": trade.status,
        "total_amount": yuan(trade.amount_fen), "subject": trade.subject, "buyer_logon_id": masked(trade.buyer),
        _buyer_key(trade): trade.buyer,
    }
    if trade.paid_at is not None:
        paid = yuan(trade.paid_fen)
        answer.update(receipt_amount=paid, buyer_pay_amount=paid, invoice_amount=paid, point_amount="0.00",
                      send_pay_date=fmt_time(trade.paid_at),
                      fund_bill_list=[{"fund_channel": "ALIPAYACCOUNT", "amount": paid}])
    return answer


def _notice_fields(sandbox: AlipaySandbox, trade: Trade, refund: Refund | None) -> dict[str, str]:
    fields = {
        "notify_time": fmt_time(sandbox.now()), "notify_type": "trade_status_sync", "app_id": sandbox.appid,
        "charset": "utf-8", "version": "1.0", "sign_type": "RSA2", "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no, trade.buyer_field: trade.buyer, "buyer_logon_id": masked(trade.buyer),
        "seller_id": sandbox.seller_id, "trade_status": trade.status, "total_amount": yuan(trade.amount_fen),
        "subject": trade.subject, "gmt_create": fmt_time(trade.created_at),
    }
    if trade.paid_at is not None:
        paid = yuan(trade.paid_fen)
        funds = json.dumps([{"amount": paid, "fundChannel": "ALIPAYACCOUNT"}], separators=(",", ":"))
        fields.update(receipt_amount=paid, invoice_amount=paid, buyer_pay_amount=paid, point_amount="0.00",
                      gmt_payment=fmt_time(trade.paid_at), fund_bill_list=funds)
    if refund is not None:
        fully = refund.refunded_after == trade.paid_fen
        fields.update(out_biz_no=refund.out_request_no, refund_fee=yuan(refund.refunded_after),
                      gmt_refund=fmt_time_ms(refund.at), trade_status="TRADE_CLOSED" if fully else "TRADE_SUCCESS")
    if trade.closed_at is not None and fields["trade_status"] == "TRADE_CLOSED":
        fields["gmt_close"] = fmt_time(trade.closed_at)
    return fields

