"""Verifying a record: every signed version, and the record row against its latest version."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext_lazy as _

from backend.consultations.models import ClinicalRecord, ClinicalRecordVersion
from backend.consultations.services.records.fields import canonical_bytes, content_differences, iso_utc
from backend.consultations.states import RecordStatus
from backend.core.crypto import sm3_hex
from backend.core.errors import NotFound
from backend.core.models import AuditEvent
from backend.core.sm2 import sm2_verify


@dataclass(frozen=True)
class VersionCheck:
    version: int
    digest_ok: bool
    signature_ok: bool
    problem: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordVerification:
    consultation_id: str
    valid: bool
    versions: tuple[VersionCheck, ...]
    problem: str = ""  # the first problem found, "" when valid
    detail: dict[str, Any] = field(default_factory=dict)


def _metadata_mismatches(v: ClinicalRecordVersion) -> list[str]:
    """Row columns that disagree with what was signed (the content), or a key that is not the signer's."""
    content = v.content if isinstance(v.content, dict) else {}
    amendment = content.get("amendment") if isinstance(content.get("amendment"), dict) else {}
    checks = {
        "version": content.get("version") == v.version,
        "signed_at": content.get("signed_at") == iso_utc(v.signed_at),
        "reason": amendment.get("reason", "") == v.reason,
        "key": v.key.owner_id == v.signed_by_id,
    }
    return [name for name, ok in checks.items() if not ok]


def version_check(v: ClinicalRecordVersion) -> VersionCheck:
    message = canonical_bytes(v.content)
    digest_ok = sm3_hex(message) == v.digest
    signature_ok = sm2_verify(v.key.public_key, message, v.signature)
    mismatches = _metadata_mismatches(v)
    if not digest_ok:
        return VersionCheck(v.version, digest_ok, signature_ok, "version_digest_mismatch")
    if not signature_ok:
        return VersionCheck(v.version, digest_ok, signature_ok, "version_signature_invalid")
    if mismatches:
        return VersionCheck(v.version, digest_ok, signature_ok, "version_metadata_mismatch", {"fields": mismatches})
    return VersionCheck(v.version, digest_ok, signature_ok)


SIGNING_ACTIONS = ("consultation.record_signed", "consultation.record_amended")


def _audited_versions(record: ClinicalRecord) -> dict[int, tuple[str, str]]:
    """version → (digest, key id) as the hash-chained audit log saw each signature when it was made."""
    rows = AuditEvent.objects.filter(action__in=SIGNING_ACTIONS, object_type="consultations.consultation",
                                     object_id=str(record.consultation_id)).values_list("detail", flat=True)
    return {int(d["version"]): (d.get("digest", ""), d.get("key", "")) for d in rows
            if isinstance(d, dict) and d.get("record") == str(record.pk) and str(d.get("version", "")).isdigit()}


def _audited_key(key_id: object) -> str:
    row = AuditEvent.objects.filter(action="signing_key.created", object_id=str(key_id)).values_list(
        "detail", flat=True).first()
    return (row or {}).get("public_key", "")


def _provenance_problem(record: ClinicalRecord, versions: list[ClinicalRecordVersion]) -> tuple[str, dict[str, Any]]:
    """Each version belongs to this visit, was audited with this digest and key when signed, and its key's
    public key is the one audited at its creation: a swapped, re-signed, removed or added version is caught."""
    audited = _audited_versions(record)
    if sorted(audited) != [v.version for v in versions]:
        return "versions_differ_from_audit_log", {"audited": sorted(audited), "stored": [v.version for v in versions]}
    identity = {"consultation_id": str(record.consultation_id), "patient_id": str(record.consultation.patient_id),
                "doctor_id": str(record.doctor_id)}
    for v in versions:
        content = v.content if isinstance(v.content, dict) else {}
        if any(content.get(k) != want for k, want in identity.items()):
            return "version_of_another_record", {"version": v.version}
        if audited[v.version] != (v.digest, str(v.key_id)):
            return "version_differs_from_audit_log", {"version": v.version}
        if v.key.created_at > v.signed_at or _audited_key(v.key_id) != v.key.public_key:
            return "signing_key_not_trusted", {"version": v.version}
    return "", {}


def _record_problem(record: ClinicalRecord, versions: list[ClinicalRecordVersion]) -> tuple[str, dict[str, Any]]:
    numbers = [v.version for v in versions]
    if not versions:
        return "record_not_signed", {}
    if numbers != list(range(1, len(numbers) + 1)):
        return "version_sequence_broken", {"versions": numbers}
    problem = _provenance_problem(record, versions)
    if problem[0]:
        return problem
    if record.status != RecordStatus.SIGNED or record.version != numbers[-1]:
        return "record_state_mismatch", {"status": record.status, "version": record.version, "latest": numbers[-1]}
    stored = versions[-1].content if isinstance(versions[-1].content, dict) else {}
    differences = content_differences(stored, record)
    if differences:
        return "record_differs_from_signed_version", {"version": numbers[-1], "fields": differences}
    return "", {}


def record_verify(*, consultation_id: object) -> RecordVerification:
    """Recompute each version's digest from its stored content and check its SM2 signature with its key's
    public key; then check that the record row rebuilds the latest version. Detects a silent edit of the
    record row, of a version's content, digest, signature or columns, and a removed version."""
    record = (ClinicalRecord.objects.select_related("consultation__patient", "doctor__user", "tcm_disease",
                                                    "tcm_syndrome", "western_diagnosis")
              .filter(consultation_id=consultation_id).first())
    if record is None:
        raise NotFound(_("尚未书写病历"), code="record_not_found")
    versions = list(ClinicalRecordVersion.objects.filter(record=record).select_related("key").order_by("version"))
    checks = tuple(version_check(v) for v in versions)
    first = next((c for c in checks if c.problem), None)
    if first is not None:
        problem, detail = first.problem, {"version": first.version, **first.detail}
    else:
        problem, detail = _record_problem(record, versions)
    return RecordVerification(consultation_id=str(consultation_id), valid=not problem, versions=checks,
                              problem=problem, detail=detail)
