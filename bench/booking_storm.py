"""Benchmark: a booking storm at release time (放号), against a no-op authenticated endpoint in the same run.

    bin/bench booking_storm      (PostgreSQL and Redis as in the tests; a database `qihuang_bench`)

2,000 patient accounts, each with one verified 就诊人 (ID number encrypted as in production) and
an access token, are made directly in the database in bulk; the preparation is timed apart. A
uvicorn server (docker/entrypoint.sh web) serves the app on loopback. Every client opens its
keep-alive connection beforehand; one schedule with 100 places is then released a few seconds
ahead, and at that instant all 2,000 clients POST /api/bookings at once. A client answered
"booking_not_released" retries at once, as the apps do; those retries are counted apart. Then the
same clients on the same connections GET /api/me (a no-op authenticated endpoint: token check,
throttle, one small query) all at once, a few rounds: the ceiling.

Prints the storm's wall time, throughput, latency percentiles, places held, oversold (checked in
the answers and in the database), answers by code, and the ratio to the ceiling. The client is one
asyncio process (uvloop) speaking HTTP/1.1 on raw keep-alive sockets: the cheapest load generator
Python has, because it shares the 2 cores with the server and the database. Never fails on timing;
exits non-zero only if the storm broke a correctness rule (oversold, a place lost, a 5xx).

Knobs (environment): BENCH_PATIENTS (2000), BENCH_PLACES (100), BENCH_CONNECTIONS (one per patient;
fewer means each connection sends its patients' requests one after another), BENCH_WORKERS (uvicorn
workers, 4), BENCH_POOL_MAX (DATABASE_POOL_MAX per worker, 8), BENCH_CEILING_ROUNDS (3),
BENCH_RELEASE_IN (seconds from the end of the warm-up to 放号, 3), BENCH_FIRE_EARLY_MS (clients fire
this much before the instant, as apps with a countdown do; 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from datetime import time as clock
from pathlib import Path

import django
import psycopg
from storm_client import Connection, Outcome, _code, _request  # bench/ is on sys.path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PATIENTS = int(os.environ.get("BENCH_PATIENTS", "2000"))
PLACES = int(os.environ.get("BENCH_PLACES", "100"))
CONNECTIONS = min(int(os.environ.get("BENCH_CONNECTIONS", str(PATIENTS))), PATIENTS)
WORKERS = os.environ.get("BENCH_WORKERS", "4")
POOL_MAX = os.environ.get("BENCH_POOL_MAX", "8")
CEILING_ROUNDS = int(os.environ.get("BENCH_CEILING_ROUNDS", "3"))
RELEASE_IN = float(os.environ.get("BENCH_RELEASE_IN", "3"))
FIRE_EARLY = float(os.environ.get("BENCH_FIRE_EARLY_MS", "0")) / 1000
THROTTLE = os.environ.get("BENCH_THROTTLE", "100000/m")
WARMUP_BOOKINGS = min(50, PATIENTS)


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


# --- data, made directly in the database -----------------------------------------------------

@dataclass(frozen=True)
class Fixture:
    clients: list[tuple[str, str]]  # (access token, 就诊人 id), one per patient account
    storm_id: str
    warmup_id: str
    probe_id: str


def _id_number(n: int) -> str:
    from backend.accounts.idcard import resident_id_check_char

    born = date(1950, 1, 1) + timedelta(days=n % 20000)
    first17 = f"110101{born:%Y%m%d}{n % 1000:03d}"
    return first17 + resident_id_check_char(first17)


def _schedule(doctor, *, capacity: int, period: str, visit_type: str, released: bool):
    from django.utils import timezone

    from backend.scheduling.models import Schedule

    return Schedule.objects.create(
        doctor=doctor, department=doctor.department, date=timezone.localdate() + timedelta(days=7), period=period,
        visit_type=visit_type, capacity=capacity, remaining=capacity, fee_fen=5000, starts_at=clock(8, 0),
        release_at=timezone.now() + (timedelta(minutes=-1) if released else timedelta(days=1)),
        window_minutes=30, per_window=5)


def _prepare() -> Fixture:
    """Accounts, verified 就诊人 and tokens in bulk (the per-row work is the ID number's SM4 sealing
    and blind index, which bulk_create runs through the fields' pre_save like save() does)."""
    from django.conf import settings
    from django.db import transaction
    from django.utils import timezone

    from backend.accounts.models import (
        Department,
        DoctorProfile,
        DoctorTitle,
        PatientProfile,
        RefreshToken,
        TokenFamily,
        User,
        VerificationStatus,
    )
    from backend.accounts.services import tokens

    now = timezone.now()
    with transaction.atomic():
        department = Department.objects.create(code="bench_internal", name="内科")
        doctor = DoctorProfile.objects.create(
            user=User.objects.create(username="bench_doctor", display_name="压测医生"), department=department,
            title=DoctorTitle.CHIEF, qualification_certificate_no="200811110110101",
            practice_certificate_no="110110000012345", independent_practice_since=date(2010, 7, 1))
        users = User.objects.bulk_create([User(username=f"bench_wx_{i:05d}") for i in range(PATIENTS)],
                                         batch_size=1000)
        profiles = PatientProfile.objects.bulk_create(
            [PatientProfile(owner=u, name=f"患者{i:05d}", id_type="resident_id", id_number=_id_number(i), sex="male",
                            birth_date=date(1980, 1, 1), relation="self", is_default=True,
                            verification_status=VerificationStatus.VERIFIED, verified_at=now)
             for i, u in enumerate(users)], batch_size=1000)
        families = TokenFamily.objects.bulk_create([TokenFamily(user=u, ip="127.0.0.1", user_agent="bench")
                                                    for u in users], batch_size=1000)
        raw = [secrets.token_urlsafe(32) for _ in families]
        RefreshToken.objects.bulk_create(
            [RefreshToken(family=f, token_hash=hashlib.sha256(r.encode()).hexdigest(),
                          expires_at=now + timedelta(seconds=settings.REFRESH_TOKEN_TTL_SECONDS))
             for f, r in zip(families, raw, strict=True)], batch_size=1000)
        # the same access token token_family_start() hands out, without its two round trips per account
        access = [tokens._pair(f, r).access_token for f, r in zip(families, raw, strict=True)]
        storm = _schedule(doctor, capacity=PLACES, period="morning", visit_type="offline", released=False)
        warmup = _schedule(doctor, capacity=10, period="afternoon", visit_type="offline", released=True)
        probe = _schedule(doctor, capacity=1, period="evening", visit_type="offline", released=True)
    sample = PatientProfile.objects.get(pk=profiles[-1].pk)
    assert sample.id_number == _id_number(PATIENTS - 1), "the ID number must read back through its encryption"
    assert PatientProfile.objects.filter(id_number_index=sample.id_number_index).count() == 1
    return Fixture([(a, str(p.pk)) for a, p in zip(access, profiles, strict=True)], str(storm.pk), str(warmup.pk),
                   str(probe.pk))


# --- the server ----------------------------------------------------------------------------

def _server(port: int, log: Path) -> subprocess.Popen:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", HOST="127.0.0.1",
               PORT=str(port), WEB_CONCURRENCY=WORKERS, DATABASE_POOL_MAX=POOL_MAX, LOG_LEVEL="WARNING",
               API_THROTTLE_USER=THROTTLE, API_THROTTLE_ANON=THROTTLE)
    with log.open("wb") as out:
        proc = subprocess.Popen([str(ROOT / "docker" / "entrypoint.sh"), "web", "--no-access-log",
                                 "--timeout-keep-alive", "120", "--backlog", "4096"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return proc
        except OSError:
            time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit(f"server did not start; see {log}")


async def _round(conns: list[Connection], jobs: list[list[tuple[bytes, str]]], label: str, at: float,
                 retry_not_released: bool = False) -> Outcome:
    """Every connection sends its jobs one after another; all start at perf_counter ``at``."""
    out = Outcome(label)
    go = asyncio.Event()

    async def client(conn: Connection, mine: list[tuple[bytes, str]]) -> None:
        await go.wait()
        for raw, patient in mine:
            while True:
                sent = time.perf_counter()
                try:
                    status, body = await conn.request(raw)
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                    out.latencies.append(time.perf_counter() - sent)
                    out.codes[f"transport {type(exc).__name__}"] += 1
                    with contextlib.suppress(OSError):
                        await conn.open()
                    break
                answered = time.perf_counter()
                code = _code(status, body)
                if retry_not_released and code == "409 booking_not_released":
                    out.retries += 1
                    continue
                out.latencies.append(answered - sent)
                out.codes[code] += 1
                if status == 201:
                    out.held_patients.append(patient)
                    out.last_held = max(out.last_held, answered)
                break
        out.finished = max(out.finished, time.perf_counter())

    tasks = [asyncio.create_task(client(c, j)) for c, j in zip(conns, jobs, strict=True)]
    await asyncio.sleep(max(0.0, at - time.perf_counter() - 0.005))
    while time.perf_counter() < at:  # the last few milliseconds without the timer's slack
        await asyncio.sleep(0)
    out.started = time.perf_counter()
    go.set()
    await asyncio.gather(*tasks)
    return out


def _jobs(fx: Fixture, make) -> list[list[tuple[bytes, str]]]:
    jobs: list[list[tuple[bytes, str]]] = [[] for _ in range(CONNECTIONS)]
    for i, (token, patient) in enumerate(fx.clients):
        jobs[i % CONNECTIONS].append((make(token, patient), patient))
    return jobs


async def _drive(fx: Fixture, port: int, release) -> tuple[Outcome, list[Outcome], float]:
    conns = [Connection("127.0.0.1", port) for _ in range(CONNECTIONS)]
    opened = time.perf_counter()
    for i in range(0, len(conns), 250):
        await asyncio.gather(*(c.open() for c in conns[i:i + 250]))
    connect_seconds = time.perf_counter() - opened

    def me(token: str, patient: str) -> bytes:
        return _request("GET", "/api/me", token, port)

    def hold(schedule_id: str):
        return lambda token, patient: _request("POST", "/api/bookings", token, port, json.dumps(
            {"schedule_id": schedule_id, "patient_id": patient}).encode())

    me_jobs = _jobs(fx, me)
    warm = await _round(conns, me_jobs, "warm-up GET /api/me", time.perf_counter())
    if warm.codes["200"] != PATIENTS:
        raise SystemExit(f"warm-up: every token must work, got {dict(warm.codes)}")
    warm_jobs = [j[:1] if i < WARMUP_BOOKINGS else [] for i, j in enumerate(_jobs(fx, hold(fx.warmup_id)))]
    await _round(conns, warm_jobs, "warm-up bookings", time.perf_counter())

    # 放号: the schedule's release_at is set RELEASE_IN seconds ahead (epoch seconds back)
    release_wall = await asyncio.to_thread(release)
    at = time.perf_counter() + (release_wall - time.time()) - FIRE_EARLY
    storm = await _round(conns, _jobs(fx, hold(fx.storm_id)), "booking storm POST /api/bookings", at,
                         retry_not_released=True)
    storm.release = at + FIRE_EARLY
    ceilings = [await _round(conns, me_jobs, f"ceiling GET /api/me, round {r + 1}", time.perf_counter() + 0.2)
                for r in range(CEILING_ROUNDS)]
    for c in conns:
        c.close()
    return storm, ceilings, connect_seconds


# --- queries per request, in process -------------------------------------------------------------

def _queries_per_request(fx: Fixture, storm: Outcome) -> dict[str, int]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    logging.getLogger("django.request").setLevel(logging.ERROR)  # the 409 is expected

    held = set(storm.held_patients)
    loser = next((c for c in fx.clients if c[1] not in held), fx.clients[0])
    counts = {}
    for label, method, path, client, schedule in [
        ("GET /api/me", "get", "/api/me", loser, None),
        ("POST /api/bookings, full (409)", "post", "/api/bookings", loser, fx.storm_id),
        ("POST /api/bookings, held (201)", "post", "/api/bookings", loser, fx.probe_id),
    ]:
        http = Client(HTTP_AUTHORIZATION=f"Bearer {client[0]}")
        with CaptureQueriesContext(connection) as ctx:
            if method == "get":
                http.get(path)
            else:
                http.post(path, {"schedule_id": schedule, "patient_id": client[1]}, content_type="application/json")
        counts[label] = len(ctx.captured_queries)
    return counts


# --- the run -------------------------------------------------------------------------------------

def _print(o: Outcome, ceiling: float | None = None) -> None:
    ratio = f"  ratio to ceiling {o.rate / ceiling:.2f}" if ceiling else ""
    print(f"{o.label:<40} {o.requests:>5} requests  {o.wall:6.2f} s  {o.rate:8.1f} /s  "
          f"p50 {o.pct(0.5):7.1f} ms  p90 {o.pct(0.9):7.1f} ms  p99 {o.pct(0.99):7.1f} ms{ratio}")


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.config.settings")
    os.environ.setdefault("ACCESS_TOKEN_TTL_SECONDS", str(2 * 3600))  # the tokens outlive the run (server too)
    _prepare_database()
    django.setup()
    from django.db.models import Count
    from django.utils import timezone

    from backend.scheduling.models import Booking, Schedule
    from backend.scheduling.states import ACTIVE_BOOKING

    started = time.perf_counter()
    fx = _prepare()
    prep_seconds = time.perf_counter() - started
    print(f"preparation: {PATIENTS} accounts, {PATIENTS} verified 就诊人 (ID numbers SM4-sealed), {PATIENTS} "
          f"token families and access tokens, 3 schedules, in bulk: {prep_seconds:.2f} s")

    def release() -> float:
        at = timezone.now() + timedelta(seconds=RELEASE_IN)
        Schedule.objects.filter(pk=fx.storm_id).update(release_at=at)
        return at.timestamp()

    port = _free_port()
    log = Path(os.environ.get("QIHUANG_STATE_DIR", ROOT / ".data" / "test")) / "bench-booking-storm-server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    proc = _server(port, log)
    try:
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            runner = asyncio.run
        storm, ceilings, connect_seconds = runner(_drive(fx, port, release))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)

    print(f"server: uvicorn, {WORKERS} workers, DATABASE_POOL_MAX {POOL_MAX}, no access log, "
          f"API_THROTTLE_USER/ANON {THROTTLE} (raised for the bench), access token TTL 2 h")
    print(f"client: one asyncio process (uvloop), {CONNECTIONS} keep-alive connections opened beforehand in "
          f"{connect_seconds:.2f} s, {PATIENTS} patients; 放号 {RELEASE_IN:g} s after the warm-up, "
          f"clients fire {FIRE_EARLY * 1000:g} ms before it")
    ceiling = statistics.median(c.rate for c in ceilings)
    for c in ceilings:
        _print(c)
    _print(storm, ceiling)

    schedule = Schedule.objects.get(pk=fx.storm_id)
    active = Booking.objects.filter(schedule_id=fx.storm_id, status__in=ACTIVE_BOOKING)
    in_db = active.count()
    doubled = active.values("patient_id").annotate(n=Count("id")).filter(n__gt=1).count()
    held = storm.codes["201"]
    server_errors = sum(n for code, n in storm.codes.items() if code.startswith("5") or code.startswith("transport"))
    other = {code: n for code, n in storm.codes.items() if code not in ("201", "409 booking_slot_full")}
    print(f"storm: wall {storm.wall:.2f} s, {storm.rate:.1f} requests/s, latency p50 {storm.pct(0.5):.1f} ms, "
          f"p90 {storm.pct(0.9):.1f} ms, p99 {storm.pct(0.99):.1f} ms (send to answer, final answers); "
          f"sold out {storm.last_held - storm.release:.2f} s after 放号")
    print(f"held: {held} of {PLACES} places (201 answers); oversold: {held - PLACES} by the answers, "
          f"{in_db - PLACES} by the database ({in_db} active bookings, {doubled} 就诊人 twice); "
          f"schedule remaining: {schedule.remaining}")
    print(f"answers: {dict(sorted(storm.codes.items()))}; retries on booking_not_released: {storm.retries}; "
          f"other than 201/409 booking_slot_full: {other or 'none'}; 5xx or transport errors: {server_errors}")
    print(f"ceiling (median of {len(ceilings)} rounds of GET /api/me): {ceiling:.1f} /s; "
          f"ratio storm/ceiling: {storm.rate / ceiling:.2f}")
    text = log.read_text(errors="replace")
    print(f"server log: {text.count('Traceback')} tracebacks, {text.count('Internal Server Error')} "
          f"'Internal Server Error' lines ({log})")
    print(f"queries per request (in process): {_queries_per_request(fx, storm)}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")

    broken = []
    if held != PLACES or in_db != PLACES or schedule.remaining != 0 or doubled:
        broken.append("places: exactly every place held once, none oversold, none lost")
    if server_errors or storm.codes["409 booking_slot_full"] != PATIENTS - PLACES:
        broken.append(f"every loser answered 409 booking_slot_full, no 5xx ({other})")
    if broken:
        raise SystemExit("BROKEN: " + "; ".join(broken))


if __name__ == "__main__":
    main()
