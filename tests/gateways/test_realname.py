"""Real-name two-factor check: our signed client against the real-name sandbox over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from backend.gateways.errors import GatewayRetryable, GatewayTerminal
from backend.gateways.realname.base import IdentityCheck, IdentityOutcome
from backend.gateways.realname.client import TWO_FACTOR_PATH, HttpIdentityVerifier
from backend.gateways.realname.sandbox import RealNameSandbox
from backend.gateways.realname.signing import request_signature, response_signature
from tests.gateways.conftest import REALNAME_KEY, REALNAME_SECRET
from tests.gateways.helpers import assert_gateway_error

WANG_ID = "110101198803074518"
WANG = IdentityCheck(name="王建国", id_number=WANG_ID)


@pytest.mark.parametrize(
    ("registered_name", "outcome", "provider_result"),
    [
        ("王建国", IdentityOutcome.MATCH, "consistent"),
        ("王建军", IdentityOutcome.MISMATCH, "inconsistent"),
        (None, IdentityOutcome.NO_RECORD, "no_record"),
    ],
)
def test_two_factor_outcomes(verifier, realname_sandbox, registered_name, outcome, provider_result):
    if registered_name:
        realname_sandbox.add_person(registered_name, WANG_ID)
    before = datetime.now(tz=UTC)

    result = verifier.verify(WANG)

    assert result.outcome == outcome
    assert result.outcome == outcome.value  # a StrEnum: compares equal to the plain string
    assert before <= result.checked_at <= datetime.now(tz=UTC)
    assert result.checked_at.utcoffset() == timedelta(0)
    (logged,) = realname_sandbox.requests()
    assert logged["serial_no"] == result.serial_no
    assert (logged["code"], logged["result"], logged["app_key"]) == ("0000", provider_result, REALNAME_KEY)
    assert (logged["id_last4"], logged["name_sha256"]) == (
        "4518",
        hashlib.sha256("王建国".encode()).hexdigest(),
    )
    assert WANG_ID not in json.dumps(logged) and "王建国" not in json.dumps(logged, ensure_ascii=False)


def test_id_check_letter_x_is_case_insensitive(verifier, realname_sandbox):
    realname_sandbox.add_person("李秀兰", "11010119900307001X")

    assert verifier.verify(IdentityCheck("李秀兰", "11010119900307001x")).outcome == IdentityOutcome.MATCH


def test_request_signature_is_hmac_sha256_over_the_documented_string():
    body = '{"name":"王建国","id_number":"110101198803074518"}'.encode()
    string_to_sign = f"POST\n{TWO_FACTOR_PATH}\n1795440000\nabc123\n{hashlib.sha256(body).hexdigest()}"
    expected = base64.b64encode(hmac.new(b"k3y", string_to_sign.encode(), hashlib.sha256).digest()).decode()

    assert request_signature("k3y", "POST", TWO_FACTOR_PATH, "1795440000", "abc123", body) == expected


def test_client_with_the_wrong_secret_is_rejected_as_bad_signature(realname_sandbox):
    realname_sandbox.add_person("王建国", WANG_ID)
    impostor = HttpIdentityVerifier(realname_sandbox.base_url, REALNAME_KEY, "not-our-secret", timeout=2)

    with pytest.raises(GatewayTerminal) as caught:
        impostor.verify(WANG)

    assert_gateway_error(caught, GatewayTerminal, "bad_signature", "1001")
    assert [(entry["code"], entry["result"]) for entry in realname_sandbox.requests()] == [("1001", None)]
    impostor.close()


def test_unknown_app_key_is_terminal(realname_sandbox):
    stranger = HttpIdentityVerifier(realname_sandbox.base_url, "someone-else", REALNAME_SECRET, timeout=2)

    with pytest.raises(GatewayTerminal) as caught:
        stranger.verify(WANG)

    assert_gateway_error(caught, GatewayTerminal, "unknown_app_key", "1004")
    stranger.close()


def _signed_post(base_url: str, body: bytes, timestamp: int, nonce: str) -> requests.Response:
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "X-App-Key": REALNAME_KEY,
        "X-Timestamp": str(timestamp),
        "X-Nonce": nonce,
        "X-Signature": request_signature(
            REALNAME_SECRET, "POST", TWO_FACTOR_PATH, str(timestamp), nonce, body
        ),
    }
    return requests.post(base_url + TWO_FACTOR_PATH, data=body, headers=headers, timeout=2)


def _wang_body() -> bytes:
    return json.dumps({"name": "王建国", "id_number": WANG_ID}, ensure_ascii=False).encode()


def test_replayed_request_is_rejected(realname_sandbox):
    realname_sandbox.add_person("王建国", WANG_ID)
    body, timestamp = _wang_body(), int(time.time())

    first = _signed_post(realname_sandbox.base_url, body, timestamp, "nonce-0001")
    replay = _signed_post(realname_sandbox.base_url, body, timestamp, "nonce-0001")

    assert (first.status_code, first.json()["code"], first.json()["data"]["result"]) == (
        200,
        "0000",
        "consistent",
    )
    assert first.headers["X-Signature"] == response_signature(REALNAME_SECRET, "nonce-0001", first.content)
    assert (replay.status_code, replay.json()["code"]) == (200, "1003")
    assert [entry["code"] for entry in realname_sandbox.requests()] == ["0000", "1003"]


@pytest.mark.parametrize("skew", [-301, 301])
def test_timestamp_more_than_five_minutes_off_is_rejected(realname_sandbox, skew):
    response = _signed_post(realname_sandbox.base_url, _wang_body(), int(time.time()) + skew, f"nonce-{skew}")

    assert (response.status_code, response.json()["code"]) == (200, "1002")


def test_client_behind_the_providers_clock_gets_stale_timestamp(verifier, realname_sandbox):
    realname_sandbox.advance_clock(400)

    with pytest.raises(GatewayTerminal) as caught:
        verifier.verify(WANG)

    assert_gateway_error(caught, GatewayTerminal, "stale_timestamp", "1002")


def test_malformed_request_is_rejected(realname_sandbox):
    body = json.dumps({"name": "王建国"}, ensure_ascii=False).encode()

    response = _signed_post(realname_sandbox.base_url, body, int(time.time()), "nonce-no-id")

    assert (response.status_code, response.json()["code"]) == (200, "1000")


def test_answer_not_signed_with_our_secret_is_refused():
    forger = RealNameSandbox(REALNAME_KEY, REALNAME_SECRET, response_secret="someone-elses-secret").start()
    forger.add_person("王建国", WANG_ID)
    client = HttpIdentityVerifier(forger.base_url, REALNAME_KEY, REALNAME_SECRET, timeout=2)
    try:
        with pytest.raises(GatewayTerminal) as caught:
            client.verify(WANG)
    finally:
        client.close()
        forger.stop()

    assert_gateway_error(caught, GatewayTerminal, "bad_response_signature", None)


@pytest.mark.parametrize(
    ("mode", "errcode", "kind", "code", "provider_code"),
    [
        ("errcode", "2001", GatewayRetryable, "rate_limited", "2001"),
        ("errcode", "9999", GatewayRetryable, "upstream_busy", "9999"),
        ("errcode", "1234", GatewayTerminal, "upstream_error", "1234"),
        ("http500", None, GatewayRetryable, "upstream_error", None),
    ],
)
def test_provider_failures_map_to_our_two_kinds(
    verifier, realname_sandbox, mode, errcode, kind, code, provider_code
):
    realname_sandbox.fail_next(TWO_FACTOR_PATH, mode, errcode=errcode)

    with pytest.raises(kind) as caught:
        verifier.verify(WANG)

    assert_gateway_error(caught, kind, code, provider_code)
    assert verifier.verify(WANG).outcome == IdentityOutcome.NO_RECORD  # one failure only
    assert realname_sandbox.calls() == [TWO_FACTOR_PATH, TWO_FACTOR_PATH]


def test_no_answer_within_the_timeout_is_retryable(realname_sandbox):
    impatient = HttpIdentityVerifier(realname_sandbox.base_url, REALNAME_KEY, REALNAME_SECRET, timeout=0.3)
    realname_sandbox.fail_next(TWO_FACTOR_PATH, "timeout", delay=1.5)
    started = time.monotonic()

    with pytest.raises(GatewayRetryable) as caught:
        impatient.verify(WANG)

    assert_gateway_error(caught, GatewayRetryable, "timeout", None)
    assert time.monotonic() - started < 1.0
    assert realname_sandbox.requests() == []  # dropped unprocessed
    impatient.close()
