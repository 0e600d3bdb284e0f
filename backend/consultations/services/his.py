"""The hospital information system (HIS) feeds its offline visits: the basis of a follow-up (IH-01/IH-03)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from backend.accounts.idcard import normalize_id_number
from backend.consultations.models import OfflineVisit
from backend.core.audit import audit_record
from backend.core.errors import ValidationFailed

FIELDS = ("patient_name", "visit_date", "department_name", "doctor_name", "tcm_diagnosis", "tcm_diagnosis_code",
          "western_diagnosis", "icd10_code", "is_chronic")


@dataclass(frozen=True)
class VisitRow:
    his_visit_no: str
    patient_name: str
    id_number: str
    visit_date: date
    department_name: str
    doctor_name: str = ""
    tcm_diagnosis: str = ""
    tcm_diagnosis_code: str = ""
    western_diagnosis: str = ""
    icd10_code: str = ""
    is_chronic: bool = False


@transaction.atomic
def offline_visits_import(*, rows: list[VisitRow], source_ip: str = "") -> dict[str, int]:
    """Upsert by the HIS visit number (a re-sent batch changes nothing twice); all or nothing."""
    created = updated = 0
    for i, row in enumerate(rows):
        if not (row.tcm_diagnosis or row.western_diagnosis):
            raise ValidationFailed(_("就诊记录缺少诊断"), code="his_visit_without_diagnosis", detail={"row": i})
        visit = OfflineVisit.objects.select_for_update().filter(his_visit_no=row.his_visit_no).first()
        if visit is None:
            visit, created = OfflineVisit(his_visit_no=row.his_visit_no), created + 1
        else:
            updated += 1
        for name in FIELDS:
            setattr(visit, name, getattr(row, name))
        visit.id_number = normalize_id_number(row.id_number)
        visit.save()
    audit_record(action="his.offline_visits_imported", ip=source_ip,
                 detail={"created": created, "updated": updated, "rows": len(rows)})
    return {"created": created, "updated": updated}
