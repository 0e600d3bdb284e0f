"""Expiring counters in the shared cache (Redis in production), safe under concurrency."""

from __future__ import annotations

from django.core.cache import cache


def counter_incr(key: str, ttl_seconds: int) -> int:
    """Atomically add one; the window starts with the first hit and lasts ``ttl_seconds``."""
    if cache.add(key, 1, timeout=ttl_seconds):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # the key expired between add() and incr(): a new window starts
        cache.add(key, 1, timeout=ttl_seconds)
        return 1
