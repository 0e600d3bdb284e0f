"""Small assertions shared by the gateway tests."""

from __future__ import annotations

from typing import Any

import pytest

from backend.gateways.errors import GatewayError


def assert_gateway_error(
    caught: pytest.ExceptionInfo[Any], kind: type[GatewayError], code: str, provider_code: Any
) -> None:
    error = caught.value
    assert (type(error), error.code, error.provider_code) == (kind, code, provider_code)
