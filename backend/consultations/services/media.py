"""Uploaded images: checked for type and size, stored through Django storage, served by short-lived signed URLs."""

from __future__ import annotations

import hashlib
import uuid

from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from PIL import Image, UnidentifiedImageError

from backend.consultations.models import Consultation, MediaFile
from backend.consultations.states import MediaPurpose
from backend.core.errors import NotFound, ValidationFailed

ALLOWED_FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}
MAX_PIXELS = 40_000_000  # larger images are refused (decompression bombs)
_SALT = "qihuang.consultations.media"


def _sniff(data: bytes) -> tuple[str, str]:
    """The real type from the bytes (never the client's filename or header)."""
    import io

    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt = image.format
            if image.width * image.height > MAX_PIXELS:
                raise ValidationFailed(_("图片尺寸过大"), code="upload_too_large")
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValidationFailed(_("只支持 JPEG、PNG 或 WebP 图片"), code="upload_type_invalid") from exc
    if fmt not in ALLOWED_FORMATS:
        raise ValidationFailed(_("只支持 JPEG、PNG 或 WebP 图片"), code="upload_type_invalid")
    return ALLOWED_FORMATS[fmt]


def _too_large() -> ValidationFailed:
    return ValidationFailed(_("图片不能超过%(mb)dMB") % {"mb": settings.CONSULT_UPLOAD_MAX_BYTES // 2**20},
                            code="upload_too_large", detail={"max_bytes": settings.CONSULT_UPLOAD_MAX_BYTES})


def upload_bytes(upload) -> bytes:
    """An uploaded file's bytes, refused by its declared size before anything is read into memory."""
    if (upload.size or 0) > settings.CONSULT_UPLOAD_MAX_BYTES:
        raise _too_large()
    return upload.read(settings.CONSULT_UPLOAD_MAX_BYTES + 1)


def media_store(*, uploader, purpose: MediaPurpose, data: bytes,
                consultation: Consultation | None = None) -> MediaFile:
    """Check and store one image; the caller has checked that ``uploader`` may attach it there."""
    if not data:
        raise ValidationFailed(_("文件为空"), code="upload_empty")
    if len(data) > settings.CONSULT_UPLOAD_MAX_BYTES:
        raise _too_large()
    content_type, ext = _sniff(data)
    media = MediaFile(uploader=uploader, purpose=purpose, consultation=consultation, content_type=content_type,
                      size=len(data), sha256=hashlib.sha256(data).hexdigest())
    media.file.save(f"{uuid.uuid4().hex}.{ext}", ContentFile(data), save=False)
    media.save()
    return media


def media_signed_url(media_id: object) -> str:
    token = signing.TimestampSigner(salt=_SALT).sign(str(media_id))
    return reverse("consultation-media", kwargs={"token": token})


def media_from_signed(token: str) -> MediaFile:
    """The file a still-valid token names; expired or forged tokens are 404 (nothing is disclosed)."""
    try:
        media_id = signing.TimestampSigner(salt=_SALT).unsign(token, max_age=settings.MEDIA_URL_TTL_SECONDS)
        media = MediaFile.objects.get(pk=media_id, purged_at__isnull=True)
    except (signing.BadSignature, MediaFile.DoesNotExist, ValueError) as exc:
        raise NotFound(_("链接已失效"), code="media_link_invalid") from exc
    return media
