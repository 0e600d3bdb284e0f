"""IH-20 retention: chat and media ≥ 3 years, records ≥ 15 years (settings, minimums enforced at start-up).

The purge deletes only what is past its retention, counted from the end of the visit, and leaves an
audit row for every visit it touched. Audit rows themselves are never deleted.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from backend.consultations.models import ClinicalRecord, ClinicalRecordVersion, Consultation, MediaFile, Message
from backend.consultations.states import ACTIVE_CONSULT, MediaPurpose
from backend.core.audit import audit_record


def _closed_before(days: int):
    """Visits whose last possible activity (the end, or the end of the 追问 window) is older than ``days``."""
    cutoff = timezone.now() - timedelta(days=days)
    return Consultation.objects.exclude(status__in=ACTIVE_CONSULT).filter(
        Q(follow_up_until__isnull=True, ended_at__lt=cutoff) | Q(follow_up_until__lt=cutoff))


def _purge_files(media: list[MediaFile]) -> None:
    MediaFile.objects.filter(pk__in=[m.pk for m in media]).update(purged_at=timezone.now(), file="")
    names = [m.file.name for m in media if m.file]
    if names:
        storage = media[0].file.storage
        transaction.on_commit(lambda: [storage.delete(n) for n in names])


@transaction.atomic
def _purge_chat(consultation: Consultation) -> tuple[int, int]:
    """Chat and its images; the proof of the prior diagnosis stays with the record (IH-03: the doctor keeps it)."""
    media = list(MediaFile.objects.filter(consultation=consultation, purged_at__isnull=True)
                 .exclude(purpose=MediaPurpose.PROOF))
    messages, _ = Message.objects.filter(consultation=consultation).delete()
    _purge_files(media)
    Consultation.objects.filter(pk=consultation.pk).update(media_purged_at=timezone.now())
    audit_record(action="retention.chat_purged", obj=consultation,
                 detail={"messages": messages, "files": len(media), "ended_at": consultation.ended_at})
    return messages, len(media)


@transaction.atomic
def _purge_record(record: ClinicalRecord) -> None:
    _purge_files(list(MediaFile.objects.filter(consultation=record.consultation_id, purged_at__isnull=True)))
    versions, _ = ClinicalRecordVersion.objects.filter(record=record).delete()
    audit_record(action="retention.record_purged", obj=record.consultation,
                 detail={"versions": versions, "ended_at": record.consultation.ended_at})
    record.delete()


def retention_purge(*, limit: int = 500) -> dict[str, int]:
    chat_due = _closed_before(settings.RETENTION_CHAT_DAYS).filter(media_purged_at__isnull=True)[:limit]
    result = {"consultations": 0, "messages": 0, "files": 0, "records": 0}
    for consultation in chat_due:
        messages, files = _purge_chat(consultation)
        result["consultations"] += 1
        result["messages"] += messages
        result["files"] += files
    record_cutoff = timezone.now() - timedelta(days=settings.RETENTION_RECORD_DAYS)
    record_due = ClinicalRecord.objects.filter(consultation__in=_closed_before(settings.RETENTION_RECORD_DAYS)).exclude(
        versions__signed_at__gte=record_cutoff).select_related("consultation")[:limit]  # amended late: kept longer
    for record in record_due:
        _purge_record(record)
        result["records"] += 1
    return result
