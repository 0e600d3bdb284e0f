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
    "verify-audit-chain-nightly": {
        "task": "backend.core.tasks.audit_chain_verify",
        "schedule": crontab(hour=3, minute=17),
    },
}
