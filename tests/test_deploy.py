"""docker/: what can be checked without a Docker engine. The compose file parses and names only
files that exist; every setting is documented; the image's entry commands really run
(uvicorn web, a Celery worker doing a task through Redis, beat) outside Docker."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from django.db import connection

from backend.config.celery import app as celery_app
from backend.core.audit import audit_record
from backend.core.tasks import audit_chain_verify

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker" / "compose.yml"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"


def test_compose_parses_and_has_the_services_with_health_checks():
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    assert set(services) == {"postgres", "redis", "migrate", "web", "worker", "beat", "coturn"}
    for name in ("postgres", "redis", "web", "worker", "beat", "coturn"):
        assert services[name]["healthcheck"]["test"], name
    for name in ("migrate", "web", "worker", "beat"):
        build = services[name]["build"]
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context == ROOT and (context / build["dockerfile"]).is_file()
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_coturn_uses_the_rest_secret_and_never_relays_into_private_networks():
    coturn = yaml.safe_load(COMPOSE.read_text())["services"]["coturn"]
    mounted = coturn["volumes"][0].split(":")[0]
    conf = (COMPOSE.parent / mounted).read_text()
    assert "use-auth-secret" in conf.splitlines() and "--static-auth-secret=${TURN_SHARED_SECRET:?" in str(coturn)
    denied = {line.split("=", 1)[1] for line in conf.splitlines() if line.startswith("denied-peer-ip=")}
    assert {"10.0.0.0-10.255.255.255", "172.16.0.0-172.31.255.255", "192.168.0.0-192.168.255.255",
            "127.0.0.0-127.255.255.255", "169.254.0.0-169.254.255.255"} <= denied


def test_every_production_secret_reaches_the_containers_and_fails_fast_when_missing():
    settings_text = (ROOT / "backend" / "config" / "settings.py").read_text()
    required = set(re.findall(r'secret\("([A-Z0-9_]+)", PRODUCTION\)', settings_text))
    environment = yaml.safe_load(COMPOSE.read_text())["x-app"]["environment"]
    assert required and not required - set(environment), sorted(required - set(environment))
    for name in required:
        assert f"${{{name}:?" in str(environment[name]), name


def test_dockerfile_is_multistage_non_root_and_copies_existing_files():
    text = (ROOT / "docker" / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) == 2
    assert re.search(r"^USER qihuang$", text, re.M)
    for source in re.findall(r"^COPY (?!--from)(?:--\S+ )*(\S+) ", text, re.M):
        assert (ROOT / source).exists(), source
    assert "/app/docker/entrypoint.sh" in text and os.access(ENTRYPOINT, os.X_OK)


def test_every_setting_is_documented_in_env_example():
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    used = set()
    for path in [*ROOT.glob("backend/config/*.py"), ENTRYPOINT, COMPOSE]:
        text = path.read_text()
        used |= set(re.findall(r'env_(?:str|bool|int|list)\("([A-Z0-9_]+)"', text))
        used |= set(re.findall(r'secret\("([A-Z0-9_]+)"', text))
        used |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", text))
    assert used and not used - documented, sorted(used - documented)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    db = connection.settings_dict
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}")
    env.update(extra)
    return env


def _start(*args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([str(ENTRYPOINT), *args], cwd=ROOT, env=_env(**env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _stop(proc: subprocess.Popen) -> str:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    return out


@pytest.mark.django_db(transaction=True)
def test_entrypoint_web_serves_readyz():
    port = _free_port()
    proc = _start("web", HOST="127.0.0.1", PORT=str(port), WEB_CONCURRENCY="1")
    try:
        status = None
        for _ in range(60):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:
                    status = resp.status
                    break
            except OSError:
                time.sleep(0.5)
        assert status == 200
    finally:
        _stop(proc)


@pytest.mark.django_db(transaction=True)
def test_entrypoint_worker_runs_a_task_through_redis():
    for i in range(3):
        audit_record(action="test.worker", object_id=str(i))
    queue = f"test-{_free_port()}"
    proc = _start("worker", "--pool", "solo", "-Q", queue, CELERY_CONCURRENCY="1")
    try:
        result = audit_chain_verify.apply_async(queue=queue)
        assert result.get(timeout=60) == {"ok": True, "checked": 3, "first_broken_seq": None}
    finally:
        out = _stop(proc)
    assert "ready" in out


def test_entrypoint_beat_starts_with_the_schedule(tmp_path):
    schedule = tmp_path / "beat-schedule"
    proc = _start("beat", CELERY_BEAT_SCHEDULE_FILE=str(schedule))
    time.sleep(6)
    out = _stop(proc)
    assert "beat: Starting" in out, out
    nightly = celery_app.conf.beat_schedule["verify-audit-chain-nightly"]
    assert nightly["task"] == "backend.core.tasks.audit_chain_verify"
