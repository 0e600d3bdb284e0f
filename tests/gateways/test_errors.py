"""The two error kinds survive a trip through pickle (Celery) and read well in logs."""

from __future__ import annotations

import pickle

from backend.gateways.errors import GatewayError, GatewayRetryable, GatewayTerminal


def test_errors_pickle_with_all_their_attributes():
    error = GatewayRetryable("rate_limited", "api minute-quota reach limit", 45011)

    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes

    assert (type(copy), copy.code, copy.message, copy.provider_code) == (
        GatewayRetryable,
        "rate_limited",
        "api minute-quota reach limit",
        45011,
    )


def test_kinds_and_messages():
    terminal = GatewayTerminal("invalid_code")

    assert isinstance(terminal, GatewayError)
    assert (terminal.retryable, GatewayRetryable("timeout").retryable) == (False, True)
    assert str(terminal) == "invalid_code: invalid_code"
    assert str(GatewayTerminal("not_subscribed", "user refuse", 43101)) == (
        "not_subscribed: user refuse (provider code 43101)"
    )
