"""Alipay's answers: find the signed response object, and map its codes to our two error kinds.

An answer is ``{"alipay_trade_xxx_response": {...}, "sign": "..."}`` (or ``"error_response"``), the
signature covering the exact JSON text of the response object. The text is located with a JSON
scanner (``json.JSONDecoder.raw_decode``), not by counting braces as python-alipay-sdk's
``_get_string_to_be_signed`` does: that one stops early when a string value holds a ``}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from backend.gateways.errors import GatewayError, GatewayRetryable, GatewayTerminal

SUCCESS = "10000"
UNSIGNED_ERROR_CODES = frozenset({"40001", "40002"})  # protocol errors: no trade state in them
SIGN_SUB_CODES = frozenset({"isv.invalid-signature", "isv.invalid-signature-type"})

RETRYABLE_SUB_CODES: Mapping[str, str] = {
    "ACQ.SYSTEM_ERROR": "upstream_busy",
    "isp.unknow-error": "upstream_unavailable",
    "ACQ.SELLER_BALANCE_NOT_ENOUGH": "seller_balance_insufficient",
    "isp.bill_not_exist": "bill_not_ready",  # bills appear the next morning
}
TERMINAL_SUB_CODES: Mapping[str, str] = {
    "ACQ.TRADE_NOT_EXIST": "order_not_found",
    "ACQ.TRADE_HAS_SUCCESS": "order_paid",
    "ACQ.TRADE_HAS_CLOSE": "order_closed",
    "ACQ.TRADE_HAS_FINISHED": "order_finished",
    "ACQ.CONTEXT_INCONSISTENT": "order_conflict",
    "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL": "refund_amount_invalid",
    "ACQ.REFUND_FEE_ERROR": "refund_amount_invalid",
    "ACQ.INVALID_PARAMETER": "invalid_request",
}
METHOD_SUB_CODES: Mapping[str, Mapping[str, str]] = {
    "alipay.trade.close": {"ACQ.TRADE_STATUS_ERROR": "order_paid"},  # or already closed: see close_order
    "alipay.trade.refund": {"ACQ.TRADE_STATUS_ERROR": "order_not_paid"},
}
REFUND_AMOUNT_SUB_CODE = re.compile(r"ACQ\.REFUND_(AMT|AMOUNT|FEE)_")
_BLANK = re.compile(r"\s*")


def response_key(method: str) -> str:
    """``alipay.trade.query`` → ``alipay_trade_query_response``."""
    return method.replace(".", "_") + "_response"


def signed_parts(method: str, text: str) -> tuple[str, dict[str, Any], str | None]:
    """(exact text of the response object, that object, the ``sign`` or None); ValueError if the
    answer is not such a JSON object."""
    spans = top_level_spans(text)
    span = spans.get(response_key(method)) or spans.get("error_response")
    if span is None:
        raise ValueError(f"no {response_key(method)} in the answer")
    signed_text = text[span[0] : span[1]]
    payload = json.loads(signed_text)
    sign = json.loads(text[spans["sign"][0] : spans["sign"][1]]) if "sign" in spans else None
    if not isinstance(payload, dict) or not isinstance(sign, str | None):
        raise ValueError("the response object or its sign has the wrong type")
    return signed_text, payload, sign


def top_level_spans(text: str) -> dict[str, tuple[int, int]]:
    """For a JSON object's text, where each top-level value starts and ends (ValueError if not one)."""
    decoder, spans = json.JSONDecoder(), {}
    try:
        position = _skip(text, 0)
        if text[position] != "{":
            raise ValueError("not a JSON object")
        position = _skip(text, position + 1)
        while text[position] != "}":
            key, position = decoder.raw_decode(text, position)
            position = _skip(text, position)
            if text[position] != ":":
                raise ValueError(f"':' expected at {position}")
            start = _skip(text, position + 1)
            _, end = decoder.raw_decode(text, start)
            spans[str(key)] = (start, end)
            position = _skip(text, end)
            if text[position] == ",":
                position = _skip(text, position + 1)
            elif text[position] != "}":
                raise ValueError(f"',' or '}}' expected at {position}")
    except IndexError as exc:
        raise ValueError("truncated JSON") from exc
    return spans


def _skip(text: str, position: int) -> int:
    return _BLANK.match(text, position).end()  # type: ignore[union-attr]  # \s* always matches


def error_for(method: str, payload: Mapping[str, Any]) -> GatewayError:
    """Our error for a non-10000 answer; ``provider_code`` is Alipay's sub_code (else its code)."""
    code, sub_code = str(payload.get("code", "")), str(payload.get("sub_code") or "")
    message = f"{payload.get('msg', '')}: {payload.get('sub_msg', '')}".strip(": ")
    provider_code = sub_code or code
    normalized = sub_code.removeprefix("aop.")
    if code == "20000" or normalized in RETRYABLE_SUB_CODES:
        return GatewayRetryable(RETRYABLE_SUB_CODES.get(normalized, "upstream_unavailable"), message, provider_code)
    return GatewayTerminal(_terminal_code(method, code, sub_code, normalized), message, provider_code)


def _terminal_code(method: str, code: str, sub_code: str, normalized: str) -> str:
    if code == "40002":
        return "sign_error" if sub_code in SIGN_SUB_CODES else "invalid_request"
    if code == "40001":
        return "invalid_request"
    if code in ("20001", "40006"):
        return "unauthorized"
    ours = METHOD_SUB_CODES.get(method, {}).get(normalized) or TERMINAL_SUB_CODES.get(normalized)
    if ours is None and REFUND_AMOUNT_SUB_CODE.match(normalized):
        ours = "refund_amount_invalid"
    return ours or "upstream_error"
