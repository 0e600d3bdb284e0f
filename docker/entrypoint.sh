#!/bin/sh
# One image, several roles:  web | worker | beat | migrate | manage ARGS... | any command
set -eu
role="${1:-web}"
[ "$#" -gt 0 ] && shift
case "$role" in
  web)
    exec uvicorn backend.config.asgi:application --host "${HOST:-0.0.0.0}" --port "${PORT:-8000}" \
      --workers "${WEB_CONCURRENCY:-2}" --proxy-headers --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-127.0.0.1}" \
      --lifespan off --log-level "${UVICORN_LOG_LEVEL:-warning}" "$@" ;;
  worker)
    exec celery -A backend.config.celery:app worker -l "${LOG_LEVEL:-info}" \
      --concurrency "${CELERY_CONCURRENCY:-2}" --without-gossip --without-mingle "$@" ;;
  beat)
    exec celery -A backend.config.celery:app beat -l "${LOG_LEVEL:-info}" \
      --schedule "${CELERY_BEAT_SCHEDULE_FILE:-/tmp/celerybeat-schedule}" "$@" ;;
  migrate)
    exec python manage.py migrate --noinput "$@" ;;
  manage)
    exec python manage.py "$@" ;;
  *)
    exec "$role" "$@" ;;
esac
