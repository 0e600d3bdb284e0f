"""The patient-facing JSON API (django-ninja) at /api/, OpenAPI docs at /api/docs."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import caches
from ninja import NinjaAPI
from ninja.throttling import AnonRateThrottle, UserRateThrottle

from backend.consultations import api as staff_consultations
from backend.consultations.api import his
from backend.scheduling import api as staff_scheduling
from miniprogram_api.errors import install_error_handlers
from miniprogram_api.routers import auth, booking, consultation_records, consultations, patients, payments

# One cache client (and Redis connection pool) per process for the throttles: the default cache handle is
# per async context under ASGI, so every request built a new Redis client and connection (~1/5 of a
# worker's time on a cheap endpoint, docs/benchmarks.md).
_THROTTLE_CACHE = caches.create_connection("default")


class AnonThrottle(AnonRateThrottle):
    cache = _THROTTLE_CACHE


class AccountThrottle(UserRateThrottle):
    cache = _THROTTLE_CACHE


api = NinjaAPI(
    title="岐黄互联网中医院 API",
    version="1.0.0",
    description="Patient-facing API for the WeChat mini-program. Errors use one envelope: "
                "`{code, message, detail}`; validation errors are 422.",
    urls_namespace="api",
    docs_url="/docs",
    throttle=[AnonThrottle(settings.API_THROTTLE_ANON), AccountThrottle(settings.API_THROTTLE_USER)],
)
install_error_handlers(api)
api.add_router("", auth.router)
api.add_router("", patients.router)
api.add_router("", payments.router)
api.add_router("", booking.router)
api.add_router("", consultations.router)
api.add_router("", consultation_records.router)
api.add_router("", staff_scheduling.router)
api.add_router("", staff_consultations.router)
api.add_router("", his.router)
