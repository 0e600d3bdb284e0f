"""WeChat Pay's daily trade bill (交易账单): parsing to integer fen, exactly."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from backend.gateways.errors import GatewayTerminal
from payments.gateways.base import BillRow

SHANGHAI = ZoneInfo("Asia/Shanghai")
_YUAN = re.compile(r"(\d+)(?:\.(\d{1,2}))?")


def parse_trade_bill(content: bytes) -> list[BillRow]:
    """WeChat's trade bill CSV → rows: SUCCESS lines as payments (应结订单金额), REFUND lines whose
    退款状态 is SUCCESS as refunds (退款金额). Values carry a leading backtick; the two summary
    lines (总交易单数, ...) end the data."""
    try:
        lines = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise GatewayTerminal("bad_bill", f"unreadable bill: {exc}") from exc
    if not lines:
        return []
    columns = {name.strip(): index for index, name in enumerate(lines[0])}
    rows = []
    for line in lines[1:]:
        if line and _untick(line[0]) == "总交易单数":
            break
        if any(cell.strip() for cell in line):
            row = _bill_row({name: _untick(line[i]) if i < len(line) else "" for name, i in columns.items()})
            if row is not None:
                rows.append(row)
    return rows


def _untick(cell: str) -> str:
    cell = cell.strip()
    return cell[1:] if cell.startswith("`") else cell


def _bill_row(values: Mapping[str, str]) -> BillRow | None:
    try:
        status = values["交易状态"]
        when = datetime.strptime(values["交易时间"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=SHANGHAI)
        common = {"out_trade_no": values["商户订单号"], "provider_trade_no": values["微信订单号"], "occurred_at": when}
        if status == "SUCCESS":
            return BillRow(kind="payment", amount_fen=yuan_to_fen(values["应结订单金额"]), **common)
        if status == "REFUND" and values.get("退款状态", "SUCCESS") == "SUCCESS":
            return BillRow(kind="refund", amount_fen=yuan_to_fen(values["退款金额"]),
                           out_refund_no=values["商户退款单号"], **common)
    except (KeyError, ValueError) as exc:
        raise GatewayTerminal("bad_bill", f"unexpected bill line: {exc}") from exc
    return None


def yuan_to_fen(text: str) -> int:
    """``"1234.56"`` → ``123456``, exactly (no floats); ValueError for anything else."""
    match = _YUAN.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an amount in yuan: {text!r}")
    return int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))
