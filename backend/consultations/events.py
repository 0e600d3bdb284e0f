"""Typed realtime events of consultations and the groups they are addressed to (DESIGN rule 9)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def consultation_group(consultation_id: object) -> str:
    return f"consultation.{consultation_id}"


def doctor_group(doctor_id: object) -> str:
    return f"doctor.{doctor_id}"


def department_pool_group(department_id: object) -> str:
    return f"department.{department_id}"


@dataclass(frozen=True)
class ChatMessage:
    """One persisted entry of the stream; ``seq`` orders it and lets a client resume."""

    consultation_id: str
    seq: int
    kind: str
    sender_role: str
    body: str
    created_at: str
    payload: dict[str, Any] = field(default_factory=dict)
    client_msg_id: str = ""
    recalled: bool = False


@dataclass(frozen=True)
class ConsultationChanged:
    """Sent to the doctor's (or department pool's) console and the patient's account stream."""

    consultation_id: str
    status: str
    kind: str
    doctor_id: str | None
    department_id: str
    patient_name: str
    waiting_since: str | None
