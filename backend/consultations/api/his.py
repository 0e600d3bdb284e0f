"""The HIS import endpoint: machine-to-machine, a bearer token from the environment (HIS_IMPORT_TOKEN)."""

from __future__ import annotations

import hmac
from datetime import date

from django.conf import settings
from ninja import Router, Schema
from ninja.security import HttpBearer
from pydantic import Field

from backend.consultations.services.his import VisitRow, offline_visits_import
from backend.core.authz import client_ip
from miniprogram_api.errors import ERRORS
from miniprogram_api.schemas import text


class HisToken(HttpBearer):
    openapi_description = "The HIS_IMPORT_TOKEN shared with the hospital information system"

    def authenticate(self, request, token: str):
        expected = settings.HIS_IMPORT_TOKEN
        if expected and hmac.compare_digest(token.encode(), expected.encode()):
            return "his"
        return None


router = Router(tags=["his"], auth=HisToken())


class VisitIn(Schema):
    his_visit_no: text(64, 1)
    patient_name: text(64, 1)
    id_number: text(32, 1)
    visit_date: date
    department_name: text(64, 1)
    doctor_name: text(64) = ""
    tcm_diagnosis: text(200) = ""
    tcm_diagnosis_code: text(32) = ""
    western_diagnosis: text(200) = ""
    icd10_code: text(16) = ""
    is_chronic: bool = False


class BatchIn(Schema):
    visits: list[VisitIn] = Field(min_length=1, max_length=500)


class BatchOut(Schema):
    created: int
    updated: int


@router.post("/his/offline-visits", response={200: BatchOut, **ERRORS},
             summary="The HIS posts offline visits with their diagnoses (upsert by visit number, ≤ 500 per batch)")
def import_visits(request, payload: BatchIn):
    rows = [VisitRow(**v.dict()) for v in payload.visits]
    return offline_visits_import(rows=rows, source_ip=client_ip(request))
