"""What we need from a real-name provider: does this name belong to this ID-card number?

Implementations: :class:`backend.gateways.realname.client.HttpIdentityVerifier` (the provider's
HTTP API, or the sandbox). ``verify`` raises only ``GatewayRetryable`` or ``GatewayTerminal``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable


class IdentityOutcome(StrEnum):
    MATCH = "match"  # the ID number exists and the name is its holder's (一致)
    MISMATCH = "mismatch"  # the ID number exists under another name (不一致)
    NO_RECORD = "no_record"  # no such ID number (库中无此号)


@dataclass(frozen=True)
class IdentityCheck:
    name: str
    id_number: str = field(repr=False)


@dataclass(frozen=True)
class IdentityResult:
    outcome: IdentityOutcome
    serial_no: str  # the provider's reference for this check; keep it with the verification record
    checked_at: datetime  # aware, UTC


@runtime_checkable
class IdentityVerifier(Protocol):
    def verify(self, check: IdentityCheck) -> IdentityResult: ...
