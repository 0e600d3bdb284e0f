"""Qihuang settings: everything from the environment, with embedded demo defaults.

With nothing set, the platform runs on SQLite, the in-memory channel layer,
in-process (eager) jobs and the loopback gateway sandboxes. ``DATABASE_URL`` and
``REDIS_URL`` switch to PostgreSQL and Redis. Every setting is documented in
``.env.example``.
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from backend.config.env import (
    BASE_DIR,
    env_bool,
    env_int,
    env_list,
    env_str,
    secret,
    state_dir,
)

QIHUANG_ENV = env_str("QIHUANG_ENV", "demo")  # demo | test | production
PRODUCTION = QIHUANG_ENV == "production"

SECRET_KEY = secret("DJANGO_SECRET_KEY", PRODUCTION)
DEBUG = env_bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "ninja",
    "backend.core",
    "backend.accounts",
    "payments",
    "backend.scheduling",
    "backend.consultations",
    *([] if PRODUCTION else ["backend.demo"]),
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "backend.config.urls"
ASGI_APPLICATION = "backend.config.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{state_dir() / 'qihuang.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DATABASE_POOL", True):
    DATABASES["default"]["OPTIONS"] = {
        "pool": {"min_size": env_int("DATABASE_POOL_MIN", 1), "max_size": env_int("DATABASE_POOL_MAX", 8)}
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # the embedded demo
    # IMMEDIATE: a transaction takes the write lock when it starts, so two writers queue (up to the timeout)
    # instead of failing at once with "database is locked" when a reader upgrades to a writer.
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20,
                                       "init_command": "PRAGMA journal_mode=WAL;"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# --- Redis: cache, channel layer, Celery --------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8 times reads out after 5 s by default, exactly channels-redis's blocking receive
            # (BZPOPMIN 5 s): an idle socket's consumer would die. Reads must be allowed to wait longer.
            # redis-py's pool raises (not waits) past max_connections: 2,000 sockets closing at once need ~2,000.
            # capacity: a worker's inbox; past it channels-redis drops broadcasts (a chat client then misses
            # the tail until the next message or a reconnect), so it is sized for bursts and drops are logged.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30, "socket_connect_timeout": 5,
                                  "max_connections": env_int("CHANNELS_REDIS_MAX_CONNECTIONS", 2000)}],
                       "capacity": env_int("CHANNELS_CAPACITY", 1000),
                       "prefix": env_str("CHANNELS_PREFIX", "qihuang")},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL) or None
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "Asia/Shanghai"

# --- auth and sessions -------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "staff-login"
LOGIN_REDIRECT_URL = "staff-home"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if PRODUCTION else None

STAFF_LOGIN_MAX_FAILURES = env_int("STAFF_LOGIN_MAX_FAILURES", 5)
STAFF_LOGIN_LOCKOUT_SECONDS = env_int("STAFF_LOGIN_LOCKOUT_SECONDS", 15 * 60)

ACCESS_TOKEN_TTL_SECONDS = env_int("ACCESS_TOKEN_TTL_SECONDS", 15 * 60)
REFRESH_TOKEN_TTL_SECONDS = env_int("REFRESH_TOKEN_TTL_SECONDS", 30 * 24 * 3600)

# --- personal data protection (DESIGN rule 10) ----------------------------------------------
# "kid:base64key,kid:base64key": the first key encrypts, every key decrypts (rotation).
FIELD_ENCRYPTION_KEYS = secret("FIELD_ENCRYPTION_KEYS", PRODUCTION)
BLIND_INDEX_KEY = secret("BLIND_INDEX_KEY", PRODUCTION)

# --- clinical policy ----------------------------------------------------------------------------
MAX_PATIENT_PROFILES_PER_ACCOUNT = env_int("MAX_PATIENT_PROFILES_PER_ACCOUNT", 8)
GUARDIAN_REQUIRED_UNDER_AGE = env_int("GUARDIAN_REQUIRED_UNDER_AGE", 6)  # IH-13
ADULT_AGE = env_int("ADULT_AGE", 18)
DOCTOR_MIN_PRACTICE_YEARS_ONLINE = env_int("DOCTOR_MIN_PRACTICE_YEARS_ONLINE", 3)  # IH-04
PHARMACIST_MIN_DISPENSING_YEARS_REVIEW = env_int("PHARMACIST_MIN_DISPENSING_YEARS_REVIEW", 3)  # IH-09

# --- gateways (DESIGN rules 7-8): the sandboxes by default -----------------------------------
SANDBOX_HOST = env_str("SANDBOX_HOST", "127.0.0.1")
WECHAT_APPID = env_str("WECHAT_APPID", "wx5a1d0c2e7f3b9d41")
WECHAT_APP_SECRET = secret("WECHAT_APP_SECRET", PRODUCTION)
WECHAT_API_BASE = env_str("WECHAT_API_BASE", "https://api.weixin.qq.com" if PRODUCTION else f"http://{SANDBOX_HOST}:18601")
WECHAT_TIMEOUT_SECONDS = float(env_str("WECHAT_TIMEOUT_SECONDS", "5"))
REALNAME_API_BASE = env_str("REALNAME_API_BASE", "" if PRODUCTION else f"http://{SANDBOX_HOST}:18602")
if PRODUCTION and not REALNAME_API_BASE:
    raise ImproperlyConfigured("REALNAME_API_BASE must be set in production (your real-name provider)")
REALNAME_APP_KEY = env_str("REALNAME_APP_KEY", "qihuang-demo")
REALNAME_APP_SECRET = secret("REALNAME_APP_SECRET", PRODUCTION)
REALNAME_TIMEOUT_SECONDS = float(env_str("REALNAME_TIMEOUT_SECONDS", "5"))

# --- booking (issue 4) ---------------------------------------------------------------------------
BOOKING_HOLD_SECONDS = env_int("BOOKING_HOLD_SECONDS", 15 * 60)  # time to pay for a held place
BOOKING_MAX_ACTIVE_PER_ACCOUNT = env_int("BOOKING_MAX_ACTIVE_PER_ACCOUNT", 5)
BOOKING_CANCEL_DEADLINE_HOURS = env_int("BOOKING_CANCEL_DEADLINE_HOURS", 2)  # free cancellation until then
BOOKING_RELEASE_DAYS_AHEAD = env_int("BOOKING_RELEASE_DAYS_AHEAD", 7)  # 放号: 7 days ahead …
BOOKING_RELEASE_TIME = env_str("BOOKING_RELEASE_TIME", "08:00")  # … at 08:00
NO_SHOW_LIMIT = env_int("NO_SHOW_LIMIT", 3)  # 3 no-shows …
NO_SHOW_WINDOW_DAYS = env_int("NO_SHOW_WINDOW_DAYS", 90)  # … within 90 days …
NO_SHOW_BAN_DAYS = env_int("NO_SHOW_BAN_DAYS", 30)  # … and no booking for 30 days
# subscribe-message template ids per notice kind (from the mini-program's WeChat admin)
BOOKING_NOTICE_TEMPLATES = {
    kind: env_str(f"WECHAT_TEMPLATE_{kind.upper()}", f"TPL_BOOKING_{kind.upper()}")
    for kind in ("confirmed", "cancelled", "stopped", "waitlist_offer", "day_before", "soon")
}

# --- online follow-up consultations (issue 5; IH-01…IH-03, IH-13, IH-20, IH-24) ----------------
ONLINE_FIRST_VISIT_FORBIDDEN = env_bool("ONLINE_FIRST_VISIT_FORBIDDEN", default=True)  # IH-01, a policy
PRIOR_VISIT_MAX_AGE_DAYS = env_int("PRIOR_VISIT_MAX_AGE_DAYS", 365)  # [U] how old a prior diagnosis may be
CONSULT_PAY_SECONDS = env_int("CONSULT_PAY_SECONDS", 15 * 60)  # time to pay after starting
CONSULT_ACCEPT_HOURS = env_int("CONSULT_ACCEPT_HOURS", 24)  # not accepted in time → cancelled and refunded
CONSULT_IDLE_END_HOURS = env_int("CONSULT_IDLE_END_HOURS", 24)  # no message for this long → ended
CONSULT_FOLLOW_UP_HOURS = env_int("CONSULT_FOLLOW_UP_HOURS", 48)  # 追问 window after the end …
CONSULT_FOLLOW_UP_MESSAGES = env_int("CONSULT_FOLLOW_UP_MESSAGES", 3)  # … and how many patient messages
CONSULT_REFUND_ON_TERMINATION = env_bool("CONSULT_REFUND_ON_TERMINATION", default=True)  # IH-02 → full refund
CONSULT_RECALL_SECONDS = env_int("CONSULT_RECALL_SECONDS", 120)
CONSULT_MESSAGE_RATE = env_str("CONSULT_MESSAGE_RATE", "30/60")  # messages per seconds, per sender and visit
CONSULT_MAX_MESSAGE_CHARS = env_int("CONSULT_MAX_MESSAGE_CHARS", 2000)
CONSULT_UPLOAD_MAX_BYTES = env_int("CONSULT_UPLOAD_MAX_BYTES", 10 * 1024 * 1024)
MEDIA_URL_TTL_SECONDS = env_int("MEDIA_URL_TTL_SECONDS", 300)  # signed image URLs
# IH-20: records ≥ 15 years, chat and media ≥ 3 years; shorter values are refused
RETENTION_RECORD_DAYS = env_int("RETENTION_RECORD_DAYS", 15 * 366)
RETENTION_CHAT_DAYS = env_int("RETENTION_CHAT_DAYS", 3 * 366)
if RETENTION_RECORD_DAYS < 15 * 365 + 4 or RETENTION_CHAT_DAYS < 3 * 365 + 1:  # whole years, leap days included
    raise ImproperlyConfigured("IH-20: RETENTION_RECORD_DAYS ≥ 15 years and RETENTION_CHAT_DAYS ≥ 3 years")
# --- video (issue 6): ICE servers; TURN credentials by coturn's REST scheme (use-auth-secret) ----------
STUN_URLS = env_list("STUN_URLS")  # e.g. stun:turn.example.org:3478
TURN_URLS = env_list("TURN_URLS")  # e.g. turn:turn.example.org:3478?transport=udp,turns:turn.example.org:5349
TURN_SHARED_SECRET = secret("TURN_SHARED_SECRET", PRODUCTION)  # coturn's static-auth-secret
TURN_CREDENTIAL_TTL_SECONDS = env_int("TURN_CREDENTIAL_TTL_SECONDS", 6 * 3600)
HIS_IMPORT_TOKEN = secret("HIS_IMPORT_TOKEN", PRODUCTION)  # the HIS posts offline visits with this bearer token

# --- payments (issue 3): the sandboxes by default ------------------------------------------------
PAYMENT_NOTIFY_BASE_URL = env_str("PAYMENT_NOTIFY_BASE_URL", "http://127.0.0.1:8000")  # our public URL
PAYMENT_INTENT_TTL_SECONDS = env_int("PAYMENT_INTENT_TTL_SECONDS", 15 * 60)
PAYMENT_RECONCILE_FIRST_CHECK_SECONDS = env_int("PAYMENT_RECONCILE_FIRST_CHECK_SECONDS", 60)
PAYMENT_RECONCILE_MAX_CHECKS = env_int("PAYMENT_RECONCILE_MAX_CHECKS", 12)
WECHATPAY_APPID = env_str("WECHATPAY_APPID", WECHAT_APPID)
WECHATPAY_MCHID = env_str("WECHATPAY_MCHID", "1900000109")
WECHATPAY_MERCHANT_SERIAL_NO = env_str("WECHATPAY_MERCHANT_SERIAL_NO", "5157F09EFDC096DE15EBE81A47057A7232F1B8E1")
WECHATPAY_MERCHANT_PRIVATE_KEY = secret("WECHATPAY_MERCHANT_PRIVATE_KEY", PRODUCTION)
WECHATPAY_APIV3_KEY = secret("WECHATPAY_APIV3_KEY", PRODUCTION)
WECHATPAY_PUBLIC_KEY = env_str("WECHATPAY_PUBLIC_KEY")  # the platform public key (public-key mode)
WECHATPAY_PUBLIC_KEY_ID = env_str("WECHATPAY_PUBLIC_KEY_ID")
WECHATPAY_API_BASE = env_str("WECHATPAY_API_BASE",
                             "https://api.mch.weixin.qq.com" if PRODUCTION else f"http://{SANDBOX_HOST}:18603")
WECHATPAY_TIMEOUT_SECONDS = float(env_str("WECHATPAY_TIMEOUT_SECONDS", "10"))
ALIPAY_APPID = env_str("ALIPAY_APPID", "2021000000000001")
ALIPAY_SELLER_ID = env_str("ALIPAY_SELLER_ID", "2088000000000001")
ALIPAY_APP_PRIVATE_KEY = secret("ALIPAY_APP_PRIVATE_KEY", PRODUCTION)
ALIPAY_PUBLIC_KEY = env_str("ALIPAY_PUBLIC_KEY")
ALIPAY_GATEWAY = env_str("ALIPAY_GATEWAY",
                         "https://openapi.alipay.com/gateway.do" if PRODUCTION
                         else f"http://{SANDBOX_HOST}:18604/gateway.do")
ALIPAY_TIMEOUT_SECONDS = float(env_str("ALIPAY_TIMEOUT_SECONDS", "10"))

# --- i18n, time, files ----------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("简体中文")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = env_str("STATIC_ROOT", str(state_dir() / "static"))
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)  # whitenoise warns when it is missing
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
MEDIA_ROOT = env_str("MEDIA_ROOT", str(state_dir() / "media"))
MEDIA_URL = "/media/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.server": {"level": "WARNING"},
                "channels_redis.core": {"level": "INFO"}},  # "… over capacity in group …": dropped broadcasts
}

NINJA_PAGINATION_PER_PAGE = 20
# The client address is REMOTE_ADDR, which uvicorn --proxy-headers sets from trusted proxies only
# (FORWARDED_ALLOW_IPS); a client-supplied X-Forwarded-For must not pick its own throttle bucket.
NINJA_NUM_PROXIES = 0
API_THROTTLE_ANON = env_str("API_THROTTLE_ANON", "60/m")  # per IP, before login
API_THROTTLE_USER = env_str("API_THROTTLE_USER", "600/m")  # per account
NINJA_PAGINATION_MAX_PER_PAGE_SIZE = 100
