"""WeChat Pay API v3 behind ``PaymentGateway`` (channel ``"wechat"``), for a mini-program.

Built on wechatpayv3 2.0.4 (sync) in **public-key mode**: the platform public key and its id
come from settings, so the client makes no call at start-up (STACK-NOTES §0 item 9). The SDK
has no gateway argument: ``_core._gate_way`` is set directly, and ``_core._update_certificates``
is disabled so an answer with an unknown ``Wechatpay-Serial`` is simply rejected instead of
triggering a ``/v3/certificates`` download. The SDK signs every request, verifies the platform
signature of every 2xx answer and passes ``timeout`` to ``requests``.

Notifications are verified here rather than with the SDK's ``callback()``, which answers None for
every kind of failure and checks neither the timestamp nor the serial: serial, RSA-SHA256
signature, a timestamp within ±5 minutes, then AEAD_AES_256_GCM with the APIv3 key.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import requests
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from wechatpayv3 import WeChatPay, WeChatPayType

from backend.gateways.errors import GatewayError, GatewayRetryable, GatewayTerminal
from payments.gateways.base import (
    BillRow,
    NotificationAck,
    NotificationRejected,
    OrderStatus,
    PaymentNotification,
    PrepayRequest,
    PrepayResult,
    RefundRequest,
    RefundStatus,
)
from payments.gateways.wechatpay_bill import parse_trade_bill, yuan_to_fen  # noqa: F401 - re-exported

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOTIFY_TOLERANCE_SECONDS = 300
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
TRADE_STATES = {
    "SUCCESS": "paid", "NOTPAY": "pending", "USERPAYING": "pending", "CLOSED": "closed", "REVOKED": "closed",
    "PAYERROR": "closed", "REFUND": "refunded",
}
REFUND_STATES = {"SUCCESS": "succeeded", "PROCESSING": "processing", "ABNORMAL": "failed", "CLOSED": "closed"}
REFUND_EVENTS = {"REFUND.SUCCESS": "succeeded", "REFUND.ABNORMAL": "failed", "REFUND.CLOSED": "closed"}
RETRYABLE_CODES = {"SYSTEM_ERROR", "SYSTEMERROR", "FREQUENCY_LIMITED", "BANKERROR", "STATEMENT_CREATING",
                   "NOT_ENOUGH"}  # NOT_ENOUGH: the merchant balance is short, try again later
NOT_FOUND_CODES = {"ORDER_NOT_EXIST", "ORDERNOTEXIST", "RESOURCE_NOT_EXISTS"}
# Provider codes whose lower-case form would not say what happened to the caller.
OUR_CODES = {
    "ORDERPAID": "order_paid",
    "FREQUENCY_LIMITED": "rate_limited",
    "STATEMENT_CREATING": "bill_not_ready",
}


class WeChatPayGateway:
    """``PaymentGateway`` for WeChat Pay v3 (JSAPI / mini-program payments of one merchant)."""

    channel = "wechat"

    def __init__(
        self, *, appid: str, mchid: str, merchant_private_key_pem: str, merchant_serial_no: str, apiv3_key: str,
        platform_public_key_pem: str, platform_public_key_id: str, api_base: str,
        timeout: float | tuple[float, float],
    ) -> None:
        self.appid, self.mchid = appid, mchid
        self.platform_public_key_id = platform_public_key_id
        self._apiv3_key = apiv3_key.encode()
        self._platform_key = _rsa_public_key(platform_public_key_pem)
        self._wxpay = WeChatPay(
            wechatpay_type=WeChatPayType.MINIPROG, mchid=mchid, private_key=_pkcs8_pem(merchant_private_key_pem),
            cert_serial_no=merchant_serial_no, appid=appid, apiv3_key=apiv3_key, timeout=timeout,
            public_key=_spki_pem(platform_public_key_pem), public_key_id=platform_public_key_id,
        )
        self._core = self._wxpay._core
        self._core._gate_way = api_base.rstrip("/")
        self._core._update_certificates = _no_certificate_download

    # --- orders ------------------------------------------------------------------------------------
    def prepay(self, request: PrepayRequest) -> PrepayResult:
        data = self._request(
            self._wxpay.pay, description=request.description, out_trade_no=request.out_trade_no,
            amount={"total": request.amount_fen, "currency": "CNY"}, payer={"openid": request.payer_id},
            time_expire=request.expires_at.astimezone(SHANGHAI).isoformat(timespec="seconds"),
            scene_info={"payer_client_ip": request.client_ip}, notify_url=request.notify_url,
        )
        prepay_id = data.get("prepay_id")
        if not isinstance(prepay_id, str) or not prepay_id:
            raise GatewayTerminal("malformed_response", "prepay answer without prepay_id")
        return PrepayResult(provider_ref=prepay_id, client_params=self.client_params(prepay_id))

    def resume_params(self, provider_ref: str) -> dict[str, str]:
        """Fresh wx.requestPayment parameters for an existing prepay_id (no new prepay)."""
        return self.client_params(provider_ref)

    def client_params(self, prepay_id: str) -> dict[str, str]:
        """What ``wx.requestPayment`` needs; paySign signs ``appid\\ntimeStamp\\nnonceStr\\npackage\\n``."""
        timestamp, nonce, package = str(int(time.time())), secrets.token_hex(16), f"prepay_id={prepay_id}"
        pay_sign = self._wxpay.sign([self.appid, timestamp, nonce, package])
        return {"timeStamp": timestamp, "nonceStr": nonce, "package": package, "signType": "RSA", "paySign": pay_sign}

    def query_order(self, out_trade_no: str) -> OrderStatus:
        data = self._request(self._wxpay.query, out_trade_no=out_trade_no, not_found="order_not_found")
        state = TRADE_STATES.get(data.get("trade_state", ""), "unknown")
        paid = state in ("paid", "refunded")
        return OrderStatus(
            out_trade_no=out_trade_no, state=state,  # type: ignore[arg-type]
            amount_fen=_paid_amount(data.get("amount")) if paid else 0,
            provider_trade_no=str(data.get("transaction_id") or ""),
            paid_at=_response_time(data.get("success_time")) if paid else None,
        )

    def close_order(self, out_trade_no: str) -> None:
        try:
            self._request(self._wxpay.close, out_trade_no, not_found="order_not_found")
        except GatewayTerminal as exc:
            if exc.code != "order_closed":  # already closed is what we wanted
                raise

    # --- refunds -----------------------------------------------------------------------------------
    def refund(self, request: RefundRequest) -> RefundStatus:
        data = self._request(
            self._wxpay.refund, out_refund_no=request.out_refund_no, out_trade_no=request.out_trade_no,
            amount={"refund": request.amount_fen, "total": request.total_fen, "currency": "CNY"},
            reason=request.reason or None, notify_url=request.notify_url or None, not_found="order_not_found",
        )
        return _refund_status(data)

    def query_refund(self, out_refund_no: str, out_trade_no: str) -> RefundStatus:
        data = self._request(self._wxpay.query_refund, out_refund_no, not_found="refund_not_found")
        if data.get("out_trade_no") != out_trade_no:
            raise GatewayTerminal("refund_order_mismatch", f"refund {out_refund_no} is not for {out_trade_no}")
        return _refund_status(data)

    # --- notifications -------------------------------------------------------------------------------
    def parse_notification(self, headers: Mapping[str, str], body: bytes) -> PaymentNotification:
        self._verify_notification(_wechatpay_headers(headers), body)
        try:
            envelope = json.loads(body)
        except ValueError:
            raise NotificationRejected("malformed", "the body is not JSON") from None
        if not isinstance(envelope, dict):
            raise NotificationRejected("malformed", "the body is not a JSON object")
        return _notification(envelope, self._decrypt(envelope))

    def notification_ack(self, accepted: bool) -> NotificationAck:
        status, reply = (200, ("SUCCESS", "成功")) if accepted else (400, ("FAIL", "失败"))
        reply = {"code": reply[0], "message": reply[1]}
        return NotificationAck(status, "application/json", json.dumps(reply, ensure_ascii=False).encode("utf-8"))

    def _verify_notification(self, fields: Mapping[str, str], body: bytes) -> None:
        timestamp, nonce, signature = (fields.get(name, "") for name in ("timestamp", "nonce", "signature"))
        if not (timestamp and nonce and signature) or fields.get("signature-type", SIGNATURE_TYPE) != SIGNATURE_TYPE:
            raise NotificationRejected("bad_signature", "missing or unsupported Wechatpay-* signature headers")
        if fields.get("serial") != self.platform_public_key_id:
            raise NotificationRejected("unknown_serial", f"Wechatpay-Serial {fields.get('serial')!r} is not ours")
        if not _rsa_verify(self._platform_key, f"{timestamp}\n{nonce}\n".encode() + body + b"\n", signature):
            raise NotificationRejected("bad_signature", "the platform signature does not verify")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > NOTIFY_TOLERANCE_SECONDS:
            raise NotificationRejected("stale_timestamp", f"Wechatpay-Timestamp {timestamp} is not within 5 minutes")

    def _decrypt(self, envelope: Mapping[str, Any]) -> dict[str, Any]:
        resource = envelope.get("resource")
        if (
            envelope.get("resource_type") != "encrypt-resource" or not isinstance(resource, dict)
            or resource.get("algorithm") != "AEAD_AES_256_GCM"
        ):
            raise NotificationRejected("malformed", "not an AEAD_AES_256_GCM encrypt-resource")
        try:
            plaintext = AESGCM(self._apiv3_key).decrypt(
                str(resource["nonce"]).encode(), base64.b64decode(resource["ciphertext"], validate=True),
                str(resource.get("associated_data") or "").encode(),
            )
        except (InvalidTag, ValueError, KeyError, TypeError):
            raise NotificationRejected("undecryptable", "the resource does not decrypt with our APIv3 key") from None
        try:
            data = json.loads(plaintext)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise NotificationRejected("malformed", "the decrypted resource is not a JSON object")
        return data

    # --- bills ---------------------------------------------------------------------------------------
    def download_bill(self, bill_date: date) -> list[BillRow]:
        path = f"/v3/bill/tradebill?bill_date={bill_date.isoformat()}&bill_type=ALL"
        try:
            info = self._request(self._core.request, path, not_found="bill_not_found")
        except GatewayTerminal as exc:
            if exc.provider_code == "NO_STATEMENT_EXIST":  # no trade that day
                return []
            raise
        return parse_trade_bill(self._download(info))

    def _download(self, info: Mapping[str, Any]) -> bytes:
        url = str(info.get("download_url") or "")
        if not url.startswith(self._core._gate_way + "/"):
            raise GatewayTerminal("bad_download_url", f"refusing to download the bill from {url!r}")
        if str(info.get("hash_type", "")).upper() != "SHA1":
            raise GatewayTerminal("malformed_response", f"unsupported bill hash_type {info.get('hash_type')!r}")
        status, content = self._send(self._wxpay.download_bill, url)
        if not 200 <= status < 300:
            raise _api_error(status, content, "bill_not_found")
        content = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        if hashlib.sha1(content, usedforsecurity=False).hexdigest() != str(info.get("hash_value", "")).lower():
            raise GatewayRetryable("bill_hash_mismatch", "the downloaded bill does not match its SHA1")
        return gzip.decompress(content) if content[:2] == b"\x1f\x8b" else content

    # --- calls ---------------------------------------------------------------------------------------
    def _request(self, method: Callable[..., Any], *args: Any, not_found: str = "not_found", **kwargs: Any) -> dict:
        status, body = self._send(method, *args, **kwargs)
        if not 200 <= status < 300:
            raise _api_error(status, body, not_found)
        if not body:
            return {}
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise GatewayTerminal("malformed_response", "the answer is not a JSON object")
        return data

    @staticmethod
    def _send(method: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[int, Any]:
        """Call the SDK; transport failures and its plain ``Exception``s become gateway errors."""
        try:
            return method(*args, **kwargs)
        except requests.Timeout as exc:
            raise GatewayRetryable("timeout", str(exc)) from exc
        except requests.RequestException as exc:
            raise GatewayRetryable("connection_error", str(exc)) from exc
        except Exception as exc:
            if type(exc) is not Exception:  # a bug of ours or the SDK's: let it surface
                raise
            text = str(exc)
            # "failed to verify the signature" / "does not support this algorithm: " (no signature headers)
            code = "bad_response_signature" if "signature" in text or "algorithm" in text else "invalid_request"
            raise GatewayTerminal(code, text) from exc


def _api_error(status: int, body: Any, not_found: str) -> GatewayError:
    """The gateway error for a non-2xx v3 answer ``{"code": "...", "message": "..."}``."""
    try:
        payload = json.loads(body) if body else {}
    except ValueError:
        payload = {}
    payload = payload if isinstance(payload, dict) else {}
    provider_code = payload.get("code") if isinstance(payload.get("code"), str) and payload.get("code") else None
    message = str(payload.get("message") or f"HTTP {status}")
    if provider_code in NOT_FOUND_CODES or (status == 404 and provider_code is None):
        return GatewayTerminal(not_found, message, provider_code)
    ours = OUR_CODES.get(provider_code or "") or (provider_code or "").lower()
    if status >= 500 or status == 429 or provider_code in RETRYABLE_CODES:
        default = "rate_limited" if status == 429 else "server_error"
        return GatewayRetryable(ours or default, message, provider_code)
    return GatewayTerminal(ours or f"http_{status}", message, provider_code)


def _refund_status(data: Mapping[str, Any]) -> RefundStatus:
    state = REFUND_STATES.get(data.get("status", ""))
    amount = data.get("amount")
    if state is None or not isinstance(amount, dict) or not isinstance(amount.get("refund"), int):
        raise GatewayTerminal("malformed_response", f"unexpected refund answer status {data.get('status')!r}")
    return RefundStatus(
        out_refund_no=str(data.get("out_refund_no") or ""), state=state,  # type: ignore[arg-type]
        amount_fen=amount["refund"], provider_refund_id=str(data.get("refund_id") or ""),
        succeeded_at=_response_time(data.get("success_time")) if state == "succeeded" else None,
    )


def _notification(envelope: Mapping[str, Any], resource: dict[str, Any]) -> PaymentNotification:
    event_id, event_type = envelope.get("id"), envelope.get("event_type")
    amount = resource.get("amount")
    if not isinstance(event_id, str) or not event_id or not isinstance(amount, dict):
        raise NotificationRejected("malformed", "notification without id or amount")
    common = {
        "dedupe_key": event_id, "out_trade_no": _text(resource, "out_trade_no", required=True),
        "provider_trade_no": _text(resource, "transaction_id"), "appid": _text(resource, "appid"),
        "mchid": _text(resource, "mchid"), "raw": resource,
    }
    if event_type == "TRANSACTION.SUCCESS":
        return PaymentNotification(kind="payment", amount_fen=_paid_amount(amount, NotificationRejected("malformed")),
                                   state="paid", occurred_at=_event_time(resource.get("success_time")), **common)
    if event_type in REFUND_EVENTS:
        refund = amount.get("refund")
        if isinstance(refund, bool) or not isinstance(refund, int):
            raise NotificationRejected("malformed", "refund notification without amount.refund")
        occurred = resource.get("success_time") or envelope.get("create_time")
        return PaymentNotification(
            kind="refund", amount_fen=refund, state=REFUND_EVENTS[event_type], occurred_at=_event_time(occurred),
            out_refund_no=_text(resource, "out_refund_no", required=True),
            provider_refund_id=_text(resource, "refund_id"), **common,
        )
    raise NotificationRejected("malformed", f"unexpected event_type {event_type!r}")


def _text(data: Mapping[str, Any], name: str, required: bool = False) -> str:
    value = data.get(name, "")
    if not isinstance(value, str) or (required and not value):
        raise NotificationRejected("malformed", f"bad or missing {name}")
    return value


def _paid_amount(amount: Any, error: Exception | None = None) -> int:
    """``amount.total``: the order amount our intent asked for (a coupon lowers only ``payer_total``)."""
    amount = amount if isinstance(amount, dict) else {}
    value = amount.get("total", amount.get("payer_total"))
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise error or GatewayTerminal("malformed_response", "answer without a valid amount")
    return value


def _response_time(value: Any) -> datetime | None:
    return _rfc3339(value, GatewayTerminal("malformed_response", f"bad time {value!r}"))


def _event_time(value: Any) -> datetime | None:
    return _rfc3339(value, NotificationRejected("malformed", f"bad time {value!r}"))


def _rfc3339(value: Any, error: Exception) -> datetime | None:
    """``2026-01-05T10:20:30+08:00`` → aware datetime; raises ``error`` for anything else."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        raise error from None
    if parsed.tzinfo is None:
        raise error
    return parsed


# --- keys ---------------------------------------------------------------------------------------
def _no_certificate_download() -> None:
    """Public-key mode: an unknown serial means a bad answer, not a reason to fetch certificates."""


def _armored(pem: str, label: str) -> bytes:
    pem = pem.strip()
    return (pem if pem.startswith("-----BEGIN") else f"-----BEGIN {label}-----\n{pem}\n-----END {label}-----").encode()


def _pkcs8_pem(pem: str) -> str:
    """The SDK wants PKCS#8 ``BEGIN PRIVATE KEY``; accept PKCS#1 too."""
    key = serialization.load_pem_private_key(_armored(pem, "PRIVATE KEY"), password=None)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _rsa_public_key(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(_armored(pem, "PUBLIC KEY"))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the WeChat Pay platform public key must be an RSA key")
    return key


def _spki_pem(pem: str) -> str:
    return _rsa_public_key(pem).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _rsa_verify(key: rsa.RSAPublicKey, message: bytes, signature: str) -> bool:
    try:
        key.verify(base64.b64decode(signature, validate=True), message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def _wechatpay_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``Wechatpay-*`` headers by lower-case suffix, from raw headers or Django's ``META``."""
    found = {}
    for name, value in headers.items():
        key = name.lower()
        if key.startswith("http_"):
            key = key[5:].replace("_", "-")
        if key.startswith("wechatpay-"):
            found[key[len("wechatpay-"):]] = str(value)
    return found
