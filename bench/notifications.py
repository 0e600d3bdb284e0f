"""Benchmark: payment notifications processed per second, against a no-op endpoint in the same run.

    bin/bench            (PostgreSQL and Redis as in the tests; a database `qihuang_bench`)

A uvicorn server (docker/entrypoint.sh web) serves the app on loopback. N pending WeChat Pay
intents are created; N real v3 notifications (RSA-signed headers, AES-256-GCM resource) are
posted concurrently to /payments/notify/wechat; then the same N again (duplicates: the
idempotent path); then N GETs of /healthz (a no-op view) with the same client. Prints the
rates and the ratios to the no-op baseline. Never fails on timing.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import django
import psycopg
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
N = int(os.environ.get("BENCH_N", "400"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "8"))
PLATFORM_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PLATFORM_KEY_ID = "PUB_KEY_ID_0199" + secrets.token_hex(8).upper()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare_database() -> None:
    url = os.environ["DATABASE_URL"]
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True)


def _intents() -> list[tuple[str, int]]:
    from django.conf import settings
    from django.utils import timezone

    from backend.accounts.models import User
    from backend.demo.models import DemoCharge
    from payments.models import PaymentIntent

    user = User.objects.create(username=f"bench_{uuid.uuid4().hex[:8]}")
    charges = DemoCharge.objects.bulk_create(
        [DemoCharge(account=user, amount_fen=100 + i, description="bench") for i in range(N)])
    rows = [PaymentIntent(payable_type="demo_charge", payable_id=str(charges[i].pk), account=user, channel="wechat",
                          amount_fen=100 + i, description="bench", out_trade_no=f"BENCH{i:08d}", status="pending",
                          expires_at=timezone.now() + timedelta(hours=1)) for i in range(N)]
    PaymentIntent.objects.bulk_create(rows)
    assert settings.WECHATPAY_MCHID
    return [(r.out_trade_no, r.amount_fen) for r in rows]


def _notification(out_trade_no: str, amount: int) -> tuple[dict[str, str], bytes]:
    from django.conf import settings

    resource = {"appid": settings.WECHATPAY_APPID, "mchid": settings.WECHATPAY_MCHID, "out_trade_no": out_trade_no,
                "transaction_id": "42" + secrets.token_hex(12), "trade_state": "SUCCESS", "trade_type": "JSAPI",
                "success_time": "2026-11-23T10:00:00+08:00", "payer": {"openid": "oBENCH"},
                "amount": {"total": amount, "payer_total": amount, "currency": "CNY", "payer_currency": "CNY"}}
    nonce = secrets.token_hex(6)
    sealed = AESGCM(settings.WECHATPAY_APIV3_KEY.encode()).encrypt(nonce.encode(), json.dumps(resource).encode(),
                                                                  b"transaction")
    body = json.dumps({"id": str(uuid.uuid4()), "create_time": "2026-11-23T10:00:01+08:00",
                       "resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS", "summary": "支付成功",
                       "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                                    "associated_data": "transaction", "nonce": nonce,
                                    "ciphertext": base64.b64encode(sealed).decode()}}, ensure_ascii=False).encode()
    ts, header_nonce = str(int(time.time())), secrets.token_hex(16)
    signature = PLATFORM_KEY.sign(f"{ts}\n{header_nonce}\n".encode() + body + b"\n", padding.PKCS1v15(),
                                  hashes.SHA256())
    return {"Wechatpay-Timestamp": ts, "Wechatpay-Nonce": header_nonce, "Wechatpay-Serial": PLATFORM_KEY_ID,
            "Wechatpay-Signature": base64.b64encode(signature).decode(),
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048", "Content-Type": "application/json"}, body


def _server(port: int) -> subprocess.Popen:
    public = PLATFORM_KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", HOST="127.0.0.1",
               PORT=str(port), WEB_CONCURRENCY=os.environ.get("BENCH_WORKERS", "2"), LOG_LEVEL="WARNING",
               WECHATPAY_PUBLIC_KEY=public, WECHATPAY_PUBLIC_KEY_ID=PLATFORM_KEY_ID)
    proc = subprocess.Popen([str(ROOT / "docker" / "entrypoint.sh"), "web"], cwd=ROOT, env=env,
                            start_new_session=True)
    for _ in range(100):
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                return proc
        except requests.ConnectionError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def _run(label: str, calls) -> float:
    session_per_thread: dict[int, requests.Session] = {}

    def one(call):
        import threading

        session = session_per_thread.setdefault(threading.get_ident(), requests.Session())
        return call(session)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        statuses = list(pool.map(one, calls))
    elapsed = time.perf_counter() - started
    bad = [s for s in statuses if s not in (200, 204)]
    rate = len(calls) / elapsed
    print(f"{label:<40} {len(calls):>5} requests  {elapsed:6.2f} s  {rate:8.1f} /s  non-2xx: {len(bad)}")
    return rate


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.config.settings")
    _prepare_database()
    django.setup()
    port = _free_port()
    orders = _intents()
    notices = [_notification(no, amount) for no, amount in orders]
    proc = _server(port)
    base = f"http://127.0.0.1:{port}"
    try:
        notify = [lambda s, h=h, b=b: s.post(f"{base}/payments/notify/wechat", data=b, headers=h,
                                             timeout=30).status_code for h, b in notices]
        noop = [lambda s: s.get(f"{base}/healthz", timeout=30).status_code for _ in range(N)]
        _run("warm-up (no-op)", noop[: min(50, N)])
        baseline = _run("no-op endpoint GET /healthz", noop)
        fresh = _run("notifications (verify, store, capture)", notify)
        replay = _run("duplicate notifications (idempotent)", notify)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    from payments.models import PaymentTransaction, Refund

    captured = PaymentTransaction.objects.filter(intent__out_trade_no__startswith="BENCH").count()
    refunds = Refund.objects.filter(intent__out_trade_no__startswith="BENCH").count()
    print(f"captures recorded: {captured} of {N} (each exactly once); automatic refunds: {refunds}")
    print(f"ratio to no-op: notifications {fresh / baseline:.2f}, duplicates {replay / baseline:.2f}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"concurrency {CONCURRENCY}, uvicorn workers {os.environ.get('BENCH_WORKERS', '2')}")


if __name__ == "__main__":
    main()
