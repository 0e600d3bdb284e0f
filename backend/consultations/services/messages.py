"""The message stream of a consultation: numbered, persisted before broadcast, idempotent, rate-limited."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from backend.consultations.events import ChatMessage, consultation_group
from backend.consultations.models import Consultation, MediaFile, Message
from backend.consultations.selectors import consultation_party_role, consultation_qs_for_update
from backend.consultations.services.media import media_signed_url
from backend.consultations.states import (
    DOCTOR_SENDABLE,
    PATIENT_SENDABLE,
    ConsultStatus,
    MediaPurpose,
    MessageKind,
    SenderRole,
    TongueView,
)
from backend.core.audit import audit_record
from backend.core.counters import counter_incr
from backend.core.errors import Conflict, NotFound, TooManyRequests, ValidationFailed
from backend.core.publish import publish_on_commit

MEDIA_KINDS = (MessageKind.IMAGE, MessageKind.TONGUE_PHOTOS)


def message_event(message: Message) -> ChatMessage:
    return ChatMessage(consultation_id=str(message.consultation_id), seq=message.seq, kind=message.kind,
                       sender_role=message.sender_role, body=message.body, payload=_with_urls(message),
                       created_at=message.created_at.isoformat(), client_msg_id=message.client_msg_id,
                       recalled=message.recalled_at is not None)


def _with_urls(message: Message) -> dict[str, Any]:
    """Media ids get a short-lived signed URL at delivery time (a replay gets fresh ones)."""
    payload = dict(message.payload or {})
    if message.kind == MessageKind.IMAGE and payload.get("media_id"):
        payload["url"] = media_signed_url(payload["media_id"])
    if message.kind == MessageKind.TONGUE_PHOTOS:
        payload["urls"] = {view: media_signed_url(mid) for view, mid in (payload.get("photos") or {}).items()}
    return payload


def _append(consultation: Consultation, *, role: str, kind: str, body: str = "", payload: dict | None = None,
            sender=None, client_msg_id: str = "") -> Message:
    """Caller holds the consultation's row lock, so sequence numbers are gap-free and in commit order."""
    Consultation.objects.filter(pk=consultation.pk).update(last_seq=F("last_seq") + 1,
                                                           last_activity_at=timezone.now())
    seq = Consultation.objects.filter(pk=consultation.pk).values_list("last_seq", flat=True).get()
    message = Message.objects.create(consultation=consultation, seq=seq, sender=sender, sender_role=role, kind=kind,
                                     body=body, payload=payload or {}, client_msg_id=client_msg_id,
                                     created_at=timezone.now())
    consultation.last_seq = seq
    publish_on_commit(consultation_group(consultation.pk), message_event(message))
    return message


def system_message(consultation: Consultation, text: str, **payload: Any) -> Message:
    return _append(consultation, role=SenderRole.SYSTEM, kind=MessageKind.SYSTEM, body=str(text), payload=payload)


def _rate_limit(consultation_id: object, user_id: object) -> None:
    limit, seconds = (int(x) for x in settings.CONSULT_MESSAGE_RATE.split("/"))
    if counter_incr(f"consult-rate:{consultation_id}:{user_id}", seconds) > limit:
        raise TooManyRequests(_("发送过于频繁，请稍后再试"), code="message_rate_limited")


def _check_open(consultation: Consultation, role: str) -> None:
    """Who may write when: the patient may describe while waiting; both talk in progress; after the end,
    a follow-up window (追问) with a few patient messages."""
    now = timezone.now()
    if consultation.status == ConsultStatus.IN_PROGRESS:
        return
    if consultation.status == ConsultStatus.WAITING and role == SenderRole.PATIENT:
        return
    if (consultation.status == ConsultStatus.ENDED and consultation.follow_up_until
            and now <= consultation.follow_up_until):
        if role == SenderRole.DOCTOR:
            return
        if consultation.follow_up_used < settings.CONSULT_FOLLOW_UP_MESSAGES:
            Consultation.objects.filter(pk=consultation.pk).update(follow_up_used=F("follow_up_used") + 1)
            return
        raise Conflict(_("追问次数已用完"), code="follow_up_used_up",
                       detail={"limit": settings.CONSULT_FOLLOW_UP_MESSAGES})
    raise Conflict(_("当前复诊状态不能发送消息"), code="consultation_not_open",
                   detail={"status": consultation.status})


def _uuid(value: object) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as exc:
        raise ValidationFailed(_("图片无效，请重新上传"), code="message_media_invalid") from exc


def _media_ids(payload: dict, kind: str) -> list[str]:
    if kind == MessageKind.IMAGE:
        return [_uuid(payload.get("media_id", ""))]
    return [_uuid(v) for v in (payload.get("photos") or {}).values()]


def _clean_payload(consultation: Consultation, sender, kind: str, payload: dict) -> dict:
    if kind == MessageKind.TONGUE_REQUEST:
        views = payload.get("views") or [TongueView.SURFACE, TongueView.UNDERSIDE]
        if not isinstance(views, list) or not views or any(v not in TongueView.values for v in views):
            raise ValidationFailed(_("舌象照片请求无效"), code="tongue_request_invalid")
        return {"views": list(dict.fromkeys(views))}
    if kind == MessageKind.IMAGE:
        payload = {"media_id": _uuid(payload.get("media_id", ""))}
    if kind == MessageKind.TONGUE_PHOTOS:
        payload = _clean_tongue_answer(consultation, payload)
    purpose = MediaPurpose.TONGUE if kind == MessageKind.TONGUE_PHOTOS else MediaPurpose.CHAT_IMAGE
    ids = _media_ids(payload, kind)
    found = MediaFile.objects.filter(pk__in=ids, consultation=consultation,
                                     uploader=sender, purpose=purpose, purged_at__isnull=True).count()
    if found != len(set(ids)):
        raise ValidationFailed(_("图片无效，请重新上传"), code="message_media_invalid")
    return payload


def _clean_tongue_answer(consultation: Consultation, payload: dict) -> dict:
    seq = payload.get("request_seq")
    request = Message.objects.filter(consultation=consultation, seq=seq, kind=MessageKind.TONGUE_REQUEST).first() \
        if isinstance(seq, int) and not isinstance(seq, bool) and 0 < seq < 2**31 else None
    photos = payload.get("photos")
    if request is None or not isinstance(photos, dict):
        raise ValidationFailed(_("请针对医生的舌象照片请求上传照片"), code="tongue_answer_invalid")
    missing = [v for v in request.payload.get("views", []) if v not in photos]
    if missing or any(v not in TongueView.values for v in photos):
        raise ValidationFailed(_("请按要求上传舌面和舌下照片"), code="tongue_answer_incomplete",
                               detail={"missing": missing})
    return {"request_seq": request.seq, "photos": {k: str(v) for k, v in photos.items()}}


@transaction.atomic
def message_post(*, user, consultation_id: object, kind: str, body: str = "", payload: dict | None = None,
                 client_msg_id: str = "") -> tuple[Message, bool]:
    """Post a message as the patient or the doctor. Returns (message, created); a resend with the
    same ``client_msg_id`` returns the stored message and broadcasts nothing."""
    consultation = consultation_qs_for_update().select_related("doctor").filter(pk=consultation_id).first()
    role = consultation_party_role(consultation, user) if consultation else None
    if role is None:
        raise NotFound(_("复诊不存在"), code="consultation_not_found")
    if client_msg_id:
        existing = Message.objects.filter(consultation=consultation, sender=user, client_msg_id=client_msg_id).first()
        if existing is not None:
            return existing, False
    allowed = PATIENT_SENDABLE if role == SenderRole.PATIENT else DOCTOR_SENDABLE
    if kind not in allowed:
        raise ValidationFailed(_("不支持的消息类型"), code="message_kind_invalid", detail={"allowed": list(allowed)})
    body = (body or "").strip()
    if len(body) > settings.CONSULT_MAX_MESSAGE_CHARS:
        raise ValidationFailed(_("消息过长"), code="message_too_long",
                               detail={"max_chars": settings.CONSULT_MAX_MESSAGE_CHARS})
    if kind == MessageKind.TEXT and not body:
        raise ValidationFailed(_("消息不能为空"), code="message_empty")
    clean = _clean_payload(consultation, user, kind, payload or {}) if kind != MessageKind.TEXT else {}
    _rate_limit(consultation.pk, user.pk)
    _check_open(consultation, role)
    message = _append(consultation, role=role, kind=kind, body=body, payload=clean, sender=user,
                      client_msg_id=client_msg_id[:64])
    return message, True


@transaction.atomic
def message_recall(*, user, consultation_id: object, seq: int) -> Message:
    """The sender takes a message back within CONSULT_RECALL_SECONDS; the original stays in the audit log."""
    consultation = consultation_qs_for_update().select_related("doctor").filter(pk=consultation_id).first()
    role = consultation_party_role(consultation, user) if consultation else None
    message = Message.objects.filter(consultation_id=consultation_id, seq=seq, sender=user).first() if role else None
    if message is None or message.kind not in (MessageKind.TEXT, *MEDIA_KINDS):
        raise NotFound(_("消息不存在"), code="message_not_found")
    if message.recalled_at is not None:
        raise Conflict(_("消息已撤回"), code="message_already_recalled")
    if timezone.now() - message.created_at > timedelta(seconds=settings.CONSULT_RECALL_SECONDS):
        raise Conflict(_("超过%(n)d分钟的消息不能撤回") % {"n": settings.CONSULT_RECALL_SECONDS // 60},
                       code="message_recall_too_late")
    audit_record(action="consultation.message_recalled", actor=user, obj=consultation,
                 detail={"seq": seq, "kind": message.kind, "body": message.body, "payload": message.payload})
    Message.objects.filter(pk=message.pk).update(recalled_at=timezone.now(), body="", payload={})
    who = _t("医生") if role == SenderRole.DOCTOR else _t("患者")
    return _append(consultation, role=SenderRole.SYSTEM, kind=MessageKind.RECALL,
                   body=_t("%(who)s撤回了一条消息") % {"who": who}, payload={"seq": seq})
