"""The record's fields: validating a doctor's input, and the canonical content that is signed.

Canonical content (what a signature covers) is a flat JSON object:

* every clinical field: free texts as strings; 舌质/舌苔 as ``{code, label}`` (or null); 脉象 as a list of
  ``{code, label}``; the three diagnoses as ``{system, code, name}`` (or null);
* who and what: ``consultation_id``, ``patient_id``, ``patient_name``, ``doctor_id`` (the DoctorProfile),
  ``doctor_name``;
* the version: ``version``, ``signed_at`` (ISO 8601, UTC, microseconds), ``amendment`` (null for version 1,
  else ``{reason, changed_fields}``) and ``format``.

It is serialised as JSON with sorted keys, ``ensure_ascii=False`` and separators ``(",", ":")``, UTF-8.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _

from backend.consultations.models import ClinicalRecord, DiagnosisCode
from backend.consultations.models.records import CodeSystem
from backend.consultations.vocab import MAX_PULSE_TERMS, PULSE, TONGUE_BODY, TONGUE_COATING
from backend.core.errors import ValidationFailed

CONTENT_FORMAT = "qihuang.clinical-record.v1"
TEXT_LIMITS: dict[str, int] = {
    "chief_complaint": 500, "present_illness": 4000, "past_history": 2000, "allergy_history": 1000,
    "tongue_note": 200, "pulse_note": 200, "treatment_principle": 200, "advice": 4000,
}
CHOICE_FIELDS: dict[str, dict[str, str]] = {"tongue_body": TONGUE_BODY, "tongue_coating": TONGUE_COATING}
CODE_FIELDS: dict[str, str] = {"tcm_disease": CodeSystem.TCM_DISEASE, "tcm_syndrome": CodeSystem.TCM_SYNDROME,
                               "western_diagnosis": CodeSystem.ICD10}
RECORD_FIELDS: tuple[str, ...] = (*TEXT_LIMITS, *CHOICE_FIELDS, "pulse", *CODE_FIELDS)
INPUT_FIELDS: tuple[str, ...] = (*TEXT_LIMITS, *CHOICE_FIELDS, "pulse", *(f"{f}_id" for f in CODE_FIELDS))
IDENTITY_KEYS = ("format", "consultation_id", "patient_id", "doctor_id")


def _invalid(message, code: str, **detail: Any) -> ValidationFailed:
    return ValidationFailed(message, code=code, detail=detail)


def _text(field: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or "\x00" in value:
        raise _invalid(_("病历内容格式有误"), "record_field_invalid", field=field)
    value = value.strip()
    if len(value) > TEXT_LIMITS[field]:
        raise _invalid(_("内容过长"), "record_field_too_long", field=field, max_length=TEXT_LIMITS[field])
    return value


def _choice(field: str, value: Any) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or value not in CHOICE_FIELDS[field]:
        raise _invalid(_("请从列表中选择舌象"), "record_vocab_invalid", field=field, value=str(value)[:32])
    return value


def _pulse(value: Any) -> list[str]:
    if value is None:
        return []
    terms = list(value) if isinstance(value, list | tuple) else [value]
    bad = [str(t)[:32] for t in terms if not isinstance(t, str) or t not in PULSE]
    if bad or not isinstance(value, list | tuple) or len(set(terms)) != len(terms):
        raise _invalid(_("请从列表中选择脉象（不可重复）"), "record_vocab_invalid", field="pulse", value=bad or terms)
    if len(terms) > MAX_PULSE_TERMS:
        raise _invalid(_("脉象最多选择%(n)d项") % {"n": MAX_PULSE_TERMS}, "record_vocab_invalid", field="pulse",
                       max_items=MAX_PULSE_TERMS)
    return terms


def _code(field: str, value: Any) -> DiagnosisCode | None:
    if value in (None, ""):
        return None
    try:
        code = DiagnosisCode.objects.filter(pk=value, system=CODE_FIELDS[field], is_active=True).first()
    except (ValueError, TypeError, DjangoValidationError):
        code = None
    if code is None:
        raise _invalid(_("诊断编码无效或已停用"), "diagnosis_code_invalid", field=f"{field}_id",
                       system=CODE_FIELDS[field])
    return code


def record_input_validated(data: Mapping[str, Any]) -> dict[str, Any]:
    """Model attribute → value for the fields present in ``data`` (codes as DiagnosisCode ids)."""
    unknown = sorted(str(k) for k in set(data) - set(INPUT_FIELDS))
    if unknown:
        raise _invalid(_("病历中没有这些项目"), "record_field_unknown", fields=unknown)
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key in TEXT_LIMITS:
            changes[key] = _text(key, value)
        elif key in CHOICE_FIELDS:
            changes[key] = _choice(key, value)
        elif key == "pulse":
            changes[key] = _pulse(value)
        else:
            field = key.removesuffix("_id")
            changes[field] = _code(field, value)
    return changes


def record_assert_signable(record: ClinicalRecord) -> None:
    """主诉 and a 中医诊断 (病名 and 证型) are required; every code must still be active."""
    missing = [f for f in ("chief_complaint", "tcm_disease", "tcm_syndrome") if not getattr(record, f)]
    if missing:
        raise _invalid(_("签名前请填写主诉和中医诊断（病名与证型）"), "record_incomplete", missing=missing)
    inactive = [f for f in CODE_FIELDS if getattr(record, f) is not None and not getattr(record, f).is_active]
    if inactive:
        raise _invalid(_("诊断编码已停用，请重新选择"), "diagnosis_code_inactive", fields=inactive)


def _term(table: dict[str, str], code: str) -> dict[str, str]:
    return {"code": code, "label": table.get(code, code)}


def record_clinical(record: ClinicalRecord) -> dict[str, Any]:
    """The clinical fields of ``record`` in their signed form."""
    out: dict[str, Any] = {f: getattr(record, f) for f in TEXT_LIMITS}
    for field, table in CHOICE_FIELDS.items():
        out[field] = _term(table, getattr(record, field)) if getattr(record, field) else None
    out["pulse"] = [_term(PULSE, p) for p in record.pulse or []]
    for field in CODE_FIELDS:
        code = getattr(record, field)
        out[field] = {"system": code.system, "code": code.code, "name": code.name} if code else None
    return out


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def record_content(record: ClinicalRecord, *, version: int, signed_at: datetime, reason: str = "",
                   changed_fields: Iterable[str] = ()) -> dict[str, Any]:
    c, doctor = record.consultation, record.doctor
    return {
        **record_clinical(record),
        "format": CONTENT_FORMAT, "consultation_id": str(c.pk), "patient_id": str(c.patient_id),
        "patient_name": c.patient.name, "doctor_id": str(doctor.pk), "doctor_name": str(doctor.user),
        "version": version, "signed_at": iso_utc(signed_at),
        "amendment": {"reason": reason, "changed_fields": list(changed_fields)} if version > 1 else None,
    }


def canonical_bytes(content: Any) -> bytes:
    return json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _essence(key: str, value: Any) -> Any:
    """What must match between the record row and its signed content: codes, not display names."""
    if key in CODE_FIELDS and isinstance(value, dict):
        return [value.get("system"), value.get("code")]
    if key in CHOICE_FIELDS and isinstance(value, dict):
        return value.get("code")
    if key == "pulse" and isinstance(value, list):
        return [p.get("code") if isinstance(p, dict) else p for p in value]
    return value


def content_differences(stored: Mapping[str, Any], record: ClinicalRecord) -> list[str]:
    """The fields where the record's current state does not rebuild ``stored`` (names and labels are
    snapshots: a renamed code or patient does not count; the codes and every text do)."""
    rebuilt = record_content(record, version=0, signed_at=datetime.now(UTC))
    return [k for k in (*RECORD_FIELDS, *IDENTITY_KEYS)
            if _essence(k, stored.get(k)) != _essence(k, rebuilt.get(k))]
