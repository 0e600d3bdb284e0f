"""就诊人 (patient profiles): create, update, archive, real-name verification (IH-06, IH-13)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, fields
from datetime import date

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backend.accounts.idcard import (
    IdType,
    InvalidIdNumber,
    normalize_id_number,
    parse_resident_id,
    validate_other_document,
)
from backend.accounts.models import PatientProfile, Relation, User, VerificationStatus
from backend.accounts.selectors import patient_profile_owned, patient_profiles_of
from backend.core.audit import audit_record
from backend.core.errors import Conflict, ValidationFailed

_NAME_RE = re.compile(r"^[\u3400-\u9fffA-Za-z][\u3400-\u9fffA-Za-z·•.\- ]{0,63}$")
_MOBILE_RE = re.compile(r"^1[3-9][0-9]{9}$")
IDENTITY_FIELDS = ("name", "id_type", "id_number", "sex", "birth_date")


@dataclass
class ProfileInput:
    """What a patient may set; ``None`` means "not given" on update."""

    name: str | None = None
    id_type: str | None = None
    id_number: str | None = None
    sex: str | None = None
    birth_date: date | None = None
    phone: str | None = None
    relation: str | None = None
    is_default: bool | None = None
    allergies: str | None = None
    guardian_id: object | None = None

    def given(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


def _clean_identity(profile: PatientProfile, today: date) -> None:
    name = (profile.name or "").strip()
    if not _NAME_RE.match(name):
        raise ValidationFailed(_("请填写证件上的真实姓名"), code="name_invalid", detail={"field": "name"})
    profile.name = name
    try:
        if profile.id_type == IdType.RESIDENT_ID:
            facts = parse_resident_id(profile.id_number, today)
            profile.id_number = normalize_id_number(profile.id_number)
            profile.sex, profile.birth_date = facts.sex, facts.birth_date
        else:
            profile.id_number = validate_other_document(profile.id_type, profile.id_number)
    except InvalidIdNumber as exc:
        raise ValidationFailed(exc.message, code=exc.code, detail={"field": "id_number"}) from exc
    if not profile.sex or not profile.birth_date:
        raise ValidationFailed(_("请填写性别和出生日期"), code="sex_and_birth_date_required",
                               detail={"field": "birth_date"})
    if profile.birth_date > today:
        raise ValidationFailed(_("出生日期不能晚于今天"), code="birth_date_invalid", detail={"field": "birth_date"})


def _clean_phone(profile: PatientProfile) -> None:
    if profile.phone:
        profile.phone = unicodedata.normalize("NFKC", profile.phone).strip()
    if profile.phone and not _MOBILE_RE.match(profile.phone):
        raise ValidationFailed(_("请输入11位手机号码"), code="phone_invalid", detail={"field": "phone"})


def _clean_guardian(profile: PatientProfile, guardian_id: object | None, today: date) -> None:
    """A child under the guardian age (6, IH-13) records a verified adult 就诊人 of the same account."""
    if profile.age(today) >= settings.GUARDIAN_REQUIRED_UNDER_AGE:
        profile.guardian = None
        return
    if guardian_id is None and profile.guardian_id is None:
        raise ValidationFailed(_("6岁以下儿童须指定已实名的成年监护人"), code="guardian_required",
                               detail={"field": "guardian_id"})
    if guardian_id is not None:
        guardian = patient_profiles_of(profile.owner).filter(pk=guardian_id).exclude(pk=profile.pk).first()
        if guardian is None or not guardian.is_verified or guardian.age(today) < settings.ADULT_AGE:
            raise ValidationFailed(_("监护人须为本账户下已实名的成年就诊人"), code="guardian_invalid",
                                   detail={"field": "guardian_id"})
        profile.guardian = guardian


def _apply(profile: PatientProfile, data: ProfileInput) -> None:
    for key, value in data.given().items():
        if key != "guardian_id":
            setattr(profile, key, value.strip() if isinstance(value, str) else value)


def _save(profile: PatientProfile, owner: User) -> None:
    if profile.is_default:
        patient_profiles_of(owner).exclude(pk=profile.pk).filter(is_default=True).update(is_default=False)
    try:
        with transaction.atomic():
            profile.save()
    except IntegrityError as exc:
        raise Conflict(_("该证件号码的就诊人已存在"), code="profile_duplicate_id_number",
                       detail={"field": "id_number"}) from exc


def _check_unique(owner: User, profile: PatientProfile) -> None:
    index = PatientProfile._meta.get_field("id_number_index").index_of(profile.id_number)
    if patient_profiles_of(owner).filter(id_number_index=index).exclude(pk=profile.pk).exists():
        raise Conflict(_("该证件号码的就诊人已存在"), code="profile_duplicate_id_number",
                       detail={"field": "id_number"})
    if profile.relation == Relation.SELF and (
        patient_profiles_of(owner).filter(relation=Relation.SELF).exclude(pk=profile.pk).exists()
    ):
        raise Conflict(_("账户下已有“本人”就诊人"), code="profile_self_exists", detail={"field": "relation"})


@transaction.atomic
def patient_profile_create(*, owner: User, data: ProfileInput, ip: str = "") -> PatientProfile:
    User.objects.select_for_update().filter(pk=owner.pk).first()  # serialise one account's changes
    existing = patient_profiles_of(owner).count()
    if existing >= settings.MAX_PATIENT_PROFILES_PER_ACCOUNT:
        raise Conflict(_("每个账户最多添加%(n)d位就诊人") % {"n": settings.MAX_PATIENT_PROFILES_PER_ACCOUNT},
                       code="profile_limit_reached", detail={"limit": settings.MAX_PATIENT_PROFILES_PER_ACCOUNT})
    today = timezone.localdate()
    profile = PatientProfile(owner=owner, is_default=False, allergies="")
    _apply(profile, data)
    profile.is_default = bool(data.is_default) or existing == 0
    _clean_identity(profile, today)
    _clean_phone(profile)
    _clean_guardian(profile, data.guardian_id, today)
    _check_unique(owner, profile)
    _save(profile, owner)
    audit_record(action="patient_profile.create", actor=owner, obj=profile, ip=ip)
    return profile


@transaction.atomic
def patient_profile_update(*, owner: User, profile_id: object, data: ProfileInput, ip: str = "") -> PatientProfile:
    User.objects.select_for_update().filter(pk=owner.pk).first()
    profile = patient_profile_owned(owner=owner, profile_id=profile_id)
    before = {k: getattr(profile, k) for k in IDENTITY_FIELDS}
    was_default = profile.is_default
    _apply(profile, data)
    identity_changed = any(getattr(profile, k) != v for k, v in before.items())
    if identity_changed and profile.verification_status in (VerificationStatus.VERIFIED,
                                                            VerificationStatus.PENDING_MANUAL):
        raise Conflict(_("已实名的就诊人不能修改姓名和证件信息"), code="profile_identity_locked")
    today = timezone.localdate()
    _clean_identity(profile, today)
    _clean_phone(profile)
    _clean_guardian(profile, data.guardian_id, today)
    _check_unique(owner, profile)
    if identity_changed:
        profile.verification_status = VerificationStatus.UNVERIFIED
        profile.verification_note = ""
    if was_default:
        profile.is_default = True  # the default moves only by making another profile the default
    _save(profile, owner)
    audit_record(action="patient_profile.update", actor=owner, obj=profile, ip=ip,
                 detail={"fields": sorted(data.given())})
    return profile


@transaction.atomic
def patient_profile_archive(*, owner: User, profile_id: object, ip: str = "") -> None:
    """Removes the profile from the account; the row stays for the records it may carry (IH-20)."""
    User.objects.select_for_update().filter(pk=owner.pk).first()
    profile = patient_profile_owned(owner=owner, profile_id=profile_id)
    if patient_profiles_of(owner).filter(guardian=profile).exists():
        raise Conflict(_("该就诊人是其他就诊人的监护人，请先更换监护人"), code="profile_is_guardian")
    PatientProfile.objects.filter(pk=profile.pk).update(archived_at=timezone.now(), is_default=False)
    if profile.is_default:
        successor = patient_profiles_of(owner).order_by("created_at").first()
        if successor:
            PatientProfile.objects.filter(pk=successor.pk).update(is_default=True)
    audit_record(action="patient_profile.archive", actor=owner, obj=profile, ip=ip)



def patient_profiles_read(*, owner: User, ip: str = "") -> list[PatientProfile]:
    """The owner's 就诊人, with the read written to the audit log."""
    profiles = list(patient_profiles_of(owner))
    audit_record(action="patient_profile.list", actor=owner, ip=ip, detail={"ids": [str(p.pk) for p in profiles]})
    return profiles


def patient_profile_read(*, owner: User, profile_id: object, ip: str = "") -> PatientProfile:
    profile = patient_profile_owned(owner=owner, profile_id=profile_id)
    audit_record(action="patient_profile.read", actor=owner, obj=profile, ip=ip)
    return profile
