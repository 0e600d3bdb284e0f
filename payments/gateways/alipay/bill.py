"""Alipay's daily trade bill (业务明细), as served behind ``bill_download_url``.

The download is a zip holding two GBK-encoded CSVs whose names are GBK too (no UTF-8 flag):
``<pid>0156_<yyyyMMdd>_业务明细.csv`` and ``..._业务明细(汇总).csv``. The detail file starts with
``#`` comment lines (title, account, date range, a ``#---业务明细列表---`` marker), then the header
row (支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,...,订单金额（元）,商家实收（元）,...,
退款批次号/请求号,服务费（元）,分润（元）,备注), the rows (ids padded with a tab so spreadsheets keep
them as text), then ``#`` lines again (end marker, totals, export time).
"""

from __future__ import annotations

import csv
import io
import logging
import zipfile
from collections.abc import Mapping

from backend.gateways.errors import GatewayTerminal
from payments.gateways.alipay.values import parse_shanghai, yuan_to_fen
from payments.gateways.base import BillRow

logger = logging.getLogger(__name__)

TRADE_NO, OUT_TRADE_NO, KIND = "支付宝交易号", "商户订单号", "业务类型"
FINISHED_AT, ORDER_AMOUNT, RECEIVED = "完成时间", "订单金额（元）", "商家实收（元）"
REFUND_REQUEST_NO = "退款批次号/请求号"
COLUMNS = (TRADE_NO, OUT_TRADE_NO, KIND, FINISHED_AT, ORDER_AMOUNT, RECEIVED, REFUND_REQUEST_NO)
UTF8_NAME_FLAG = 0x800


def parse_bill_zip(content: bytes) -> list[BillRow]:
    """Rows of the 业务明细 CSV. A payment (交易) is its 订单金额; a refund (退款) row carries a
    negative 商家实收, reported as a positive refunded amount with its 退款批次号/请求号."""
    try:
        return parse_bill_csv(_detail_csv(content))
    except (zipfile.BadZipFile, UnicodeDecodeError, ValueError, KeyError, IndexError, StopIteration, csv.Error) as exc:
        raise GatewayTerminal("bad_bill", f"Alipay's bill cannot be read: {exc!r}") from exc


def parse_bill_csv(text: str) -> list[BillRow]:
    """The rows of an already decoded 业务明细 CSV (``#`` lines skipped, cells stripped of padding)."""
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    records = csv.reader(lines)
    header = [_column_name(name) for name in next(records)]
    index = {name: header.index(name) for name in COLUMNS}
    rows = []
    for record in records:
        row = _bill_row({name: record[position].strip() for name, position in index.items()})
        if row is not None:
            rows.append(row)
    return rows


def zip_member_name(info: zipfile.ZipInfo) -> str:
    """The real name of a zip member: without the UTF-8 flag Python decoded GBK bytes as cp437."""
    if info.flag_bits & UTF8_NAME_FLAG:
        return info.filename
    return info.filename.encode("cp437").decode("gbk", "replace")


def _detail_csv(content: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        for info in archive.infolist():
            name = zip_member_name(info)
            if name.lower().endswith(".csv") and "汇总" not in name:
                text = archive.read(info).decode("gbk")
                if TRADE_NO in text:
                    return text
    raise ValueError("no 业务明细 CSV in the bill zip")


def _column_name(name: str) -> str:
    return name.strip().replace("(", "（").replace(")", "）")


def _bill_row(cells: Mapping[str, str]) -> BillRow | None:
    common = {
        "out_trade_no": cells[OUT_TRADE_NO],
        "provider_trade_no": cells[TRADE_NO],
        "occurred_at": parse_shanghai(cells[FINISHED_AT]),
    }
    if cells[KIND] == "交易":
        return BillRow(kind="payment", amount_fen=yuan_to_fen(cells[ORDER_AMOUNT]), **common)
    if cells[KIND] == "退款":
        refunded = abs(yuan_to_fen(cells[RECEIVED]))
        return BillRow(kind="refund", amount_fen=refunded, out_refund_no=cells[REFUND_REQUEST_NO], **common)
    logger.warning("Alipay bill row of unknown type %r skipped (trade %s)", cells[KIND], cells[TRADE_NO])
    return None
