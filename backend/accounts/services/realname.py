"""Real-name verification of 就诊人 (IH-06).

A resident ID is checked online (name + ID number two-factor) through the identity
verifier gateway; other documents go to an operator for a manual check. The
gateway is called outside any transaction; the result is written with a
compare-and-swap on the verification status, so a double tap records one result.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from backend.accounts.idcard import IdType
from backend.accounts.models import PatientProfile, User, VerificationStatus
from backend.accounts.selectors import patient_profile_owned
from backend.core.audit import audit_record
from backend.core.counters import counter_incr
from backend.core.errors import Conflict, TooManyRequests, UpstreamUnavailable
from backend.gateways.errors import GatewayRetryable, GatewayTerminal
from backend.gateways.factory import identity_verifier
from backend.gateways.realname.base import IdentityCheck

OPEN_STATES = (VerificationStatus.UNVERIFIED, VerificationStatus.FAILED)
DAILY_ATTEMPTS_PER_ACCOUNT = 10
OUTCOME_NOTES = {
    "mismatch": _("姓名与证件号码不一致"),
    "no_record": _("未查询到该证件号码"),
}


def _count_attempt(owner: User) -> None:
    key = f"realname:attempts:{owner.pk}:{timezone.localdate().isoformat()}"
    if counter_incr(key, 26 * 3600) > DAILY_ATTEMPTS_PER_ACCOUNT:
        raise TooManyRequests(_("今日实名认证次数已达上限，请明天再试"), code="realname_attempts_exceeded")


def _record(profile: PatientProfile, status: str, *, serial: str = "", note: str = "") -> PatientProfile:
    """Write the result only for the identity that was checked: if the name or document changed
    while the provider was answering, nothing is written and the patient is asked to retry."""
    now = timezone.now()
    with transaction.atomic():
        changed = PatientProfile.objects.filter(
            pk=profile.pk, verification_status__in=OPEN_STATES, archived_at__isnull=True,
            name=profile.name, id_type=profile.id_type, id_number_index=profile.id_number_index,
        ).update(verification_status=status, verification_serial=serial, verification_note=note,
                 verified_at=now if status == VerificationStatus.VERIFIED else None, updated_at=now)
        if changed:
            audit_record(action="patient_profile.verify", actor=profile.owner, obj=profile,
                         detail={"status": status, "serial": serial})
    current = PatientProfile.objects.get(pk=profile.pk)
    if not changed and current.verification_status in OPEN_STATES:
        raise Conflict(_("就诊人信息在认证过程中被修改，请重新认证"), code="profile_changed_during_verification")
    return current


def patient_profile_verify(*, owner: User, profile_id: object) -> PatientProfile:
    profile = patient_profile_owned(owner=owner, profile_id=profile_id)
    if profile.verification_status not in OPEN_STATES:
        return profile  # already verified or waiting for an operator: nothing to do twice
    if profile.id_type != IdType.RESIDENT_ID:
        return _record(profile, VerificationStatus.PENDING_MANUAL, note=str(_("非居民身份证，需人工审核")))
    _count_attempt(owner)
    try:
        result = identity_verifier().verify(IdentityCheck(name=profile.name, id_number=profile.id_number))
    except GatewayRetryable as exc:
        raise UpstreamUnavailable(_("实名认证服务暂时不可用，请稍后重试"), code="realname_unavailable") from exc
    except GatewayTerminal as exc:
        raise UpstreamUnavailable(_("实名认证服务异常，请联系客服"), code="realname_error",
                                  detail={"reason": exc.code}) from exc
    if result.outcome == "match":
        return _record(profile, VerificationStatus.VERIFIED, serial=result.serial_no)
    return _record(profile, VerificationStatus.FAILED, serial=result.serial_no,
                   note=str(OUTCOME_NOTES.get(result.outcome, _("实名认证未通过"))))


def patient_profile_verify_manually(*, profile_id: object, operator: User, approve: bool,
                                    note: str = "") -> PatientProfile:
    """An operator's decision on a document that cannot be checked online."""
    now = timezone.now()
    status = VerificationStatus.VERIFIED if approve else VerificationStatus.FAILED
    with transaction.atomic():
        changed = PatientProfile.objects.filter(
            pk=profile_id, verification_status=VerificationStatus.PENDING_MANUAL
        ).update(verification_status=status, verification_note=note[:200],
                 verified_at=now if approve else None, updated_at=now)
        if not changed:
            raise Conflict(_("该就诊人不在待人工审核状态"), code="profile_not_pending_manual")
        audit_record(action="patient_profile.verify_manual", actor=operator,
                     object_type="accounts.patientprofile", object_id=str(profile_id),
                     detail={"approved": approve})
    return PatientProfile.objects.get(pk=profile_id)
