"""Liveness and readiness probes.

``/healthz``: the process answers. ``/readyz``: the database, Redis and the Celery
broker are reachable; 503 names the one that failed. In the embedded demo there is
no Redis and no broker to reach, and the checks say so.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _check_redis() -> str:
    if not settings.REDIS_URL:
        return "embedded"
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


def _check_broker() -> str:
    if settings.CELERY_BROKER_URL.startswith("memory://"):
        return "embedded"
    from backend.config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=1)
    return "ok"


CHECKS = {"database": _check_database, "redis": _check_redis, "broker": _check_broker}


def healthz(request):
    return JsonResponse({"status": "ok"})


def readyz(request):
    results: dict[str, dict[str, object]] = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            state = check()
        except Exception as exc:
            state = f"error: {type(exc).__name__}"
        results[name] = {"status": state, "ms": round((time.perf_counter() - started) * 1000, 1)}
    failed = [name for name, r in results.items() if str(r["status"]).startswith("error")]
    body = {"status": "ok" if not failed else "unavailable", "failed": failed, "checks": results}
    return JsonResponse(body, status=503 if failed else 200)
