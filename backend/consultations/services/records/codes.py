"""The diagnosis code table: CSV import (upsert by system and code), the bundled demo table, search.

An official table (GB/T 15657-2021, the NHSA 医保版, ICD-10 国家临床版) is a data import with the same
columns: ``system,code,name,initials,edition``. ``deactivate_missing`` retires the entries of the
systems present in the file that the file no longer lists (records keep pointing at them; new records
cannot pick them).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backend.consultations.models import DiagnosisCode
from backend.consultations.models.records import CodeSystem
from backend.core.audit import audit_record
from backend.core.errors import ValidationFailed

BUNDLED_CSV = Path(__file__).resolve().parents[2] / "data" / "diagnosis_codes.csv"
COLUMNS = ("system", "code", "name", "initials", "edition")
LIMITS = {"code": 32, "name": 100, "initials": 32, "edition": 64}
FIELDS = ("name", "initials", "edition", "is_active")


@dataclass(frozen=True)
class CodeImportResult:
    created: int
    updated: int
    unchanged: int
    deactivated: int


def _row(line: int, raw: Mapping[str, object]) -> DiagnosisCode:
    values = {c: str(raw.get(c) or "").strip() for c in COLUMNS}
    values["initials"] = values["initials"].upper()
    bad = [c for c in COLUMNS if c != "initials" and not values[c]]
    bad += [c for c, n in LIMITS.items() if len(values[c]) > n]
    if values["system"] not in CodeSystem.values:
        bad.append("system")
    if bad:
        raise ValidationFailed(_("编码表第%(line)d行有误") % {"line": line}, code="code_table_invalid",
                               detail={"line": line, "columns": sorted(set(bad))})
    return DiagnosisCode(is_active=True, **values)


def _parsed(rows: Iterable[Mapping[str, object]]) -> dict[tuple[str, str], DiagnosisCode]:
    parsed: dict[tuple[str, str], DiagnosisCode] = {}
    for line, raw in enumerate(rows, start=2):  # line 1 is the header
        entry = _row(line, raw)
        if (entry.system, entry.code) in parsed:
            raise ValidationFailed(_("编码表第%(line)d行重复") % {"line": line}, code="code_table_duplicate",
                                   detail={"line": line, "system": entry.system, "code": entry.code})
        parsed[(entry.system, entry.code)] = entry
    return parsed


@transaction.atomic
def diagnosis_codes_import(rows: Iterable[Mapping[str, object]], *, deactivate_missing: bool = False,
                           source: str = "") -> CodeImportResult:
    """Upsert every row by (system, code); a listed entry is (re)activated."""
    parsed = _parsed(rows)
    systems = sorted({s for s, _code in parsed})
    existing = {(e.system, e.code): e for e in DiagnosisCode.objects.select_for_update().filter(system__in=systems)}
    now = timezone.now()
    new = [entry for key, entry in parsed.items() if key not in existing]
    changed = []
    for key, entry in parsed.items():
        current = existing.get(key)
        if current is not None and any(getattr(current, f) != getattr(entry, f) for f in FIELDS):
            for f in FIELDS:
                setattr(current, f, getattr(entry, f))
            current.updated_at = now
            changed.append(current)
    DiagnosisCode.objects.bulk_create(new, batch_size=500)
    DiagnosisCode.objects.bulk_update(changed, [*FIELDS, "updated_at"], batch_size=500)
    deactivated = 0
    if deactivate_missing:
        gone = [e.pk for key, e in existing.items() if key not in parsed and e.is_active]
        deactivated = DiagnosisCode.objects.filter(pk__in=gone).update(is_active=False, updated_at=now)
    result = CodeImportResult(created=len(new), updated=len(changed), deactivated=deactivated,
                              unchanged=len(parsed) - len(new) - len(changed))
    audit_record(action="diagnosis_codes.imported", object_type="consultations.diagnosiscode",
                 detail={"source": source, "systems": systems, **asdict(result)})
    return result


def diagnosis_codes_import_csv(path: str | Path, *, deactivate_missing: bool = False) -> CodeImportResult:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValidationFailed(_("编码表缺少列"), code="code_table_invalid", detail={"line": 1, "columns": missing})
        rows = list(reader)
    return diagnosis_codes_import(rows, deactivate_missing=deactivate_missing, source=Path(path).name)


def diagnosis_codes_load_bundled() -> CodeImportResult:
    """The demo table shipped in backend/consultations/data (used by the demo seed and the tests)."""
    return diagnosis_codes_import_csv(BUNDLED_CSV)


def diagnosis_codes_search(*, system: str | None = None, q: str = "", limit: int = 20) -> list[DiagnosisCode]:
    """Active entries whose name contains ``q`` or whose pinyin initials or code start with it."""
    qs = DiagnosisCode.objects.filter(is_active=True)
    if system:
        qs = qs.filter(system=system)
    q = q.strip()
    if q:
        qs = qs.filter(Q(name__contains=q) | Q(initials__istartswith=q) | Q(code__istartswith=q))
    return list(qs.order_by("system", "code")[:limit])
