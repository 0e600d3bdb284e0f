"""The append-only, SM3 hash-chained audit log (DESIGN rule 10, IH-23).

``audit_record`` appends one row inside the caller's transaction, so an action and
its audit row commit or roll back together. ``audit_verify_chain`` recomputes the
chain and names the first row that does not match.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from backend.core.crypto import sm3_hex
from backend.core.models import AuditChainHead, AuditEvent

GENESIS = "0" * 64


def _content(event: AuditEvent) -> bytes:
    payload = {
        "seq": event.seq, "at": event.occurred_at.isoformat(timespec="microseconds"), "actor": event.actor_id,
        "label": event.actor_label, "action": event.action, "type": event.object_type, "id": event.object_id,
        "ip": event.ip, "detail": event.detail,
    }
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def row_hash_of(event: AuditEvent) -> str:
    return sm3_hex(event.prev_hash.encode() + _content(event))


def _json_safe(value: Any) -> Any:
    """Details as JSON that reads back identically from jsonb: floats become strings."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_json_safe(v) for v in value]
    if isinstance(value, bool | int | str) or value is None:
        return value
    return str(value)


def audit_record(*, action: str, actor: Any = None, obj: Any = None, object_type: str = "",
                 object_id: str = "", ip: str = "", detail: dict[str, Any] | None = None) -> AuditEvent:
    """Append one audit row. ``actor`` is a user (or None for anonymous/system)."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
    detail = _json_safe(detail or {})
    actor_id = str(actor.pk) if getattr(actor, "pk", None) else ""
    actor_label = getattr(actor, "username", "") if actor_id else ""
    with transaction.atomic():
        AuditChainHead.objects.get_or_create(id=1)
        head = AuditChainHead.objects.select_for_update().get(id=1)
        event = AuditEvent(
            seq=head.seq + 1, occurred_at=timezone.now(), actor_id=actor_id, actor_label=actor_label,
            action=action, object_type=object_type, object_id=object_id, ip=ip or "",
            detail=detail, prev_hash=head.row_hash,
        )
        event.row_hash = row_hash_of(event)
        event.save()
        AuditChainHead.objects.filter(id=1).update(seq=event.seq, row_hash=event.row_hash)
    return event


@dataclass(frozen=True)
class ChainReport:
    checked: int
    first_broken_seq: int | None
    first_broken_id: int | None
    reason: str

    @property
    def ok(self) -> bool:
        return self.first_broken_seq is None


def audit_verify_chain(batch_size: int = 2000) -> ChainReport:
    """Recompute every row's hash in order; report the first row that breaks the chain."""
    prev_hash, expected_seq, checked = GENESIS, 1, 0
    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=batch_size):
        if event.seq != expected_seq:
            return ChainReport(checked, expected_seq, event.id, f"row #{expected_seq} is missing")
        if event.prev_hash != prev_hash:
            return ChainReport(checked, event.seq, event.id, "prev_hash does not match the previous row")
        if row_hash_of(event) != event.row_hash:
            return ChainReport(checked, event.seq, event.id, "row content does not match its hash")
        prev_hash, expected_seq, checked = event.row_hash, expected_seq + 1, checked + 1
    head = AuditChainHead.objects.filter(id=1).first()
    if head and (head.seq != expected_seq - 1 or head.row_hash != prev_hash):
        return ChainReport(checked, expected_seq, None, "rows after the last one were removed")
    return ChainReport(checked, None, None, "")
