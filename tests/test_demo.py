"""The README's demo command on embedded defaults: SQLite, in-memory layers, sandboxes, seeded data."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url: str, data: dict | None = None, token: str | None = None) -> tuple[int, dict | str]:
    body = json.dumps(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, method="POST" if body else "GET")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=5) as resp:
        raw = resp.read().decode()
        return resp.status, json.loads(raw) if "json" in resp.headers.get("Content-Type", "") else raw


def test_bin_demo_serves_docs_readyz_and_a_seeded_hospital(tmp_path):
    port, wechat_port, realname_port = _free_port(), _free_port(), _free_port()
    wechatpay_port, alipay_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND",
                        "DJANGO_SETTINGS_MODULE", "QIHUANG_ENV"}}
    env.update(QIHUANG_STATE_DIR=str(tmp_path), WECHAT_API_BASE=f"http://127.0.0.1:{wechat_port}",
               REALNAME_API_BASE=f"http://127.0.0.1:{realname_port}",
               WECHATPAY_API_BASE=f"http://127.0.0.1:{wechatpay_port}",
               ALIPAY_GATEWAY=f"http://127.0.0.1:{alipay_port}/gateway.do")
    proc = subprocess.Popen([str(ROOT / "bin" / "demo"), "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        ready = None
        for _ in range(120):
            try:
                ready = _request(f"{base}/readyz")
                break
            except OSError:
                time.sleep(0.5)
        assert ready is not None, "demo did not come up"
        assert ready[0] == 200 and ready[1]["checks"]["redis"]["status"] == "embedded"
        assert _request(f"{base}/api/docs")[0] == 200
        _, issued = _request(f"http://127.0.0.1:{wechat_port}/__sandbox__/login-code", {"openid": "oDEMO_WANG"})
        _, tokens = _request(f"{base}/api/auth/wechat-login", {"code": issued["code"]})
        _, profiles = _request(f"{base}/api/patients", token=tokens["access_token"])
        assert [p["name"] for p in profiles["items"]] == ["王建国", "李娜", "王小宝"]
        assert profiles["items"][2]["guardian_id"] == profiles["items"][0]["id"]
        wang = profiles["items"][0]["id"]  # a follow-up can be founded on the HIS's offline visit
        _, visits = _request(f"{base}/api/patients/{wang}/offline-visits", token=tokens["access_token"])
        assert [v["diagnosis"] for v in visits] == ["胃脘痛·脾胃虚寒证；慢性胃炎"]
        _, services = _request(f"{base}/api/consult/services", token=tokens["access_token"])
        assert {s["doctor_name"] for s in services} >= {"李思远", "陈静"} and "吴晓" not in str(services)
        assert (tmp_path / "qihuang.sqlite3").exists()
        for channel in ("wechat", "alipay"):  # a payment end to end through the sandbox
            paid = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "manage.py", "demo_pay", "--base", base,
                                   "--channel", channel], cwd=ROOT, env=env, capture_output=True, text=True,
                                  timeout=60)
            assert paid.returncode == 0 and "paid: status succeeded" in paid.stdout, paid.stdout + paid.stderr
        consult = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "manage.py", "demo_consult", "--base",
                                  base], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert consult.returncode == 0 and "paid: waiting for 李思远" in consult.stdout, consult.stdout + consult.stderr
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert f"{base}/api/docs" in out and f"{base}/console/" in out and "dr_li" in out and "pharmacist_zhao" in out
