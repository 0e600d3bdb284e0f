"""AlipayGateway.parse_notification on the sandbox's real notices (and hand-made ones)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from urllib.parse import parse_qsl, urlencode

import pytest

from payments.gateways.alipay import SHANGHAI, AlipayGateway
from payments.gateways.alipay_sandbox import GATEWAY_PATH, AlipaySandbox
from payments.gateways.alipay_sandbox import keys as alipay_keys
from payments.gateways.base import NotificationAck, NotificationRejected, PrepayRequest, RefundRequest
from tests.payments.gateways.alipay_fixtures import ALIPAY_APPID, ALIPAY_SELLER_ID

MakePrepay = Callable[..., PrepayRequest]
HEADERS = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


def fields_of(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode("ascii"), keep_blank_values=True))


def rejected(gateway: AlipayGateway, body: bytes) -> str:
    with pytest.raises(NotificationRejected) as caught:
        gateway.parse_notification(HEADERS, body)
    return caught.value.reason


@pytest.fixture
def paid(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, alipay_prepay_request: MakePrepay
) -> Callable[[str, int], bytes]:
    """``paid(out_trade_no, fen)`` → the payment notice body the sandbox is about to send."""

    def pay(out_trade_no: str, fen: int) -> bytes:
        alipay_gateway.prepay(alipay_prepay_request(out_trade_no, fen))
        alipay_sandbox.pay(out_trade_no)
        return alipay_sandbox.outbox()[-1]["body"]

    return pay


def refund(gateway: AlipayGateway, sandbox: AlipaySandbox, out_trade_no: str, no: str, fen: int) -> bytes:
    gateway.refund(RefundRequest(out_trade_no, no, fen, 8800, "复诊取消", ""))
    return sandbox.outbox()[-1]["body"]


def test_a_payment_notice_verifies_and_maps(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, paid: Callable[[str, int], bytes]
) -> None:
    body = paid("QH-N-1001", 123456)
    fields = fields_of(body)
    notice = alipay_gateway.parse_notification(HEADERS, body)
    trade = alipay_sandbox.order("QH-N-1001")
    assert (notice.kind, notice.state, notice.amount_fen) == ("payment", "paid", 123456)
    assert notice.out_trade_no == "QH-N-1001"
    assert (notice.dedupe_key, notice.provider_trade_no) == (fields["notify_id"], trade["trade_no"])
    assert (notice.appid, notice.mchid, notice.out_refund_no) == (ALIPAY_APPID, ALIPAY_SELLER_ID, "")
    assert notice.occurred_at == datetime.fromtimestamp(int(trade["paid_at"]), SHANGHAI)
    assert notice.raw == fields and fields["notify_type"] == "trade_status_sync"


def test_an_old_notice_is_still_accepted(alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox,
                                         paid: Callable[[str, int], bytes]) -> None:
    """Alipay re-sends the original notice (same notify_time) for 25 hours."""
    fields = fields_of(paid("QH-N-1002", 8800))
    fields.pop("sign")
    fields["notify_time"] = "2020-01-01 08:00:00"
    assert alipay_gateway.parse_notification(HEADERS, alipay_sandbox.signed_form(fields)).state == "paid"


def test_a_notice_signed_with_another_key_is_rejected(
    alipay_gateway: AlipayGateway, paid: Callable[[str, int], bytes]
) -> None:
    fields = fields_of(paid("QH-N-1003", 8800))
    forger = alipay_keys.new_key()
    fields["sign"] = alipay_keys.sign(forger, alipay_keys.sign_content(fields, exclude=("sign", "sign_type")))
    assert rejected(alipay_gateway, urlencode(fields).encode()) == "bad_signature"


def test_a_tampered_amount_fails_the_signature(
    alipay_gateway: AlipayGateway, paid: Callable[[str, int], bytes]
) -> None:
    body = paid("QH-N-1004", 8800)
    assert b"total_amount=88.00" in body
    assert rejected(alipay_gateway, body.replace(b"total_amount=88.00", b"total_amount=0.01")) == "bad_signature"


@pytest.mark.parametrize("mangle", ["drop", "empty"])
def test_a_notice_without_sign_is_rejected(
    alipay_gateway: AlipayGateway, paid: Callable[[str, int], bytes], mangle: str
) -> None:
    fields = fields_of(paid("QH-N-1005", 8800))
    if mangle == "drop":
        del fields["sign"]
    else:
        fields["sign"] = ""
    assert rejected(alipay_gateway, urlencode(fields).encode()) == "missing_signature"


def test_a_notice_with_another_sign_type_is_rejected(
    alipay_gateway: AlipayGateway, paid: Callable[[str, int], bytes]
) -> None:
    fields = fields_of(paid("QH-N-1006", 8800))
    fields["sign_type"] = "RSA"
    assert rejected(alipay_gateway, urlencode(fields).encode()) == "bad_signature"


@pytest.mark.parametrize(
    "body", [b"", b"\xff\xfe\x00", b"just some text", b"notify_id=1&notify_id=2&out_trade_no=A&sign=x",
             b"out_trade_no=A&sign=x", b"notify_id=%E4%B8&out_trade_no=A&sign=x"],
)
def test_unparseable_bodies_are_malformed(alipay_gateway: AlipayGateway, body: bytes) -> None:
    assert rejected(alipay_gateway, body) == "malformed"


def test_a_signed_notice_with_a_garbled_amount_is_malformed(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, paid: Callable[[str, int], bytes]
) -> None:
    fields = fields_of(paid("QH-N-1007", 8800))
    del fields["sign"]
    fields["total_amount"] = "88,00"
    assert rejected(alipay_gateway, alipay_sandbox.signed_form(fields)) == "malformed"


def test_refund_notices_carry_the_amount_of_their_own_refund(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, paid: Callable[[str, int], bytes]
) -> None:
    paid("QH-N-1101", 8800)
    bodies = [refund(alipay_gateway, alipay_sandbox, "QH-N-1101", no, fen)
              for no, fen in (("QH-NR-1", 2000), ("QH-NR-2", 3000), ("QH-NR-3", 3800))]
    notices = [alipay_gateway.parse_notification(HEADERS, body) for body in bodies]
    assert [(n.kind, n.state, n.out_refund_no, n.amount_fen) for n in notices] == [
        ("refund", "succeeded", "QH-NR-1", 2000), ("refund", "succeeded", "QH-NR-2", 3000),
        ("refund", "succeeded", "QH-NR-3", 3800)]
    # What Alipay itself sends: the cumulative refund_fee; the last refund closes the trade.
    assert [(n.raw["refund_fee"], n.raw["trade_status"]) for n in notices] == [
        ("20.00", "TRADE_SUCCESS"), ("50.00", "TRADE_SUCCESS"), ("88.00", "TRADE_CLOSED")]
    assert all(n.occurred_at is not None and n.occurred_at.tzinfo is SHANGHAI for n in notices)
    assert len({n.dedupe_key for n in notices}) == 3


def test_a_refund_notice_alipay_does_not_confirm_is_rejected(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, paid: Callable[[str, int], bytes]
) -> None:
    fields = fields_of(paid("QH-N-1102", 8800))
    del fields["sign"]
    fields.update(out_biz_no="QH-NR-NEVER", refund_fee="10.00", gmt_refund="2026-01-05 10:00:00.000")
    assert rejected(alipay_gateway, alipay_sandbox.signed_form(fields)) == "refund_unconfirmed"


def test_a_refund_notice_is_rejected_while_the_refund_query_fails(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, paid: Callable[[str, int], bytes]
) -> None:
    paid("QH-N-1103", 8800)
    body = refund(alipay_gateway, alipay_sandbox, "QH-N-1103", "QH-NR-4", 800)
    alipay_sandbox.fail_next(GATEWAY_PATH, "http500")
    assert rejected(alipay_gateway, body) == "refund_unconfirmed"
    assert alipay_gateway.parse_notification(HEADERS, body).amount_fen == 800  # Alipay's retry goes through


def test_a_timed_out_trade_notifies_closed(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, alipay_prepay_request: MakePrepay
) -> None:
    request = alipay_prepay_request("QH-N-1201", 8800)
    alipay_gateway.prepay(request)
    alipay_sandbox.advance_clock(31 * 60)
    alipay_sandbox.deliver_due()  # closes expired trades (the notice itself goes nowhere: nothing listens)
    (entry,) = alipay_sandbox.outbox()
    notice = alipay_gateway.parse_notification(HEADERS, entry["body"])
    assert (entry["kind"], notice.kind, notice.state, notice.amount_fen) == ("close", "payment", "closed", 0)
    assert notice.occurred_at == request.expires_at.replace(microsecond=0)


def test_acks_are_alipays_plain_words(alipay_gateway: AlipayGateway) -> None:
    assert alipay_gateway.notification_ack(True) == NotificationAck(200, "text/plain; charset=utf-8", b"success")
    assert alipay_gateway.notification_ack(False) == NotificationAck(200, "text/plain; charset=utf-8", b"fail")
