"""``WeChatPaySandbox``: WeChat Pay API v3 for one merchant, on 127.0.0.1 (DESIGN rule 8)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import logging
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from typing import Any, Self
from urllib.parse import quote, urlencode

from backend.gateways.loopback import CONTROL_PREFIX, LoopbackSandbox, Route, SandboxRequest, SandboxResponse
from payments.gateways.wechatpay_sandbox import crypto
from payments.gateways.wechatpay_sandbox.bill import BILL_TYPES, trade_bill
from payments.gateways.wechatpay_sandbox.ledger import Ledger, Order, PayError, Refund, SandboxConflict
from payments.gateways.wechatpay_sandbox.notifier import Notice, Notifier

logger = logging.getLogger(__name__)

WORKER_TICK_SECONDS = 0.02
ERROR_STATUS = {"SYSTEM_ERROR": 500, "FREQUENCY_LIMITED": 429, "SIGN_ERROR": 401, "ORDER_NOT_EXIST": 404,
                "RESOURCE_NOT_EXISTS": 404, "NOAUTH": 403}
ERROR_MESSAGE = {"SYSTEM_ERROR": "系统错误", "FREQUENCY_LIMITED": "频率超限", "SIGN_ERROR": "签名错误"}
Handler = Callable[..., tuple[int, Any] | SandboxResponse]


class WeChatPaySandbox(LoopbackSandbox):
    """Orders, refunds, notifications and bills of merchant ``mchid`` for mini-program ``appid``.

    The merchant's requests must be signed with the private key matching
    ``merchant_public_key_pem`` (serial ``merchant_serial_no``); answers and notifications are
    signed with a platform key generated here (``platform_public_key_pem`` /
    ``platform_public_key_id``, for the gateway's public-key mode). ``time_scale`` shrinks the
    notification retry schedule; ``refund_settle_delay`` (sandbox-clock seconds) settles refunds
    by itself; ``auto_deliver=False`` leaves delivery to ``deliver_due``/``deliver_all_now``.
    """

    name = "wechatpay"

    def __init__(
        self, appid: str, mchid: str, merchant_public_key_pem: str, merchant_serial_no: str, apiv3_key: str, *,
        time_scale: float = 1.0, refund_settle_delay: float | None = None, auto_deliver: bool = True,
        notify_timeout: float = 5.0, loopback_only: bool = True, hold_seconds: float = 60.0,
    ) -> None:
        super().__init__()
        if len(apiv3_key.encode()) != 32:
            raise ValueError("the APIv3 key must be 32 bytes")
        self.appid, self.mchid, self.merchant_serial_no = appid, mchid, merchant_serial_no
        self.refund_settle_delay, self.auto_deliver = refund_settle_delay, auto_deliver
        self._merchant_key = crypto.load_public_key(merchant_public_key_pem)
        self._platform_key = crypto.generate_key()
        self.platform_public_key_pem = crypto.public_pem(self._platform_key)
        self.platform_public_key_id = "PUB_KEY_ID_01" + "".join(secrets.choice("0123456789") for _ in range(26))
        self._stray_key: Any = None
        self._notifier = Notifier(
            key=self._platform_key, serial=self.platform_public_key_id, apiv3_key=apiv3_key, time_scale=time_scale,
            timeout=notify_timeout, loopback_only=loopback_only, hold_seconds=hold_seconds,
        )
        self._routes = _RouteTable(self._route_specs())
        self._worker: threading.Thread | None = None
        self._stop_worker = threading.Event()
        self.reset_state()

    def reset_state(self) -> None:
        with self._lock:
            self._ledger = Ledger(self.appid, self.mchid)
            self._bills: dict[str, bytes] = {}
            self._forge_remaining = 0
            self._corrupt_bills = 0
        self._notifier.reset()

    # --- lifecycle: the HTTP server plus a delivery worker ------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> Self:
        super().start(host, port)
        self._stop_worker = threading.Event()
        self._worker = threading.Thread(target=self._work, args=(self._stop_worker,), name="wechatpay-notify",
                                        daemon=True)
        self._worker.start()
        return self

    def stop(self) -> None:
        self._stop_worker.set()
        if self._worker is not None:
            self._worker.join(timeout=10)
            self._worker = None
        super().stop()

    def _work(self, stop: threading.Event) -> None:
        while not stop.wait(WORKER_TICK_SECONDS):
            try:
                self._settle_due()
                if self.auto_deliver:
                    self._notifier.deliver_due()
            except Exception:
                logger.exception("wechatpay sandbox worker failed")

    # --- controls: what the payer, WeChat's back office and the test can do ---------------------------
    def pay(self, out_trade_no: str, payer_total: int | None = None) -> str:
        """The payer pays in WeChat; returns the transaction_id. SandboxConflict if closed/expired/paid."""
        with self._lock:
            order = self._ledger.pay(out_trade_no, payer_total, self.now())
            resource = self._ledger.order_json(order)
            self._notifier.schedule(Notice("TRANSACTION.SUCCESS", out_trade_no, order.notify_url, resource, self.now()))
            return order.transaction_id

    def settle_refunds(self, out_refund_no: str | None = None, status: str = "SUCCESS") -> list[str]:
        """Finish PROCESSING refunds (all, or one) as SUCCESS/ABNORMAL/CLOSED and notify them."""
        with self._lock:
            settled = self._ledger.settle(self.now(), out_refund_no, status)
            for refund in settled:
                self._notify_refund(refund)
            return [refund.out_refund_no for refund in settled]

    def chaos(self, seed: int | None = None, **flags: float | bool) -> None:
        """Chaos for notices scheduled from now on; replaces earlier flags (``chaos()`` = none)."""
        self._notifier.set_chaos(seed, **flags)

    def deliver_due(self) -> int:
        return self._notifier.deliver_due()

    def deliver_all_now(self) -> int:
        return self._notifier.deliver_all_now()

    def notifications(self) -> list[dict[str, Any]]:
        """Every delivery attempt: event_id, event_type, kind, out_trade_no, out_refund_no, copy,
        attempt (0 = dropped by chaos, never sent), status (None = no answer), error, chaos."""
        return self._notifier.log()

    def pending_notifications(self) -> int:
        return self._notifier.pending()

    def truth(self) -> dict[str, dict[str, int]]:
        """``{out_trade_no: {"paid": fen, "refunded": fen}}`` as WeChat's books have it."""
        with self._lock:
            return self._ledger.truth()

    def order(self, out_trade_no: str) -> dict[str, Any]:
        with self._lock:
            return self._ledger.order_json(self._ledger.order(out_trade_no))

    def forge_responses(self, times: int = 1) -> None:
        """Sign the next ``times`` API answers with a key that is not the platform key."""
        with self._lock:
            if self._stray_key is None:
                self._stray_key = crypto.generate_key()
            self._forge_remaining += int(times)

    def corrupt_next_bill(self) -> None:
        """Flip a byte in the next bill file served, so its SHA1 no longer matches."""
        with self._lock:
            self._corrupt_bills += 1

    def _settle_due(self) -> None:
        with self._lock:
            for out_refund_no in self._ledger.due_refunds(self.now()):
                self.settle_refunds(out_refund_no)

    def _notify_refund(self, refund: Refund) -> None:
        if not refund.notify_url:
            return
        order = self._ledger.orders[refund.out_trade_no]
        resource = {
            "mchid": self.mchid, "out_trade_no": order.out_trade_no, "transaction_id": order.transaction_id,
            "out_refund_no": refund.out_refund_no, "refund_id": refund.refund_id, "refund_status": refund.status,
            "user_received_account": "支付用户零钱",
            "amount": {"total": order.total, "refund": refund.amount, "payer_total": order.payer_total,
                       "payer_refund": refund.amount},
        }
        if refund.success_time is not None:
            resource["success_time"] = crypto.rfc3339(refund.success_time)
        self._notifier.schedule(Notice(f"REFUND.{refund.status}", order.out_trade_no, refund.notify_url, resource,
                                       self.now(), out_refund_no=refund.out_refund_no))

    # --- API ---------------------------------------------------------------------------------------
    def api_routes(self) -> Mapping[tuple[str, str], Route]:
        return self._routes

    def _route_specs(self) -> list[tuple[str, str, Route]]:
        no = r"(?P<{}>[^/]+)"
        return [
            ("POST", "/v3/pay/transactions/jsapi", self._api(self._prepay)),
            ("GET", "/v3/pay/transactions/out-trade-no/" + no.format("out_trade_no"), self._api(self._query)),
            ("GET", "/v3/pay/transactions/id/" + no.format("transaction_id"), self._api(self._query_by_id)),
            ("POST", "/v3/pay/transactions/out-trade-no/" + no.format("out_trade_no") + "/close",
             self._api(self._close)),
            ("POST", "/v3/refund/domestic/refunds", self._api(self._refund)),
            ("GET", "/v3/refund/domestic/refunds/" + no.format("out_refund_no"), self._api(self._query_refund)),
            ("GET", "/v3/bill/tradebill", self._api(self._trade_bill)),
            ("GET", "/v3/billdownload/file", self._api(self._download_bill)),
        ]

    def error_response(self, request: SandboxRequest, errcode: int | str) -> SandboxResponse:
        code = str(errcode)
        return self._reply(ERROR_STATUS.get(code, 400), {"code": code, "message": ERROR_MESSAGE.get(code, code)})

    def _api(self, handler: Handler) -> Callable[..., SandboxResponse]:
        """Check the merchant's signature, run ``handler`` under the lock, sign the answer."""

        def route(request: SandboxRequest, **params: str) -> SandboxResponse:
            problem = self._auth_problem(request)
            if problem:
                return self._reply(401, {"code": "SIGN_ERROR", "message": problem})
            with self._lock:
                try:
                    result = handler(request, **params)
                except PayError as exc:
                    result = exc.status, {"code": exc.code, "message": exc.message}
            return result if isinstance(result, SandboxResponse) else self._reply(*result)

        return route

    def _auth_problem(self, request: SandboxRequest) -> str | None:
        # The base server keeps the parsed query only; re-encoding it gives back the signed target
        # for the plain ASCII values the API uses (dates, digits, order numbers, tokens).
        query = urlencode(request.query, quote_via=quote, safe="-_.~*|:")
        target = request.path + ("?" + query if query else "")
        auth = crypto.parse_authorization(request.headers.get("authorization", ""))
        expect = {"mchid": self.mchid, "serial_no": self.merchant_serial_no, "key": self._merchant_key}
        return crypto.authorization_error(auth, request.method, target, request.body, expect)

    def _reply(self, status: int, payload: Any) -> SandboxResponse:
        body = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode("utf-8")
        with self._lock:
            key = self._platform_key
            if self._forge_remaining > 0:
                self._forge_remaining -= 1
                key = self._stray_key
        headers = crypto.signed_headers(key, self.platform_public_key_id, body)
        headers["Request-ID"] = str(uuid.uuid4())
        if payload is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
        return SandboxResponse(status, body, headers)

    def _prepay(self, request: SandboxRequest) -> tuple[int, Any]:
        order = self._ledger.prepay(_json_body(request), self.now())
        return 200, {"prepay_id": order.prepay_id}

    def _query(self, request: SandboxRequest, out_trade_no: str) -> tuple[int, Any]:
        self._check_mchid(request.query.get("mchid"))
        return 200, self._ledger.order_json(self._ledger.order(out_trade_no))

    def _query_by_id(self, request: SandboxRequest, transaction_id: str) -> tuple[int, Any]:
        self._check_mchid(request.query.get("mchid"))
        found = [o for o in self._ledger.orders.values() if o.transaction_id == transaction_id]
        if not found:
            raise PayError(404, "ORDER_NOT_EXIST", "订单不存在")
        return 200, self._ledger.order_json(found[0])

    def _close(self, request: SandboxRequest, out_trade_no: str) -> tuple[int, Any]:
        self._check_mchid(_json_body(request).get("mchid"))
        self._ledger.close(out_trade_no)
        return 204, None

    def _refund(self, request: SandboxRequest) -> tuple[int, Any]:
        refund = self._ledger.refund(_json_body(request), self.now(), self.refund_settle_delay)
        return 200, self._ledger.refund_json(refund)

    def _query_refund(self, request: SandboxRequest, out_refund_no: str) -> tuple[int, Any]:
        return 200, self._ledger.refund_json(self._ledger.refund_of(out_refund_no))

    def _trade_bill(self, request: SandboxRequest) -> tuple[int, Any]:
        bill_date, bill_type, tar_type = _bill_query(request.query)
        if bill_date > crypto.shanghai(self.now()).date():
            raise PayError(400, "PARAM_ERROR", "bill_date 不能晚于当前日期")
        data = trade_bill(self._ledger, bill_date, bill_type)
        if data is None:
            raise PayError(400, "NO_STATEMENT_EXIST", "账单文件不存在")
        if tar_type == "GZIP":
            data = gzip.compress(data, mtime=0)
        token = secrets.token_urlsafe(24)
        digest = hashlib.sha1(data, usedforsecurity=False).hexdigest()
        if self._corrupt_bills > 0:
            self._corrupt_bills -= 1
            data = bytes([data[0] ^ 0x01]) + data[1:]
        self._bills[token] = data
        return 200, {"hash_type": "SHA1", "hash_value": digest,
                     "download_url": f"{self.base_url}/v3/billdownload/file?token={token}"}

    def _download_bill(self, request: SandboxRequest) -> SandboxResponse:
        data = self._bills.get(request.query.get("token", ""))
        if data is None:
            raise PayError(400, "PARAM_ERROR", "token 无效或已过期")
        # Like WeChat, the file itself is not signed: the SHA1 from /v3/bill/tradebill vouches for it.
        return SandboxResponse(200, data, {"Content-Type": "application/octet-stream"})

    def _check_mchid(self, mchid: Any) -> None:
        if mchid != self.mchid:
            raise PayError(400, "PARAM_ERROR", "mchid 与请求方商户号不一致")

    # --- control routes ------------------------------------------------------------------------------
    def control_routes(self) -> Mapping[tuple[str, str], Route]:
        def json_route(make: Callable[[dict[str, Any]], Any]) -> Route:
            def route(request: SandboxRequest) -> SandboxResponse:
                spec = request.json() if request.body else dict(request.query)
                try:
                    return SandboxResponse.json(make(spec))
                except SandboxConflict as exc:
                    return SandboxResponse.json({"error": str(exc)}, 409)

            return route

        return {
            ("POST", CONTROL_PREFIX + "pay"): json_route(
                lambda s: {"transaction_id": self.pay(s["out_trade_no"], s.get("payer_total"))}),
            ("POST", CONTROL_PREFIX + "settle-refunds"): json_route(
                lambda s: {"settled": self.settle_refunds(s.get("out_refund_no"), s.get("status", "SUCCESS"))}),
            ("POST", CONTROL_PREFIX + "chaos"): json_route(lambda s: _done(self.chaos(**s))),
            ("POST", CONTROL_PREFIX + "deliver"): json_route(
                lambda s: {"attempts": self.deliver_all_now() if s.get("all") else self.deliver_due()}),
            ("GET", CONTROL_PREFIX + "notifications"): json_route(lambda s: self.notifications()),
            ("GET", CONTROL_PREFIX + "truth"): json_route(lambda s: self.truth()),
            ("GET", CONTROL_PREFIX + "order"): json_route(lambda s: self.order(s["out_trade_no"])),
            ("POST", CONTROL_PREFIX + "forge-responses"): json_route(
                lambda s: _done(self.forge_responses(int(s.get("times", 1))))),
        }


class _RouteTable(Mapping[tuple[str, str], Route]):
    """API routes with ``(?P<name>...)`` path parameters; ``get((method, path))`` finds one."""

    def __init__(self, specs: list[tuple[str, str, Route]]) -> None:
        self._specs = [(method, re.compile(pattern), route) for method, pattern, route in specs]

    def __getitem__(self, key: tuple[str, str]) -> Route:
        method, path = key
        for spec_method, pattern, route in self._specs:
            match = pattern.fullmatch(path)
            if spec_method == method and match:
                return functools.partial(route, **match.groupdict())
        raise KeyError(key)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter((method, pattern.pattern) for method, pattern, _ in self._specs)

    def __len__(self) -> int:
        return len(self._specs)


def _done(_: object) -> dict[str, bool]:
    return {"ok": True}


def _json_body(request: SandboxRequest) -> dict[str, Any]:
    try:
        payload = request.json()
    except ValueError:
        raise PayError(400, "PARAM_ERROR", "请求体不是合法的JSON") from None
    if not isinstance(payload, dict):
        raise PayError(400, "PARAM_ERROR", "请求体必须是JSON对象")
    return payload


def _bill_query(query: Mapping[str, str]) -> tuple[date, str, str | None]:
    try:
        bill_date = date.fromisoformat(query.get("bill_date", ""))
    except ValueError:
        raise PayError(400, "PARAM_ERROR", "bill_date 格式错误，应为 YYYY-MM-DD") from None
    bill_type, tar_type = query.get("bill_type", "ALL"), query.get("tar_type")
    if bill_type not in BILL_TYPES or tar_type not in (None, "GZIP"):
        raise PayError(400, "PARAM_ERROR", "bill_type 或 tar_type 取值错误")
    return bill_date, bill_type, tar_type


__all__ = ["Order", "SandboxConflict", "WeChatPaySandbox"]
