# Shared by bin/demo and bin/test: a pinned virtualenv and the local services.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3

log() { printf '\033[1;33m[qihuang]\033[0m %s\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {  # apt_install PKG... : install Debian packages that are missing
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
}

venv_ready() {  # venv_ready LOCKFILE : .venv with exactly the pinned dependencies
  local lock="$1" stamp
  stamp=".venv/.installed-$(basename "$lock")"
  # the test lock is a superset of the runtime lock: a venv made for tests also runs the demo
  if [ "$(basename "$lock")" = base.lock ] && [ -f .venv/.installed-dev.lock ] &&
     [ "$(cat .venv/.installed-dev.lock)" = "$(sha256sum requirements/dev.lock | cut -d' ' -f1)" ]; then
    return 0
  fi
  if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv || { apt_install python3-venv; "$PY" -m venv .venv; }
  fi
  local want; want="$(sha256sum "$lock" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    log "installing pinned dependencies from $lock"
    .venv/bin/python -m pip install -q --disable-pip-version-check -U pip 2>&1 | grep -v '^WARNING: Location' || true
    .venv/bin/python -m pip install -q --disable-pip-version-check -r "$lock" 2>&1 | grep -v '^WARNING: Location' || true
    .venv/bin/python -m pip check >/dev/null || { log "dependency install failed"; exit 1; }
    rm -f .venv/.installed-*; echo "$want" > "$stamp"
  fi
}

postgres_up() {  # PostgreSQL on 127.0.0.1:5432 (trust auth); start or install it if needed
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
  [ -d /etc/postgresql ] || apt_install postgresql postgresql-client
  log "starting PostgreSQL"
  local ver; ver="$(ls /etc/postgresql | sort -V | tail -1)"
  as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start || as_root pg_ctlcluster "$ver" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && return 0; sleep 1; done
  log "PostgreSQL did not come up"; exit 1
}

redis_up() {  # Redis on 127.0.0.1:6379; start or install it if needed
  if command -v redis-cli >/dev/null && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return 0; fi
  command -v redis-server >/dev/null || apt_install redis-server
  log "starting Redis"
  mkdir -p /tmp/qihuang-redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /tmp/qihuang-redis --logfile /tmp/qihuang-redis/redis.log
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0; sleep 0.5; done
  log "Redis did not come up"; exit 1
}
