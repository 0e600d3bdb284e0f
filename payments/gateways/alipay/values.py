"""Alipay's amounts and times: yuan strings with two decimals, and Asia/Shanghai wall-clock times.

Conversions use integer arithmetic only (no float, no Decimal).
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_YUAN = re.compile(r"(-?)([0-9]{1,13})(?:\.([0-9]{1,2}))?")  # ASCII digits only


def fen_to_yuan(fen: int) -> str:
    """``8800`` → ``"88.00"``; ``1`` → ``"0.01"``; ``-2000`` → ``"-20.00"``."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"fen must be an int, not {type(fen).__name__}")
    whole, cents = divmod(abs(fen), 100)
    return f"{'-' if fen < 0 else ''}{whole}.{cents:02d}"


def yuan_to_fen(text: str) -> int:
    """``"88.00"`` / ``"88.5"`` / ``"-20.00"`` → integer fen; ValueError for anything else."""
    match = _YUAN.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not a yuan amount: {text!r}")
    sign, whole, cents = match.groups()
    fen = int(whole) * 100 + int((cents or "").ljust(2, "0"))
    return -fen if sign else fen


def shanghai_text(moment: datetime) -> str:
    """An aware datetime as Alipay writes times: ``yyyy-MM-dd HH:mm:ss`` in Asia/Shanghai."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime cannot be sent to Alipay")
    return moment.astimezone(SHANGHAI).strftime(TIME_FORMAT)


def parse_shanghai(text: str | None) -> datetime | None:
    """Alipay's time (optionally with milliseconds, as ``gmt_refund`` has) → aware datetime."""
    if not text or not text.strip():
        return None
    for pattern in (TIME_FORMAT, TIME_FORMAT + ".%f"):
        try:
            return datetime.strptime(text.strip(), pattern).replace(tzinfo=SHANGHAI)
        except ValueError:
            continue
    raise ValueError(f"not an Alipay time: {text!r}")
