"""The two kinds of gateway failure (DESIGN rule 7).

``GatewayRetryable``: trying the same call again later may succeed (timeouts, connection
errors, HTTP 5xx, rate limits, "system busy"). Celery tasks retry these with a bound.
``GatewayTerminal``: retrying cannot help (an invalid login code, a refused subscription,
a bad signature); the caller turns it into a clear error for the user or the operator.
"""

from __future__ import annotations


class GatewayError(Exception):
    """A failed call to an outside service.

    ``code`` is ours and stable (``"invalid_code"``, ``"rate_limited"``, ``"timeout"``, ...);
    ``provider_code`` is what the provider said (a WeChat ``errcode`` int, a real-name
    provider code string), or None when the failure happened below the provider's protocol.
    """

    retryable = False

    def __init__(self, code: str, message: str = "", provider_code: int | str | None = None) -> None:
        # All three go to Exception.args, so the error pickles (Celery) and compares cleanly.
        super().__init__(code, message or code, provider_code)
        self.code = code
        self.message = message or code
        self.provider_code = provider_code

    def __str__(self) -> str:
        suffix = "" if self.provider_code is None else f" (provider code {self.provider_code})"
        return f"{self.code}: {self.message}{suffix}"


class GatewayRetryable(GatewayError):
    """Transient: the same call may succeed later."""

    retryable = True


class GatewayTerminal(GatewayError):
    """Permanent: the same call will fail again."""
