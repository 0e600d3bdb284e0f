from __future__ import annotations

from django.conf import settings
from django.urls import reverse


def notify_url(channel: str) -> str:
    """Where the provider sends its notifications (our public base URL + the channel's endpoint)."""
    return settings.PAYMENT_NOTIFY_BASE_URL.rstrip("/") + reverse(f"payments-notify-{channel}")
