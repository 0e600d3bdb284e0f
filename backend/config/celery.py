"""The Celery app: Redis broker in production and tests, eager (in-process) in the demo."""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.config.settings")

app = Celery("qihuang")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.conf.beat_schedule = {
    "bookings-reminders": {"task": "backend.scheduling.tasks.reminders_due", "schedule": 300.0},
    "bookings-expire-holds": {"task": "backend.scheduling.tasks.bookings_expire_due", "schedule": 30.0},
    "consultations-expire": {"task": "backend.consultations.tasks.consultations_expire_due", "schedule": 60.0},
    "consultations-refund-sweep": {"task": "backend.consultations.tasks.consultations_refund_sweep",
                                   "schedule": 120.0},
    "consultations-end-idle": {"task": "backend.consultations.tasks.consultations_end_idle", "schedule": 600.0},
    "consultations-retention-purge": {
        "task": "backend.consultations.tasks.retention_purge",
        "schedule": crontab(hour=4, minute=7),
    },
    "payments-close-expired": {"task": "payments.tasks.intents_close_expired", "schedule": 60.0},
    "payments-reconcile": {"task": "payments.tasks.intents_reconcile", "schedule": 60.0},
    "payments-daily-bills": {"task": "payments.tasks.bills_reconcile", "schedule": crontab(hour=10, minute=5)},
    "verify-audit-chain-nightly": {
        "task": "backend.core.tasks.audit_chain_verify",
        "schedule": crontab(hour=3, minute=17),
    },
}
