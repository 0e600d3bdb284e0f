"""就诊人 (patient profiles) of the logged-in account: CRUD and real-name verification."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from django.utils import timezone
from ninja import Router, Schema, Status
from ninja.pagination import PageNumberPagination, paginate

from backend.accounts.idcard import IdType, Sex
from backend.accounts.models import PatientProfile, Relation, VerificationStatus
from backend.accounts.services.patients import (
    ProfileInput,
    patient_profile_archive,
    patient_profile_create,
    patient_profile_read,
    patient_profile_update,
    patient_profiles_read,
)
from backend.accounts.services.realname import patient_profile_verify
from backend.core.authz import client_ip
from miniprogram_api.auth import access_token_auth
from miniprogram_api.errors import ERRORS
from miniprogram_api.schemas import text

router = Router(tags=["patients"], auth=access_token_auth)


class ProfileCreateIn(Schema):
    name: text(64, 1)
    id_type: IdType = IdType.RESIDENT_ID
    id_number: text(32, 1)
    sex: Sex | None = None
    birth_date: date | None = None
    phone: text(20) | None = None
    relation: Relation
    is_default: bool = False
    allergies: text(500) = ""
    guardian_id: UUID | None = None


class ProfilePatchIn(Schema):
    name: text(64, 1) | None = None
    id_type: IdType | None = None
    id_number: text(32, 1) | None = None
    sex: Sex | None = None
    birth_date: date | None = None
    phone: text(20) | None = None
    relation: Relation | None = None
    is_default: bool | None = None
    allergies: text(500) | None = None
    guardian_id: UUID | None = None


class ProfileOut(Schema):
    id: UUID
    name: str
    id_type: IdType
    id_number_masked: str
    sex: Sex
    birth_date: date
    age: int
    phone_masked: str
    relation: Relation
    is_default: bool
    allergies: str
    guardian_id: UUID | None
    verification_status: VerificationStatus
    verification_note: str
    verified_at: datetime | None
    created_at: datetime

    @staticmethod
    def resolve_age(obj: PatientProfile) -> int:
        return obj.age(timezone.localdate())


def _input(payload: Schema, *, partial: bool) -> ProfileInput:
    """Creation takes the schema defaults too; a PATCH only what was sent."""
    return ProfileInput(**payload.dict(exclude_unset=partial))


@router.get("/patients", response={200: list[ProfileOut], **ERRORS}, summary="List my 就诊人")
@paginate(PageNumberPagination, page_size=20)
def list_profiles(request, **kwargs):
    return patient_profiles_read(owner=request.auth, ip=client_ip(request))


@router.post("/patients", response={201: ProfileOut, **ERRORS}, summary="Add a 就诊人")
def create_profile(request, payload: ProfileCreateIn):
    profile = patient_profile_create(owner=request.auth, data=_input(payload, partial=False), ip=client_ip(request))
    return Status(201, profile)


@router.get("/patients/{profile_id}", response={200: ProfileOut, **ERRORS}, summary="One 就诊人")
def get_profile(request, profile_id: UUID):
    return patient_profile_read(owner=request.auth, profile_id=profile_id, ip=client_ip(request))


@router.patch("/patients/{profile_id}", response={200: ProfileOut, **ERRORS}, summary="Change a 就诊人")
def update_profile(request, profile_id: UUID, payload: ProfilePatchIn):
    return patient_profile_update(owner=request.auth, profile_id=profile_id, data=_input(payload, partial=True),
                                  ip=client_ip(request))


@router.delete("/patients/{profile_id}", response={204: None, **ERRORS}, summary="Remove a 就诊人")
def delete_profile(request, profile_id: UUID):
    patient_profile_archive(owner=request.auth, profile_id=profile_id, ip=client_ip(request))
    return Status(204, None)


@router.post("/patients/{profile_id}/verify", response={200: ProfileOut, **ERRORS},
             summary="Real-name verify a 就诊人 (name + ID number)")
def verify_profile(request, profile_id: UUID):
    return patient_profile_verify(owner=request.auth, profile_id=profile_id)
