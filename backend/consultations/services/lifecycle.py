"""The consultation lifecycle: paid → waiting → accepted → ended, cancelled with refunds, terminated (IH-02)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from backend.accounts.services.staff import doctor_assert_may_consult_online
from backend.consultations.events import (
    ConsultationChanged,
    consultation_group,
    department_pool_group,
    doctor_group,
)
from backend.consultations.models import Consultation
from backend.consultations.selectors import consultation_for_doctor, consultation_qs_for_update, doctor_of
from backend.consultations.services.messages import system_message
from backend.consultations.services.refunds import consultation_refund_on_commit
from backend.consultations.states import ConsultStatus, EligibilityStatus
from backend.core.audit import audit_record
from backend.core.errors import Conflict, NotFound, ValidationFailed
from backend.core.publish import account_group, publish_on_commit
from backend.core.transitions import transition


def _announce(consultation: Consultation, *, left_pool: bool = False) -> None:
    """Tell the console (the doctor, or the department pool while unassigned) and the patient's account."""
    c = Consultation.objects.select_related("patient").get(pk=consultation.pk)
    event = ConsultationChanged(consultation_id=str(c.pk), status=c.status, kind=c.kind,
                                doctor_id=str(c.doctor_id) if c.doctor_id else None,
                                department_id=str(c.department_id), patient_name=c.patient.name,
                                waiting_since=c.paid_at.isoformat() if c.paid_at else None)
    publish_on_commit(doctor_group(c.doctor_id) if c.doctor_id else department_pool_group(c.department_id), event)
    if left_pool:
        publish_on_commit(department_pool_group(c.department_id), event)  # taken: leaves the other consoles
    publish_on_commit(account_group(c.account_id), event)
    publish_on_commit(consultation_group(c.pk), event)  # both parties' chat sockets (status frames)


def consultation_on_paid_locked(consultation: Consultation) -> bool:
    """Payments captured the fee (the intent row is locked): the visit joins the doctor's queue.
    False if it was cancelled meanwhile (payments then refunds automatically)."""
    locked = consultation_qs_for_update().get(pk=consultation.pk)
    if locked.status != ConsultStatus.AWAITING_PAYMENT:
        return False
    now = timezone.now()
    transition(Consultation, pk=locked.pk, source=[ConsultStatus.AWAITING_PAYMENT], target=ConsultStatus.WAITING,
               paid_at=now, accept_before=now + timedelta(hours=settings.CONSULT_ACCEPT_HOURS), updated_at=now)
    system_message(locked, _t("已支付，等待医生接诊"), event="paid")
    audit_record(action="consultation.paid", obj=locked)
    _announce(locked)
    return True


def _require_confirmations(c: Consultation, *, prior_confirmed: bool, companions_confirmed: bool) -> None:
    if c.eligibility_status == EligibilityStatus.PENDING_DOCTOR and not prior_confirmed:
        raise ValidationFailed(_("请先核对患者上传的既往诊断证明，确认符合复诊条件"),
                               code="prior_diagnosis_confirmation_required")
    if c.guardian_id and not companions_confirmed:
        raise ValidationFailed(_("请确认患儿的监护人及陪同医师在场"), code="child_companions_confirmation_required")


@transaction.atomic
def consultation_accept(*, user, consultation_id: object, prior_confirmed: bool = False,
                        companions_confirmed: bool = False) -> Consultation:
    """接诊: the doctor takes a waiting visit (their own, or one from the department pool)."""
    doctor = doctor_of(user)
    doctor_assert_may_consult_online(doctor)  # IH-04
    c = consultation_for_doctor(doctor=doctor, consultation_id=consultation_id)
    c = consultation_qs_for_update().get(pk=c.pk)
    if c.status == ConsultStatus.IN_PROGRESS and c.doctor_id == doctor.pk:
        return c  # a double click
    if c.status != ConsultStatus.WAITING or (c.doctor_id and c.doctor_id != doctor.pk):
        raise Conflict(_("该复诊已被接诊或已结束"), code="consultation_not_waiting", detail={"status": c.status})
    from_pool = c.doctor_id is None
    _require_confirmations(c, prior_confirmed=prior_confirmed, companions_confirmed=companions_confirmed)
    now = timezone.now()
    transition(Consultation, pk=c.pk, source=[ConsultStatus.WAITING], target=ConsultStatus.IN_PROGRESS,
               doctor=doctor, accepted_at=now, eligibility_status=EligibilityStatus.CONFIRMED,
               companions_confirmed_at=now if c.guardian_id else None, updated_at=now)
    c.refresh_from_db()
    name = (doctor.user.display_name or doctor.user.username).removesuffix("医生")
    system_message(c, _t("%(name)s医生已接诊") % {"name": name}, event="accepted")
    audit_record(action="consultation.accepted", actor=user, obj=c,
                 detail={"prior_confirmed": prior_confirmed, "companions_confirmed": companions_confirmed})
    _announce(c, left_pool=from_pool)
    return c


def _doctor_locked(user, consultation_id: object, *, pool_ok: bool = False) -> Consultation:
    """The visit under its row lock, re-checked there: another doctor may have accepted it in between."""
    doctor = doctor_of(user)
    c = consultation_qs_for_update().get(pk=consultation_for_doctor(doctor=doctor, consultation_id=consultation_id).pk)
    if c.doctor_id != doctor.pk and not (pool_ok and c.doctor_id is None):
        raise NotFound(_("复诊不存在"), code="consultation_not_found")
    return c


@transaction.atomic
def consultation_reject_eligibility(*, user, consultation_id: object, reason: str) -> Consultation:
    """The doctor does not accept the uploaded proof as a prior diagnosis: cancelled with a full refund."""
    c = _doctor_locked(user, consultation_id, pool_ok=True)
    if c.status != ConsultStatus.WAITING or c.eligibility_status != EligibilityStatus.PENDING_DOCTOR:
        raise Conflict(_("只能对待接诊且待确认资格的复诊操作"), code="eligibility_not_pending")
    if not reason.strip():
        raise ValidationFailed(_("请填写不符合复诊条件的原因"), code="reason_required")
    return _close(c, target=ConsultStatus.CANCELLED, source=ConsultStatus.WAITING, actor=user,
                  reason=_t("不符合复诊条件：%(r)s") % {"r": reason.strip()}, refund=True,
                  eligibility_status=EligibilityStatus.REJECTED, eligibility_note=reason.strip()[:200])


@transaction.atomic
def consultation_cancel(*, account, consultation_id: object, reason: str = "") -> Consultation:
    """The patient cancels before the doctor accepts; a paid visit is refunded in full."""
    c = consultation_qs_for_update().filter(pk=consultation_id, account=account).first()
    if c is None:
        raise NotFound(_("复诊不存在"), code="consultation_not_found")
    if c.status not in (ConsultStatus.AWAITING_PAYMENT, ConsultStatus.WAITING):
        raise Conflict(_("医生已接诊，不能取消"), code="consultation_not_cancellable", detail={"status": c.status})
    if c.status == ConsultStatus.AWAITING_PAYMENT:
        _close_intents_on_commit(c)
    return _close(c, target=ConsultStatus.CANCELLED, source=c.status, actor=account,
                  reason=reason.strip()[:200] or _t("患者取消"), refund=c.status == ConsultStatus.WAITING)


def _close_intents_on_commit(c: Consultation) -> None:
    """No payment is wanted any more: close its open intents (money that still arrives is refunded)."""
    from backend.consultations.payables import KIND
    from payments.tasks import payable_intents_close

    transaction.on_commit(lambda: payable_intents_close.delay(payable_type=KIND, payable_id=str(c.pk),
                                                              reason="复诊已取消"), robust=True)


@transaction.atomic
def consultation_end(*, user, consultation_id: object) -> Consultation:
    """The doctor ends the visit; the follow-up window (追问) opens."""
    c = _doctor_locked(user, consultation_id)
    if c.status == ConsultStatus.ENDED:
        return c
    return _close(c, target=ConsultStatus.ENDED, source=ConsultStatus.IN_PROGRESS, actor=user,
                  reason=_t("医生结束问诊"))


@transaction.atomic
def consultation_terminate(*, user, consultation_id: object, reason: str) -> Consultation:
    """IH-02: the condition needs an in-person examination: stop now and send the patient to the clinic."""
    if not reason.strip():
        raise ValidationFailed(_("请填写终止原因"), code="reason_required")
    c = _doctor_locked(user, consultation_id)
    return _close(c, target=ConsultStatus.TERMINATED, source=ConsultStatus.IN_PROGRESS, actor=user,
                  reason=_t("病情需线下就诊：%(r)s") % {"r": reason.strip()},
                  refund=settings.CONSULT_REFUND_ON_TERMINATION)


def _close(c: Consultation, *, target: str, source: str, actor, reason: str, refund: bool = False,
           **fields) -> Consultation:
    """One way out of an open visit: the status (compare-and-swap), a system message, audit, refund, events."""
    now = timezone.now()
    if target == ConsultStatus.ENDED:
        fields["follow_up_until"] = now + timedelta(hours=settings.CONSULT_FOLLOW_UP_HOURS)
    if refund:
        fields["refund_due"] = True  # the obligation commits with the cancellation (services/refunds.py)
    transition(Consultation, pk=c.pk, source=[source], target=target, ended_at=now, end_reason=reason[:200],
               updated_at=now, **fields)
    c.refresh_from_db()
    system_message(c, reason, event=target)
    audit_record(action=f"consultation.{target}", actor=actor, obj=c, detail={"reason": reason[:200],
                                                                              "refund": refund})
    if refund:
        consultation_refund_on_commit(c, reason)
    _announce(c)
    return c


def consultations_expire_due(*, limit: int = 200) -> int:
    """Unpaid past the payment window → cancelled; not accepted in time → cancelled and refunded."""
    now = timezone.now()
    unpaid = Consultation.objects.filter(status=ConsultStatus.AWAITING_PAYMENT, pay_before__lte=now)
    unaccepted = Consultation.objects.filter(status=ConsultStatus.WAITING, accept_before__lte=now)
    done = 0
    for pk in list(unpaid.values_list("pk", flat=True)[:limit]):
        done += _expire_one(pk, ConsultStatus.AWAITING_PAYMENT, _t("支付超时，复诊已取消"), refund=False,
                            still_due=lambda c: c.pay_before <= timezone.now())
    for pk in list(unaccepted.values_list("pk", flat=True)[:limit]):
        done += _expire_one(pk, ConsultStatus.WAITING, _t("医生未在规定时间内接诊，已全额退款"), refund=True,
                            still_due=lambda c: c.accept_before <= timezone.now())
    return done


def consultations_end_idle(*, limit: int = 200) -> int:
    """In progress with no message for CONSULT_IDLE_END_HOURS → ended (the follow-up window opens)."""
    cutoff = timezone.now() - timedelta(hours=settings.CONSULT_IDLE_END_HOURS)
    idle = Consultation.objects.filter(status=ConsultStatus.IN_PROGRESS, last_activity_at__lte=cutoff)
    return sum(_expire_one(pk, ConsultStatus.IN_PROGRESS, _t("长时间无新消息，问诊已自动结束"), refund=False,
                           target=ConsultStatus.ENDED, still_due=lambda c: c.last_activity_at <= cutoff)
               for pk in list(idle.values_list("pk", flat=True)[:limit]))


@transaction.atomic
def _expire_one(pk: object, source: str, reason: str, *, refund: bool, still_due,
                target: str = ConsultStatus.CANCELLED) -> int:
    """Re-checked under the row lock: the visit may have been paid, accepted or messaged since it was listed."""
    c = consultation_qs_for_update().get(pk=pk)
    if c.status != source or not still_due(c):
        return 0
    _close(c, target=target, source=source, actor=None, reason=reason, refund=refund)
    return 1
