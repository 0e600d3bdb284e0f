"""The daily trade bill (业务明细) zip, shaped like Alipay's.

The zip holds ``<pid>0156_<yyyyMMdd>_业务明细.csv`` and ``<pid>0156_<yyyyMMdd>_业务明细(汇总).csv``,
content and member names in GBK (no UTF-8 flag). The detail CSV: ``#`` header lines, the 25
columns, one 交易 row per payment completed that day (订单金额 = 商家实收 = the amount) and one
退款 row per refund made that day (订单金额 = the trade's amount, 商家实收 negative, 退款批次号/请求号 =
out_request_no), ids padded with a tab, a 0.6 % 服务费, then ``#`` end marker, totals, export time.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable
from datetime import date, datetime

from payments.gateways.alipay_sandbox.trades import SHANGHAI, Refund, Trade, fmt_time, masked, yuan

COLUMNS = (
    "支付宝交易号", "商户订单号", "业务类型", "商品名称", "创建时间", "完成时间", "门店编号", "门店名称", "操作员",
    "终端号", "对方账户", "订单金额（元）", "商家实收（元）", "支付宝红包（元）", "集分宝（元）", "支付宝优惠（元）",
    "商家优惠（元）", "券核销金额（元）", "券名称", "商家红包消费金额（元）", "卡消费金额（元）", "退款批次号/请求号",
    "服务费（元）", "分润（元）", "备注",
)
SUMMARY_COLUMNS = ("门店编号", "门店名称", "交易订单总笔数", "退款订单总笔数", "订单金额（元）", "商家实收（元）",
                   "服务费（元）", "分润（元）", "实收净额（元）")
DETAIL_START = "#-----------------------------------------业务明细列表----------------------------------------"
DETAIL_END = "#-----------------------------------------业务明细列表结束------------------------------------"
SUMMARY_START = "#-----------------------------------------业务汇总列表----------------------------------------"
SUMMARY_END = "#----------------------------------------业务汇总列表结束-----------------------------------"
ZERO = "0.00"


class _GbkName(zipfile.ZipInfo):
    """A member whose name is stored in GBK without the UTF-8 flag, as Alipay's zips are."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # overrides zipfile's private hook
        return self.filename.encode("gbk"), self.flag_bits


def bill_zip(seller_id: str, bill_date: date, trades: Iterable[Trade], exported_at: float) -> tuple[str, bytes]:
    """(zip file name, zip bytes) for ``bill_date`` (a day in Asia/Shanghai)."""
    account, day = f"{seller_id}0156", bill_date.strftime("%Y%m%d")
    rows = _rows(list(trades), bill_date)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for suffix, text in (("业务明细", _detail(account, bill_date, rows, exported_at)),
                             ("业务明细(汇总)", _summary(account, bill_date, rows, exported_at))):
            member = _GbkName(f"{account}_{day}_{suffix}.csv", date_time=_zip_time(exported_at))
            member.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(member, text.encode("gbk", errors="replace"))
    return f"{account}_{day}.csv.zip", buffer.getvalue()


def _fee(fen: int) -> int:
    """0.6 %, rounded half up, in fen."""
    return (fen * 6 + 500) // 1000


def _rows(trades: list[Trade], bill_date: date) -> list[tuple[float, list[str]]]:
    rows = [(t.paid_at, _payment_row(t)) for t in trades if t.paid_at is not None and _day(t.paid_at) == bill_date]
    rows += [(r.at, _refund_row(t, r)) for t in trades for r in t.refunds.values() if _day(r.at) == bill_date]
    return sorted(rows, key=lambda row: (row[0], row[1][0]))


def _day(at: float) -> date:
    return datetime.fromtimestamp(at, SHANGHAI).date()


def _payment_row(trade: Trade) -> list[str]:
    amount = yuan(trade.paid_fen)
    return _row(trade, "交易", trade.paid_at or 0.0, amount, amount, "", yuan(-_fee(trade.paid_fen)))


def _refund_row(trade: Trade, refund: Refund) -> list[str]:
    return _row(trade, "退款", refund.at, yuan(trade.paid_fen), yuan(-refund.amount_fen),
                refund.out_request_no + "\t", yuan(_fee(refund.amount_fen)))


def _row(trade: Trade, kind: str, at: float, ordered: str, received: str, request_no: str, fee: str) -> list[str]:
    return [
        trade.trade_no + "\t", trade.out_trade_no + "\t", kind, trade.subject, fmt_time(trade.created_at),
        fmt_time(at), "", "", "", "", masked(trade.buyer), ordered, received, ZERO, ZERO, ZERO, ZERO, ZERO, "",
        ZERO, ZERO, request_no, fee, ZERO, "",
    ]


def _head(title: str, account: str, bill_date: date) -> list[str]:
    start = bill_date.strftime("%Y年%m月%d日")
    end = date.fromordinal(bill_date.toordinal() + 1).strftime("%Y年%m月%d日")
    return [f"#{title}", f"#账号：[{account}]", f"#起始日期：[{start} 00:00:00]   终止日期：[{end} 00:00:00]"]


def _csv_lines(records: Iterable[Iterable[str]]) -> list[str]:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(records)
    return out.getvalue().splitlines()


def _sum(rows: list[tuple[float, list[str]]], kind: str, column: str) -> tuple[int, int]:
    """(count, total fen) of one column over the rows of one kind."""
    index = COLUMNS.index(column)
    picked = [row for _, row in rows if row[2] == kind]
    total = sum(int(row[index].replace(".", "")) for row in picked)
    return len(picked), total


def _detail(account: str, bill_date: date, rows: list[tuple[float, list[str]]], exported_at: float) -> str:
    paid_count, paid = _sum(rows, "交易", "商家实收（元）")
    refund_count, refunded = _sum(rows, "退款", "商家实收（元）")
    lines = [*_head("支付宝业务明细查询", account, bill_date), DETAIL_START,
             *_csv_lines([COLUMNS, *(row for _, row in rows)]), DETAIL_END,
             f"#交易合计：{paid_count}笔，商家实收共{yuan(paid)}元，商家优惠共0.00元",
             f"#退款合计：{refund_count}笔，商家实收退款共{yuan(refunded)}元，商家优惠退款共0.00元",
             f"#导出时间：[{_export_time(exported_at)}]"]
    return "\r\n".join(lines) + "\r\n"


def _summary(account: str, bill_date: date, rows: list[tuple[float, list[str]]], exported_at: float) -> str:
    paid_count, paid = _sum(rows, "交易", "商家实收（元）")
    refund_count, refunded = _sum(rows, "退款", "商家实收（元）")
    _, ordered = _sum(rows, "交易", "订单金额（元）")
    fees = _sum(rows, "交易", "服务费（元）")[1] + _sum(rows, "退款", "服务费（元）")[1]
    total = ["", "合计", str(paid_count), str(refund_count), yuan(ordered), yuan(paid + refunded), yuan(fees),
             ZERO, yuan(paid + refunded + fees)]
    lines = [*_head("支付宝业务汇总查询", account, bill_date), SUMMARY_START,
             *_csv_lines([SUMMARY_COLUMNS, total]), SUMMARY_END, f"#导出时间：[{_export_time(exported_at)}]"]
    return "\r\n".join(lines) + "\r\n"


def _export_time(at: float) -> str:
    return datetime.fromtimestamp(at, SHANGHAI).strftime("%Y年%m月%d日 %H:%M:%S")


def _zip_time(at: float) -> tuple[int, int, int, int, int, int]:
    moment = datetime.fromtimestamp(at, SHANGHAI)
    return (max(moment.year, 1980), moment.month, moment.day, moment.hour, moment.minute, moment.second)
