"""The sandbox delivers notices to a local receiver (our endpoint: gateway.parse_notification + ack)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from backend.gateways.loopback import SandboxControl
from payments.gateways.alipay import AlipayGateway
from payments.gateways.alipay_sandbox import MAX_ATTEMPTS, AlipaySandbox
from payments.gateways.base import NotificationRejected, PaymentNotification, PrepayRequest, RefundRequest
from tests.payments.gateways.alipay_fixtures import AlipayReceiver

MakePrepay = Callable[..., PrepayRequest]


@pytest.fixture
def pay(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, alipay_prepay_request: MakePrepay,
    alipay_receiver: AlipayReceiver,
) -> Callable[..., str]:
    """``pay(out_trade_no, fen=8800)``: create the trade (notify_url = the receiver) and pay it."""

    def make(out_trade_no: str, fen: int = 8800) -> str:
        alipay_gateway.prepay(alipay_prepay_request(out_trade_no, fen, notify_url=alipay_receiver.url))
        return alipay_sandbox.pay(out_trade_no)

    return make


def wait_for_attempts(sandbox: AlipaySandbox, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(sandbox.notifications()) < count:
        assert time.monotonic() < deadline, f"expected {count} attempts, got {sandbox.notifications()}"
        time.sleep(0.01)


def statuses(sandbox: AlipaySandbox) -> list[tuple[str, str, int, str]]:
    return [(e["kind"], e["out_trade_no"], e["attempt"], e["status"]) for e in sandbox.notifications()]


def test_a_payment_notice_is_delivered_once_and_accepted(
    alipay_sandbox: AlipaySandbox, alipay_receiver: AlipayReceiver, pay: Callable[..., str]
) -> None:
    trade_no = pay("QH-D-1001", 8800)
    assert alipay_sandbox.deliver_all_now() == 1
    (notice,) = alipay_receiver.accepted()
    assert (notice.kind, notice.amount_fen, notice.provider_trade_no) == ("payment", 8800, trade_no)
    assert statuses(alipay_sandbox) == [("payment", "QH-D-1001", 1, "success")]
    assert alipay_sandbox.notifications()[0]["notify_id"] == notice.dedupe_key
    assert alipay_sandbox.pending_notifications() == 0 and alipay_sandbox.deliver_all_now() == 0


def test_duplicate_delivers_the_same_notice_twice(
    alipay_sandbox: AlipaySandbox, alipay_receiver: AlipayReceiver, pay: Callable[..., str]
) -> None:
    alipay_sandbox.chaos(duplicate=True)
    pay("QH-D-1002")
    assert alipay_sandbox.deliver_all_now() == 2
    first, second = alipay_receiver.accepted()
    assert alipay_receiver.received[0] == alipay_receiver.received[1]
    assert first == second  # same notify_id: the payments domain stores it once
    assert [e["copy"] for e in alipay_sandbox.notifications()] == [1, 2]


def test_drop_loses_the_notice_but_not_the_money(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, alipay_receiver: AlipayReceiver,
    pay: Callable[..., str],
) -> None:
    alipay_sandbox.chaos(drop=1.0)
    pay("QH-D-1003", 1)
    assert alipay_sandbox.deliver_all_now() == 0
    assert alipay_receiver.received == []
    assert statuses(alipay_sandbox) == [("payment", "QH-D-1003", 0, "dropped")]
    assert alipay_sandbox.truth() == {"QH-D-1003": {"paid": 1, "refunded": 0}}
    assert alipay_gateway.query_order("QH-D-1003").state == "paid"  # what reconciliation relies on


def test_reorder_delivers_the_refund_notice_before_the_payment_notice(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, alipay_receiver: AlipayReceiver,
    pay: Callable[..., str],
) -> None:
    alipay_sandbox.chaos(reorder=True)
    pay("QH-D-1004", 8800)
    alipay_gateway.refund(RefundRequest("QH-D-1004", "QH-DR-1", 2000, 8800, "复诊取消", ""))
    assert alipay_sandbox.deliver_all_now() == 2
    assert [(n.kind, n.amount_fen) for n in alipay_receiver.accepted()] == [("refund", 2000), ("payment", 8800)]


def test_alter_amount_sends_a_valid_notice_with_the_wrong_amount(
    alipay_sandbox: AlipaySandbox, alipay_receiver: AlipayReceiver, pay: Callable[..., str]
) -> None:
    alipay_sandbox.chaos(alter_amount=True)
    pay("QH-D-1005", 8800)
    alipay_sandbox.deliver_all_now()
    (notice,) = alipay_receiver.accepted()
    assert (notice.amount_fen, notice.raw["total_amount"]) == (8801, "88.01")
    assert alipay_sandbox.truth()["QH-D-1005"]["paid"] == 8800  # only an amount check catches it


def test_a_corrupted_signature_is_refused_then_the_retry_is_accepted(
    alipay_sandbox: AlipaySandbox, alipay_receiver: AlipayReceiver, pay: Callable[..., str]
) -> None:
    alipay_sandbox.chaos(corrupt_signature=True)
    pay("QH-D-1006")
    alipay_sandbox.deliver_all_now()
    alipay_sandbox.deliver_all_now()
    assert alipay_receiver.rejected() == ["bad_signature"]
    assert len(alipay_receiver.accepted()) == 1
    assert statuses(alipay_sandbox) == [("payment", "QH-D-1006", 1, "fail"), ("payment", "QH-D-1006", 2, "success")]


def test_after_a_fail_reply_alipay_retries_on_its_schedule_scaled(
    alipay_sandbox: AlipaySandbox, alipay_receiver: AlipayReceiver, pay: Callable[..., str]
) -> None:
    alipay_sandbox.time_scale = 0.001  # 4 min → 0.24 s, 10 min → 0.6 s
    alipay_receiver.reply_fail(2)
    alipay_sandbox.auto_deliver = True
    pay("QH-D-1007")
    wait_for_attempts(alipay_sandbox, 3)
    alipay_sandbox.auto_deliver = False
    log = alipay_sandbox.notifications()
    assert [(e["attempt"], e["status"], e["reply"]) for e in log] == [(1, "fail", "fail"), (2, "fail", "fail"),
                                                                      (3, "success", "success")]
    assert log[1]["at"] - log[0]["at"] >= 0.24 and log[2]["at"] - log[1]["at"] >= 0.6
    assert len({e["notify_id"] for e in log}) == 1
    assert alipay_receiver.outcomes[:2] == ["forced_fail", "forced_fail"]
    assert isinstance(alipay_receiver.outcomes[2], PaymentNotification)


def test_retries_follow_the_sandbox_clock(
    alipay_sandbox: AlipaySandbox, alipay_receiver: AlipayReceiver, pay: Callable[..., str]
) -> None:
    alipay_receiver.reply_fail(1)
    pay("QH-D-1008")
    assert alipay_sandbox.deliver_due() == 1
    assert alipay_sandbox.deliver_due() == 0  # next attempt in 4 minutes
    alipay_sandbox.advance_clock(239)
    assert alipay_sandbox.deliver_due() == 0
    alipay_sandbox.advance_clock(2)
    assert alipay_sandbox.deliver_due() == 1
    assert statuses(alipay_sandbox) == [("payment", "QH-D-1008", 1, "fail"), ("payment", "QH-D-1008", 2, "success")]


def test_alipay_gives_up_after_eight_attempts(
    alipay_sandbox: AlipaySandbox, alipay_receiver: AlipayReceiver, pay: Callable[..., str]
) -> None:
    alipay_receiver.reply_fail(100)
    pay("QH-D-1009")
    made = [alipay_sandbox.deliver_all_now() for _ in range(MAX_ATTEMPTS + 1)]
    assert made == [1] * MAX_ATTEMPTS + [0] and MAX_ATTEMPTS == 8
    assert [e["attempt"] for e in alipay_sandbox.notifications()] == list(range(1, 9))
    assert alipay_sandbox.pending_notifications() == 0


def test_seeded_random_chaos_is_reproducible(
    alipay_sandbox: AlipaySandbox, alipay_receiver: AlipayReceiver, pay: Callable[..., str]
) -> None:
    def run() -> list[tuple[str, int, str]]:
        alipay_sandbox.reset()
        alipay_sandbox.chaos(seed=20260105, drop=0.3, duplicate=0.3)
        for number in range(12):
            pay(f"QH-D-11{number:02d}")
        alipay_sandbox.deliver_all_now()
        return [(e["out_trade_no"], e["copy"], e["status"]) for e in alipay_sandbox.notifications()]

    first, second = run(), run()
    assert first == second
    assert {status for _, _, status in first} == {"success", "dropped"}
    assert any(copy == 2 for _, copy, _ in first)


def test_notices_to_non_loopback_urls_are_never_sent(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, alipay_prepay_request: MakePrepay
) -> None:
    alipay_gateway.prepay(alipay_prepay_request("QH-D-1201", notify_url="https://example.com/alipay/notify"))
    alipay_sandbox.pay("QH-D-1201")
    alipay_sandbox.deliver_all_now()
    assert statuses(alipay_sandbox) == [("payment", "QH-D-1201", 1, "refused")]
    assert alipay_sandbox.pending_notifications() == 0


def test_the_controls_work_over_http(
    alipay_gateway: AlipayGateway, alipay_sandbox: AlipaySandbox, alipay_receiver: AlipayReceiver,
    alipay_prepay_request: MakePrepay,
) -> None:
    control = SandboxControl(alipay_sandbox.base_url)
    alipay_gateway.prepay(alipay_prepay_request("QH-D-1301", 1, notify_url=alipay_receiver.url))
    control.call("POST", "chaos", {"duplicate": 1.0})
    trade_no = control.call("POST", "pay", {"out_trade_no": "QH-D-1301"})["trade_no"]
    assert control.call("POST", "deliver", {"all": True}) == {"attempts": 2}
    assert [e["status"] for e in control.call("GET", "notifications")] == ["success", "success"]
    assert control.call("GET", "truth") == {"QH-D-1301": {"paid": 1, "refunded": 0}}
    assert control.call("GET", "order?out_trade_no=QH-D-1301")["trade_no"] == trade_no
    with pytest.raises(RuntimeError, match="400"):
        control.call("POST", "pay", {"out_trade_no": "QH-D-1301"})  # already paid


def test_a_rejected_notice_is_answered_fail_and_retried(
    alipay_sandbox: AlipaySandbox, alipay_receiver: AlipayReceiver, pay: Callable[..., str]
) -> None:
    alipay_sandbox.chaos(corrupt_signature=True)
    pay("QH-D-1401")
    alipay_sandbox.deliver_all_now()
    (outcome,) = alipay_receiver.outcomes
    assert isinstance(outcome, NotificationRejected) and outcome.reason == "bad_signature"
    assert alipay_sandbox.notifications()[0]["reply"] == "fail"
    assert alipay_sandbox.pending_notifications() == 1
