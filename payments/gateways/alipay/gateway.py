"""``AlipayGateway``: the PaymentGateway protocol over Alipay's OpenAPI gateway, public-key mode, RSA2.

Requests are built and signed by python-alipay-sdk (``build_body`` + ``sign_data``: every
parameter but ``sign``, ``sign_type`` included, sorted ``k=v&...``, SHA256withRSA) but sent by us
with ``requests``: a form POST with an explicit timeout, so HTTP status, timeouts and connection
errors map cleanly to ``GatewayRetryable``. (The SDK's own ``verified_sync_response`` sends a GET
through ``urllib.request.urlopen(url, timeout=AliPayConfig.timeout)``: bounded, but its
``HTTPError``/``URLError``/``AliPayException`` would need untangling, and it locates the signed text
by counting braces; see :mod:`payments.gateways.alipay.protocol`.) Answers are verified with the
SDK's ``_verify``; notifications with its ``verify``.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl

import requests
from alipay import AliPay

from backend.gateways.errors import GatewayError, GatewayRetryable, GatewayTerminal
from payments.gateways.alipay.bill import parse_bill_zip
from payments.gateways.alipay.protocol import SUCCESS, UNSIGNED_ERROR_CODES, error_for, signed_parts
from payments.gateways.alipay.values import SHANGHAI, fen_to_yuan, parse_shanghai, shanghai_text, yuan_to_fen
from payments.gateways.base import (
    BillRow,
    NotificationAck,
    NotificationRejected,
    OrderState,
    OrderStatus,
    PaymentNotification,
    PrepayRequest,
    PrepayResult,
    RefundRequest,
    RefundStatus,
)

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded;charset=utf-8"
ORDER_STATES: Mapping[str, OrderState] = {
    "WAIT_BUYER_PAY": "pending",
    "TRADE_SUCCESS": "paid",
    "TRADE_FINISHED": "paid",
    "TRADE_CLOSED": "closed",
}


class AlipayGateway:
    """The Alipay mini-program channel: ``my.tradePay({tradeNO})`` after ``alipay.trade.create``."""

    channel = "alipay"

    def __init__(
        self,
        *,
        appid: str,
        seller_id: str,
        app_private_key_pem: str,
        alipay_public_key_pem: str,
        gateway_url: str,
        timeout: float,
    ) -> None:
        self.appid = appid
        self.mchid = seller_id
        self.gateway_url = gateway_url
        self.timeout = timeout
        self._sdk = AliPay(
            appid=appid,
            app_notify_url=None,
            app_private_key_string=app_private_key_pem,
            alipay_public_key_string=alipay_public_key_pem,
            sign_type="RSA2",
        )
        self._sdk._gateway = gateway_url  # the SDK's own HTTP path is not used; kept consistent anyway
        self._http = requests.Session()

    def close(self) -> None:
        self._http.close()

    # --- orders ------------------------------------------------------------------------------
    def resume_params(self, provider_ref: str) -> dict[str, str]:
        """What my.tradePay needs for an existing trade (no new trade.create)."""
        return {"tradeNO": provider_ref}

    def prepay(self, request: PrepayRequest) -> PrepayResult:
        if request.amount_fen <= 0 or request.expires_at.tzinfo is None:
            raise GatewayTerminal("invalid_request", "an Alipay trade needs >= 0.01 yuan and an aware expiry")
        buyer_field = "buyer_id" if request.payer_id.startswith("2088") else "buyer_open_id"
        biz = {
            "out_trade_no": request.out_trade_no,
            "total_amount": fen_to_yuan(request.amount_fen),
            "subject": request.description,
            "product_code": "JSAPI_PAY",
            "time_expire": shanghai_text(request.expires_at),
            buyer_field: request.payer_id,
        }
        payload = self._call("alipay.trade.create", biz, notify_url=request.notify_url)
        trade_no = _text(payload, "trade_no")
        return PrepayResult(provider_ref=trade_no, client_params={"tradeNO": trade_no})

    def query_order(self, out_trade_no: str) -> OrderStatus:
        """TRADE_CLOSED with a ``send_pay_date`` is a paid trade Alipay closed after a full refund:
        ``refunded`` (a trade never paid has no ``send_pay_date``: ``closed``)."""
        payload = self._call("alipay.trade.query", {"out_trade_no": out_trade_no})
        paid_at = _time(payload, "send_pay_date")
        state = ORDER_STATES.get(str(payload.get("trade_status")), "unknown")
        if state == "closed" and paid_at is not None:
            state = "refunded"
        was_paid = state in ("paid", "refunded")
        return OrderStatus(
            out_trade_no=out_trade_no,
            state=state,
            amount_fen=_fen(payload, "total_amount") if was_paid else 0,
            provider_trade_no=str(payload.get("trade_no") or ""),
            paid_at=paid_at if was_paid else None,
        )

    def close_order(self, out_trade_no: str) -> None:
        """Alipay answers ACQ.TRADE_STATUS_ERROR for a paid *and* for an already closed trade: we
        ask which. A trade Alipay never heard of cannot be paid, so there is nothing to close."""
        try:
            self._call("alipay.trade.close", {"out_trade_no": out_trade_no})
        except GatewayTerminal as exc:
            if exc.code == "order_not_found":
                return
            if exc.provider_code != "ACQ.TRADE_STATUS_ERROR":
                raise
            state = self.query_order(out_trade_no).state
            if state == "closed":
                return
            if state in ("paid", "refunded"):
                raise GatewayTerminal("order_paid", f"trade {out_trade_no} was paid", exc.provider_code) from exc
            raise

    # --- refunds -----------------------------------------------------------------------------
    def refund(self, request: RefundRequest) -> RefundStatus:
        """Synchronous at Alipay: ``fund_change`` "Y" means done now. A repeated ``out_request_no``
        gets "N" (the money moved the first time), so "N" is confirmed with a refund query.
        Alipay's refund API takes no notify URL: its notice goes to the trade's notify_url."""
        biz = {
            "out_trade_no": request.out_trade_no,
            "out_request_no": request.out_refund_no,
            "refund_amount": fen_to_yuan(request.amount_fen),
            "refund_reason": request.reason,
        }
        payload = self._call("alipay.trade.refund", biz)
        if payload.get("fund_change") != "Y":
            return self.query_refund(request.out_refund_no, request.out_trade_no)
        return RefundStatus(
            out_refund_no=request.out_refund_no,
            state="succeeded",
            amount_fen=request.amount_fen,
            succeeded_at=_time(payload, "gmt_refund_pay"),
        )

    def query_refund(self, out_refund_no: str, out_trade_no: str) -> RefundStatus:
        """``refund_status`` REFUND_SUCCESS → succeeded; absent (not received, or failed) → processing."""
        biz = {"out_trade_no": out_trade_no, "out_request_no": out_refund_no, "query_options": ["gmt_refund_pay"]}
        payload = self._call("alipay.trade.fastpay.refund.query", biz)
        if payload.get("refund_status") != "REFUND_SUCCESS":
            return RefundStatus(out_refund_no=out_refund_no, state="processing", amount_fen=0)
        return RefundStatus(
            out_refund_no=out_refund_no,
            state="succeeded",
            amount_fen=_fen(payload, "refund_amount"),
            succeeded_at=_time(payload, "gmt_refund_pay"),
        )

    # --- notifications -----------------------------------------------------------------------
    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> PaymentNotification:
        """Verify and map one ``trade_status_sync`` form POST. ``notify_time`` is not checked: Alipay
        re-sends the original notice (same notify_id and notify_time) for 25 hours. A refund notice
        (``out_biz_no`` + ``refund_fee``) carries only the cumulative ``refund_fee``: the amount of
        *this* refund comes from a signed refund query (``refund_unconfirmed`` when that fails, so we
        answer ``fail`` and Alipay sends the notice again later)."""
        fields = _form_fields(body)
        signature = fields.get("sign", "")
        if not signature:
            raise NotificationRejected("missing_signature", "the notification carries no sign")
        if fields.get("sign_type", "RSA2") != "RSA2":
            raise NotificationRejected("bad_signature", f"unsupported sign_type {fields['sign_type']!r}")
        signed = {key: value for key, value in fields.items() if key not in ("sign", "sign_type") and value}
        if not self._verifies(lambda: self._sdk.verify(signed, signature)):
            raise NotificationRejected("bad_signature", "the notification signature does not verify")
        try:
            if fields.get("out_biz_no") and fields.get("refund_fee"):
                return self._refund_notification(fields)
            return _payment_notification(fields)
        except (KeyError, ValueError) as exc:
            raise NotificationRejected("malformed", f"notification field missing or invalid: {exc}") from exc

    def notification_ack(self, accepted: bool) -> NotificationAck:
        return NotificationAck(200, "text/plain; charset=utf-8", b"success" if accepted else b"fail")

    def _refund_notification(self, fields: dict[str, str]) -> PaymentNotification:
        out_trade_no, out_refund_no = fields["out_trade_no"], fields["out_biz_no"]
        try:
            status = self.query_refund(out_refund_no, out_trade_no)
        except GatewayError as exc:
            raise NotificationRejected("refund_unconfirmed", f"refund query failed: {exc}") from exc
        if status.state != "succeeded":
            raise NotificationRejected("refund_unconfirmed", f"Alipay does not confirm refund {out_refund_no}")
        return PaymentNotification(
            kind="refund",
            dedupe_key=fields["notify_id"],
            out_trade_no=out_trade_no,
            amount_fen=status.amount_fen,
            state="succeeded",
            out_refund_no=out_refund_no,
            occurred_at=_first_time(fields, "gmt_refund", "notify_time") or status.succeeded_at,
            **_common(fields),
        )

    # --- bill --------------------------------------------------------------------------------
    def download_bill(self, bill_date: date) -> list[BillRow]:
        """The trade bill (业务明细) of one day: a zip of GBK CSVs behind a short-lived URL."""
        biz = {"bill_type": "trade", "bill_date": bill_date.isoformat()}
        payload = self._call("alipay.data.dataservice.bill.downloadurl.query", biz)
        return parse_bill_zip(self._download(_text(payload, "bill_download_url")))

    def _download(self, url: str) -> bytes:
        """The link lives about 30 s: any failure is worth a fresh query later (retryable)."""
        response = self._request("GET", url)
        if response.status_code != 200:
            raise GatewayRetryable("bill_download_failed", f"the bill download answered HTTP {response.status_code}")
        return response.content

    # --- HTTP ----------------------------------------------------------------------------------
    def _call(self, method: str, biz: Mapping[str, Any], **params: str) -> dict[str, Any]:
        now = shanghai_text(datetime.now(tz=SHANGHAI))  # the SDK would use the host's local time
        data = self._sdk.build_body(method, dict(biz), timestamp=now, **params)
        form = self._sdk.sign_data(data).encode("ascii")
        response = self._request("POST", self.gateway_url, data=form, headers={"Content-Type": FORM_CONTENT_TYPE})
        if response.status_code >= 500:
            raise GatewayRetryable("upstream_error", f"Alipay answered HTTP {response.status_code}")
        if response.status_code != 200:
            raise GatewayTerminal("upstream_error", f"Alipay answered HTTP {response.status_code}")
        return self._verified(method, response.content.decode("utf-8", errors="replace"))

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self._http.request(method, url, timeout=self.timeout, **kwargs)
        except requests.Timeout as exc:
            raise GatewayRetryable("timeout", f"Alipay did not answer in time: {exc}") from exc
        except requests.RequestException as exc:
            raise GatewayRetryable("connection_error", f"could not reach Alipay: {exc}") from exc

    def _verified(self, method: str, text: str) -> dict[str, Any]:
        try:
            signed_text, payload, sign = signed_parts(method, text)
        except ValueError as exc:
            raise GatewayRetryable("bad_response", f"Alipay answered something unexpected: {exc}") from exc
        code = str(payload.get("code", ""))
        if sign is None and code not in UNSIGNED_ERROR_CODES:
            raise GatewayTerminal("bad_response_signature", "Alipay's answer is not signed", code)
        if sign is not None and not self._verifies(lambda: self._sdk._verify(signed_text, sign)):
            raise GatewayTerminal("bad_response_signature", "Alipay's answer is not signed with Alipay's key", code)
        if code != SUCCESS:
            raise error_for(method, payload)
        return payload

    @staticmethod
    def _verifies(check: Any) -> bool:
        try:
            return bool(check())
        except (ValueError, TypeError, binascii.Error):  # undecodable base64, wrong key size...
            return False


# --- helpers -----------------------------------------------------------------------------------
def _text(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value:
        raise GatewayTerminal("bad_response", f"Alipay's answer has no {key}")
    return value


def _fen(payload: Mapping[str, Any], key: str) -> int:
    try:
        return yuan_to_fen(payload.get(key))  # type: ignore[arg-type]
    except ValueError as exc:
        raise GatewayTerminal("bad_response", f"Alipay's {key} is not an amount: {exc}") from exc


def _time(payload: Mapping[str, Any], key: str) -> datetime | None:
    try:
        return parse_shanghai(payload.get(key))
    except (ValueError, AttributeError) as exc:
        raise GatewayTerminal("bad_response", f"Alipay's {key} is not a time: {exc}") from exc


def _form_fields(body: bytes) -> dict[str, str]:
    """The fields of a form body, percent-decoded with the notice's own ``charset`` (utf-8 default)."""
    try:
        text = body.decode("utf-8")
        probe = dict(parse_qsl(text, keep_blank_values=True, strict_parsing=True, encoding="latin-1"))
        charset = probe.get("charset") or "utf-8"
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, encoding=charset, errors="strict")
    except (UnicodeDecodeError, ValueError, LookupError) as exc:
        raise NotificationRejected("malformed", f"not a form body: {exc}") from exc
    fields = dict(pairs)
    if len(fields) != len(pairs) or not fields.get("notify_id") or not fields.get("out_trade_no"):
        raise NotificationRejected("malformed", "repeated fields, or no notify_id / out_trade_no")
    return fields


def _common(fields: Mapping[str, str]) -> dict[str, Any]:
    return {
        "provider_trade_no": fields.get("trade_no", ""),
        "appid": fields.get("app_id", ""),
        "mchid": fields.get("seller_id", ""),
        "raw": dict(fields),
    }


def _first_time(fields: Mapping[str, str], *keys: str) -> datetime | None:
    for key in keys:
        if fields.get(key):
            return parse_shanghai(fields[key])
    return None


def _payment_notification(fields: Mapping[str, str]) -> PaymentNotification:
    """TRADE_SUCCESS / TRADE_FINISHED → paid (amount = total_amount); TRADE_CLOSED of an unpaid
    trade (timed out) → closed, amount 0."""
    state = ORDER_STATES.get(fields["trade_status"], "unknown")
    time_key = {"paid": "gmt_payment", "closed": "gmt_close"}.get(state, "notify_time")
    return PaymentNotification(
        kind="payment",
        dedupe_key=fields["notify_id"],
        out_trade_no=fields["out_trade_no"],
        amount_fen=yuan_to_fen(fields["total_amount"]) if state == "paid" else 0,
        state=state,
        occurred_at=_first_time(fields, time_key, "notify_time"),
        **_common(fields),
    )
