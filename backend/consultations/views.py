"""Plain Django views of consultations: signed media links (the mini-program's <image> cannot send headers)."""

from __future__ import annotations

from django.http import HttpResponse, JsonResponse

from backend.consultations.services.media import media_from_signed
from backend.core.audit import audit_record
from backend.core.authz import client_ip
from backend.core.errors import DomainError


def media_signed(request, token: str):
    try:
        media = media_from_signed(token)
    except DomainError as exc:
        return JsonResponse({"code": exc.code, "message": str(exc.message), "detail": None}, status=exc.status)
    audit_record(action="consultation.media_read", obj=media, ip=client_ip(request),
                 detail={"consultation": str(media.consultation_id or ""), "purpose": media.purpose})
    with media.file.open("rb") as handle:  # images are ≤ CONSULT_UPLOAD_MAX_BYTES; object storage in production
        response = HttpResponse(handle.read(), content_type=media.content_type)
    response["Cache-Control"] = "private, max-age=60"
    response["X-Content-Type-Options"] = "nosniff"
    return response
