"""Thin Celery tasks for the shared kernel."""

from __future__ import annotations

import logging

from celery import shared_task

from backend.core.audit import audit_verify_chain

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def audit_chain_verify() -> dict[str, object]:
    """Nightly: recompute the audit chain and log an error naming the first broken row."""
    report = audit_verify_chain()
    if not report.ok:
        logger.error("audit chain broken at seq %s: %s", report.first_broken_seq, report.reason)
    return {"ok": report.ok, "checked": report.checked, "first_broken_seq": report.first_broken_seq}
