"""Staff signing keys and the signing of one record version (SM3 digest, SM2 signature)."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from backend.consultations.models import ClinicalRecord, ClinicalRecordVersion, SigningKey
from backend.consultations.services.records.fields import canonical_bytes, record_content
from backend.core.audit import audit_record
from backend.core.crypto import sm3_hex
from backend.core.sm2 import sm2_generate_keypair, sm2_sign


def signing_key_for(user) -> SigningKey:
    """The staff member's active SM2 key, created (and audited) on first use.

    The private key is generated here and kept SM4-encrypted in ``SigningKey.private_key``; it never
    leaves the signing service. Production may instead hold a CA-issued key — for example a 医网信 or
    CFCA cloud signature, where the private key stays with the CA and we receive a certificate and a
    signature — behind this same function and ``version_sign``.
    """
    with transaction.atomic():
        # one creator per person: concurrent first signatures wait here instead of making two keys
        list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))
        key = SigningKey.objects.filter(owner=user, revoked_at__isnull=True).order_by("-created_at").first()
        if key is not None:
            return key
        pair = sm2_generate_keypair()
        key = SigningKey(owner=user, public_key=pair.public_key, private_key=pair.private_key)
        key.save()
        audit_record(action="signing_key.created", actor=user, obj=key,
                     detail={"algorithm": key.algorithm, "public_key": key.public_key})
    return key


def version_sign(record: ClinicalRecord, *, user, number: int, reason: str = "",
                 changed_fields: Iterable[str] = ()) -> ClinicalRecordVersion:
    """Freeze ``record`` as it is now into version ``number``: canonical content, its SM3 digest, and the
    SM2 signature (SM3 with the default user id) over the canonical bytes themselves — not over the
    digest — so any SM2 verifier can check it from the stored content alone."""
    key = signing_key_for(user)
    now = timezone.now()
    content = record_content(record, version=number, signed_at=now, reason=reason, changed_fields=changed_fields)
    message = canonical_bytes(content)
    return ClinicalRecordVersion.objects.create(
        record=record, version=number, content=content, digest=sm3_hex(message),
        signature=sm2_sign(key.private_key, message, public_key=key.public_key), key=key, signed_by=user,
        signed_at=now, reason=reason)
