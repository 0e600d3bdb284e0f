"""Notifications: parse_notification on hand-made envelopes (each broken one way), the ack
formats, and the sandbox delivering to a local receiver, with chaos and retries."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from payments.gateways.base import NotificationRejected, PaymentNotification
from payments.gateways.wechatpay import WeChatPayGateway
from payments.gateways.wechatpay_sandbox import RETRY_INTERVALS
from tests.payments.gateways.wechatpay_fixtures import WECHATPAY_APPID, WECHATPAY_MCHID, WECHATPAY_SERIAL

PAID = {
    "appid": WECHATPAY_APPID, "mchid": WECHATPAY_MCHID, "out_trade_no": "QH20260105000101",
    "transaction_id": "4200002601052026010512345678", "trade_type": "JSAPI", "trade_state": "SUCCESS",
    "trade_state_desc": "支付成功", "bank_type": "OTHERS", "attach": "", "success_time": "2026-01-05T10:20:30+08:00",
    "payer": {"openid": "oPATIENT_WANG"},
    "amount": {"total": 3000, "payer_total": 2800, "currency": "CNY", "payer_currency": "CNY"},
}
REFUNDED = {
    "mchid": WECHATPAY_MCHID, "out_trade_no": "QH20260105000101", "transaction_id": PAID["transaction_id"],
    "out_refund_no": "RF20260105000101", "refund_id": "50300602012026010512345678901", "refund_status": "SUCCESS",
    "success_time": "2026-01-05T11:00:00+08:00", "user_received_account": "支付用户零钱",
    "amount": {"total": 3000, "refund": 1000, "payer_total": 2800, "payer_refund": 1000},
}
SHANGHAI_OFFSET = timezone(timedelta(hours=8))


@pytest.fixture
def offline_gateway(wechatpay_keys, wechatpay_apiv3_key) -> WeChatPayGateway:
    """A gateway trusting the test's own platform key ("PUB_KEY_ID_TEST"); it makes no calls."""
    return WeChatPayGateway(
        appid=WECHATPAY_APPID, mchid=WECHATPAY_MCHID, merchant_private_key_pem=wechatpay_keys["merchant"].private_pem,
        merchant_serial_no=WECHATPAY_SERIAL, apiv3_key=wechatpay_apiv3_key,
        platform_public_key_pem=wechatpay_keys["platform"].public_pem, platform_public_key_id="PUB_KEY_ID_TEST",
        api_base="http://127.0.0.1:9", timeout=1.0,
    )


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def rejection(gateway: WeChatPayGateway, headers, body) -> str:
    with pytest.raises(NotificationRejected) as caught:
        gateway.parse_notification(headers, body)
    return caught.value.reason


# --- parsing ------------------------------------------------------------------------------------
def test_payment_notification_is_verified_and_decrypted(offline_gateway, wechatpay_notice):
    headers, body = wechatpay_notice("TRANSACTION.SUCCESS", PAID, event_id="EV-2026010510203001")

    notice = offline_gateway.parse_notification(headers, body)
    assert notice == PaymentNotification(
        kind="payment", dedupe_key="EV-2026010510203001", out_trade_no="QH20260105000101", amount_fen=3000,
        state="paid", provider_trade_no=PAID["transaction_id"], appid=WECHATPAY_APPID, mchid=WECHATPAY_MCHID,
        occurred_at=datetime(2026, 1, 5, 10, 20, 30, tzinfo=SHANGHAI_OFFSET), raw=PAID,
    )


def test_payment_amount_falls_back_to_total(offline_gateway, wechatpay_notice):
    resource = {**PAID, "amount": {"total": 1, "currency": "CNY"}}
    assert offline_gateway.parse_notification(*wechatpay_notice("TRANSACTION.SUCCESS", resource)).amount_fen == 1


@pytest.mark.parametrize("event_type, status, state", [
    ("REFUND.SUCCESS", "SUCCESS", "succeeded"), ("REFUND.ABNORMAL", "ABNORMAL", "failed"),
    ("REFUND.CLOSED", "CLOSED", "closed"),
])
def test_refund_notifications(offline_gateway, wechatpay_notice, event_type, status, state):
    resource = {**REFUNDED, "refund_status": status}
    if status != "SUCCESS":
        del resource["success_time"]
    headers, body = wechatpay_notice(event_type, resource, event_id="EV-R1")

    notice = offline_gateway.parse_notification(headers, body)
    occurred = datetime(2026, 1, 5, 11, 0, tzinfo=SHANGHAI_OFFSET) if status == "SUCCESS" else (
        datetime(2026, 1, 5, 10, 20, 31, tzinfo=SHANGHAI_OFFSET))  # the envelope's create_time
    assert notice == PaymentNotification(
        kind="refund", dedupe_key="EV-R1", out_trade_no="QH20260105000101", amount_fen=1000, state=state,
        provider_trade_no=PAID["transaction_id"], out_refund_no="RF20260105000101",
        provider_refund_id=REFUNDED["refund_id"], appid="", mchid=WECHATPAY_MCHID, occurred_at=occurred, raw=resource,
    )


def test_headers_are_case_insensitive_and_django_meta_works(offline_gateway, wechatpay_notice):
    headers, body = wechatpay_notice("TRANSACTION.SUCCESS", PAID)
    lower = {name.lower(): value for name, value in headers.items()}
    meta = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}

    assert offline_gateway.parse_notification(lower, body).out_trade_no == "QH20260105000101"
    assert offline_gateway.parse_notification(meta, body).out_trade_no == "QH20260105000101"


def test_forged_signature_is_rejected(offline_gateway, wechatpay_notice, wechatpay_keys):
    headers, body = wechatpay_notice("TRANSACTION.SUCCESS", PAID, signing_key=wechatpay_keys["stranger"].key)
    assert rejection(offline_gateway, headers, body) == "bad_signature"


def test_body_changed_after_signing_is_rejected(offline_gateway, wechatpay_notice):
    headers, body = wechatpay_notice("TRANSACTION.SUCCESS", PAID)
    assert rejection(offline_gateway, headers, body.replace(b"TRANSACTION.SUCCESS", b"REFUND.SUCCESS")) == (
        "bad_signature")


@pytest.mark.parametrize("header", ["Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce"])
def test_missing_signature_header_is_rejected(offline_gateway, wechatpay_notice, header):
    headers, body = wechatpay_notice("TRANSACTION.SUCCESS", PAID)
    del headers[header]
    assert rejection(offline_gateway, headers, body) == "bad_signature"


@pytest.mark.parametrize("skew", [-301, 301, -3600])
def test_stale_or_future_timestamp_is_rejected(offline_gateway, wechatpay_notice, skew):
    headers, body = wechatpay_notice("TRANSACTION.SUCCESS", PAID, timestamp=int(time.time()) + skew)
    assert rejection(offline_gateway, headers, body) == "stale_timestamp"


def test_timestamp_within_five_minutes_is_accepted(offline_gateway, wechatpay_notice):
    headers, body = wechatpay_notice("TRANSACTION.SUCCESS", PAID, timestamp=int(time.time()) - 290)
    assert offline_gateway.parse_notification(headers, body).kind == "payment"


def test_unknown_serial_is_rejected(offline_gateway, wechatpay_notice):
    headers, body = wechatpay_notice("TRANSACTION.SUCCESS", PAID, serial="PUB_KEY_ID_0000000000000000000000000001")
    assert rejection(offline_gateway, headers, body) == "unknown_serial"


def test_tampered_ciphertext_is_undecryptable(offline_gateway, wechatpay_notice):
    def flip_a_byte(envelope):
        ciphertext = envelope["resource"]["ciphertext"]
        envelope["resource"]["ciphertext"] = ("B" if ciphertext[0] == "A" else "A") + ciphertext[1:]

    headers, body = wechatpay_notice("TRANSACTION.SUCCESS", PAID, mangle=flip_a_byte)  # signed after tampering
    assert rejection(offline_gateway, headers, body) == "undecryptable"


def test_changed_associated_data_or_other_apiv3_key_is_undecryptable(offline_gateway, wechatpay_notice):
    headers, body = wechatpay_notice("TRANSACTION.SUCCESS", PAID,
                                     mangle=lambda e: e["resource"].update(associated_data="refund"))
    assert rejection(offline_gateway, headers, body) == "undecryptable"
    headers, body = wechatpay_notice("TRANSACTION.SUCCESS", PAID, apiv3_key="0" * 32)
    assert rejection(offline_gateway, headers, body) == "undecryptable"


@pytest.mark.parametrize("breakage", [
    {"raw_body": b"not json"},
    {"mangle": lambda e: e.update(resource_type="plain")},
    {"mangle": lambda e: e["resource"].update(algorithm="AEAD_SM4_GCM")},
    {"mangle": lambda e: e.pop("id")},
    {"mangle": lambda e: e.update(event_type="TRANSACTION.SOMETHING")},
])
def test_malformed_envelopes_are_rejected(offline_gateway, wechatpay_notice, breakage):
    headers, body = wechatpay_notice("TRANSACTION.SUCCESS", PAID, **breakage)
    assert rejection(offline_gateway, headers, body) == "malformed"


@pytest.mark.parametrize("resource", [
    {**PAID, "amount": {"total": "3000"}},
    {**PAID, "out_trade_no": ""},
    {**PAID, "success_time": "yesterday"},
])
def test_malformed_resources_are_rejected(offline_gateway, wechatpay_notice, resource):
    assert rejection(offline_gateway, *wechatpay_notice("TRANSACTION.SUCCESS", resource)) == "malformed"


def test_acks_use_the_v3_reply_formats(offline_gateway):
    ok, fail = offline_gateway.notification_ack(True), offline_gateway.notification_ack(False)
    assert (ok.status, ok.content_type, json.loads(ok.body)) == (
        200, "application/json", {"code": "SUCCESS", "message": "成功"})
    assert (fail.status, fail.content_type, json.loads(fail.body)) == (
        400, "application/json", {"code": "FAIL", "message": "失败"})


# --- delivery by the sandbox ------------------------------------------------------------------------
@pytest.fixture
def paid_order(wechatpay_gateway, wechatpay_sandbox, wechatpay_prepay_request, wechatpay_receiver):
    """Order QH20260105000201 (3000 fen) prepaid; the receiver answers with the gateway's ack."""
    wechatpay_receiver.gateway = wechatpay_gateway
    wechatpay_gateway.prepay(wechatpay_prepay_request("QH20260105000201", 3000))
    return "QH20260105000201"


def refund_through_sandbox(gateway, sandbox, receiver, out_trade_no: str, amount: int) -> None:
    from payments.gateways.base import RefundRequest

    gateway.refund(RefundRequest(out_trade_no, "RF" + out_trade_no[2:], amount, 3000, "取消", receiver.url))
    sandbox.settle_refunds()


def test_sandbox_delivers_a_payment_notification_the_gateway_accepts(wechatpay_sandbox, wechatpay_receiver, paid_order):
    transaction_id = wechatpay_sandbox.pay(paid_order)
    assert wechatpay_sandbox.deliver_all_now() == 1

    [notice] = wechatpay_receiver.outcomes
    [attempt] = wechatpay_sandbox.notifications()
    assert (notice.kind, notice.state, notice.out_trade_no, notice.amount_fen, notice.provider_trade_no) == (
        "payment", "paid", paid_order, 3000, transaction_id)
    assert (notice.appid, notice.mchid, notice.dedupe_key) == (WECHATPAY_APPID, WECHATPAY_MCHID, attempt["event_id"])
    assert {k: attempt[k] for k in ("event_type", "kind", "out_trade_no", "attempt", "status", "chaos")} == {
        "event_type": "TRANSACTION.SUCCESS", "kind": "payment", "out_trade_no": paid_order, "attempt": 1,
        "status": 200, "chaos": []}
    headers, body = wechatpay_receiver.received[0]
    envelope = json.loads(body)
    assert (envelope["resource_type"], envelope["summary"], envelope["resource"]["original_type"]) == (
        "encrypt-resource", "支付成功", "transaction")
    assert headers["Wechatpay-Serial"] == wechatpay_sandbox.platform_public_key_id
    assert wechatpay_sandbox.deliver_all_now() == 0  # delivered once, nothing left


def test_refund_notification_from_the_sandbox(
    wechatpay_gateway, wechatpay_sandbox, wechatpay_receiver, paid_order
):
    wechatpay_sandbox.pay(paid_order)
    refund_through_sandbox(wechatpay_gateway, wechatpay_sandbox, wechatpay_receiver, paid_order, 1200)
    wechatpay_sandbox.deliver_all_now()

    payment, refund = wechatpay_receiver.outcomes
    assert (refund.kind, refund.state, refund.amount_fen, refund.out_refund_no) == (
        "refund", "succeeded", 1200, "RF20260105000201")
    assert refund.provider_trade_no == payment.provider_trade_no
    assert refund.dedupe_key != payment.dedupe_key


def test_duplicate_chaos_delivers_the_same_notification_twice(wechatpay_sandbox, wechatpay_receiver, paid_order):
    wechatpay_sandbox.chaos(duplicate=True)
    wechatpay_sandbox.pay(paid_order)
    assert wechatpay_sandbox.deliver_all_now() == 2

    first, second = wechatpay_receiver.outcomes
    assert first == second  # same id, same content: the domain must dedupe on dedupe_key
    assert [entry["copy"] for entry in wechatpay_sandbox.notifications()] == [1, 2]


def test_drop_chaos_loses_the_notification_but_the_order_is_paid(
    wechatpay_gateway, wechatpay_sandbox, wechatpay_receiver, paid_order
):
    wechatpay_sandbox.chaos(drop=True)
    wechatpay_sandbox.pay(paid_order)

    assert wechatpay_sandbox.deliver_all_now() == 0
    assert wechatpay_receiver.received == []
    [entry] = wechatpay_sandbox.notifications()
    assert (entry["attempt"], entry["status"], entry["error"], entry["chaos"]) == (0, None, "dropped", ["drop"])
    assert wechatpay_gateway.query_order(paid_order).state == "paid"  # what reconciliation finds
    assert wechatpay_sandbox.truth() == {paid_order: {"paid": 3000, "refunded": 0}}


def test_reorder_chaos_delivers_the_refund_before_the_payment(
    wechatpay_gateway, wechatpay_sandbox, wechatpay_receiver, paid_order
):
    wechatpay_sandbox.chaos(reorder=True)
    wechatpay_sandbox.pay(paid_order)
    assert wechatpay_sandbox.deliver_due() == 0  # the payment notice is held back
    refund_through_sandbox(wechatpay_gateway, wechatpay_sandbox, wechatpay_receiver, paid_order, 3000)

    assert wechatpay_sandbox.deliver_all_now() == 2
    assert [(n.kind, n.amount_fen) for n in wechatpay_receiver.outcomes] == [("refund", 3000), ("payment", 3000)]


def test_reorder_releases_the_payment_after_the_refund_notice_in_the_background(
    wechatpay_start_sandbox, wechatpay_make_gateway, wechatpay_prepay_request, wechatpay_receiver
):
    sandbox = wechatpay_start_sandbox(auto_deliver=True, hold_seconds=10_000)  # held for 10 s at most
    gateway = wechatpay_make_gateway(sandbox)
    wechatpay_receiver.gateway = gateway
    gateway.prepay(wechatpay_prepay_request("QH20260105000202", 3000))
    sandbox.chaos(reorder=True)
    sandbox.pay("QH20260105000202")
    time.sleep(0.2)
    assert wechatpay_receiver.received == []
    refund_through_sandbox(gateway, sandbox, wechatpay_receiver, "QH20260105000202", 500)

    wechatpay_receiver.wait_for(2)
    assert [n.kind for n in wechatpay_receiver.outcomes] == ["refund", "payment"]


def test_alter_amount_chaos_notifies_a_wrong_amount_while_the_truth_stays(
    wechatpay_gateway, wechatpay_sandbox, wechatpay_receiver, paid_order
):
    wechatpay_sandbox.chaos(alter_amount=True)
    wechatpay_sandbox.pay(paid_order)
    wechatpay_sandbox.deliver_all_now()

    [notice] = wechatpay_receiver.outcomes
    assert notice.amount_fen == 3001  # correctly signed and encrypted: only the amount check catches it
    assert wechatpay_sandbox.truth()[paid_order] == {"paid": 3000, "refunded": 0}
    assert wechatpay_gateway.query_order(paid_order).amount_fen == 3000


@pytest.mark.parametrize("flag, reason", [
    ("corrupt_signature", "bad_signature"), ("stale_timestamp", "stale_timestamp"),
])
def test_forged_or_stale_notifications_are_rejected_and_retried(
    wechatpay_sandbox, wechatpay_receiver, paid_order, flag, reason
):
    wechatpay_sandbox.chaos(**{flag: True})
    wechatpay_sandbox.pay(paid_order)
    wechatpay_sandbox.deliver_all_now()
    wechatpay_sandbox.deliver_all_now()

    assert [outcome.reason for outcome in wechatpay_receiver.outcomes] == [reason, reason]
    assert [(e["attempt"], e["status"]) for e in wechatpay_sandbox.notifications()] == [(1, 400), (2, 400)]
    assert wechatpay_sandbox.pending_notifications() == 1


def test_failed_delivery_is_retried_on_the_scaled_schedule(
    wechatpay_start_sandbox, wechatpay_make_gateway, wechatpay_prepay_request, wechatpay_receiver
):
    sandbox = wechatpay_start_sandbox(auto_deliver=True, time_scale=0.01)  # 15 s -> 0.15 s
    gateway = wechatpay_make_gateway(sandbox)
    wechatpay_receiver.gateway = gateway
    wechatpay_receiver.respond_with(500, 500)
    gateway.prepay(wechatpay_prepay_request("QH20260105000203", 3000))

    started = time.monotonic()
    sandbox.pay("QH20260105000203")
    wechatpay_receiver.wait_for(3)
    elapsed = time.monotonic() - started
    wait_until(lambda: len(sandbox.notifications()) == 3)  # the sandbox logs once the answer is in

    attempts = [(e["attempt"], e["status"]) for e in sandbox.notifications()]
    assert attempts == [(1, 500), (2, 500), (3, 200)]
    assert elapsed >= (RETRY_INTERVALS[0] + RETRY_INTERVALS[1]) * 0.01
    ids = {n.dedupe_key for n in wechatpay_receiver.outcomes}
    assert len(ids) == 1 and len(wechatpay_receiver.outcomes) == 3
    time.sleep(0.1)
    assert len(wechatpay_receiver.received) == 3  # no attempt after the 200


def test_unreachable_receiver_is_retried(wechatpay_gateway, wechatpay_sandbox, wechatpay_prepay_request):
    wechatpay_gateway.prepay(wechatpay_prepay_request("QH20260105000204", notify_url="http://127.0.0.1:9/notify"))
    wechatpay_sandbox.pay("QH20260105000204")
    wechatpay_sandbox.deliver_all_now()

    [entry] = wechatpay_sandbox.notifications()
    assert (entry["attempt"], entry["status"]) == (1, None) and "ConnectionError" in entry["error"]
    assert wechatpay_sandbox.pending_notifications() == 1


def test_seeded_random_chaos_is_reproducible(wechatpay_gateway, wechatpay_sandbox, wechatpay_prepay_request):
    def run() -> dict[str, list[str]]:
        wechatpay_sandbox.reset()
        wechatpay_sandbox.chaos(duplicate=0.3, reorder=0.2, corrupt_signature=0.1, drop=0.1, seed=7)
        for n in range(12):
            wechatpay_gateway.prepay(wechatpay_prepay_request(f"QH202601050003{n:02d}", 100 + n,
                                                              notify_url="http://127.0.0.1:9/notify"))
            wechatpay_sandbox.pay(f"QH202601050003{n:02d}")
        wechatpay_sandbox.deliver_all_now()
        # By order, not by position: a held ("reorder") notice may be released by time in between.
        return {entry["out_trade_no"]: entry["chaos"] for entry in wechatpay_sandbox.notifications()}

    first = run()
    assert run() == first
    assert len(first) == 12 and any(first.values()) and not all(first.values())


def test_notifications_to_other_hosts_are_refused(wechatpay_gateway, wechatpay_sandbox, wechatpay_prepay_request):
    wechatpay_gateway.prepay(wechatpay_prepay_request("QH20260105000205", notify_url="https://qihuang.example/notify"))
    wechatpay_sandbox.pay("QH20260105000205")
    wechatpay_sandbox.deliver_all_now()

    [entry] = wechatpay_sandbox.notifications()
    assert (entry["status"], entry["error"]) == (None, "refused: notify_url is not a loopback address")
    assert wechatpay_sandbox.pending_notifications() == 0
