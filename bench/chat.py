"""Benchmark: consultation chat delivery over real sockets vs a raw Redis pub/sub round trip, and idle sockets.

    bin/bench chat      (PostgreSQL and Redis as in the tests; a database `qihuang_bench`)

One uvicorn worker (docker/entrypoint.sh web, as bench/booking_storm.py starts it) serves the app on
loopback with the channels-redis layer. Data as in booking_storm (its helpers: accounts, verified 就诊人
and access tokens in bulk); one text consultation is taken through the real services to in progress
(tests/consultations/helpers.py), and one more per idle socket is cloned from it in bulk.

(a) delivery: the patient's socket sends N text messages, paced; the doctor's socket (staff session
    cookie) receives each; latency is send → the doctor's frame, one clock (both sockets here).
    Then a closed loop on the same socket (the next message when the last is acked): messages per second.
(a2) senders: K patient sockets on K other consultations (in progress, cloned like the idle ones), each
    with its doctor's socket; every patient sends its next message when the previous one is acked, all at
    once, for a fixed time after a few warm-up messages each: messages per second in total (the worker's
    chat throughput, not one socket's), ack latency p50/p99, and whether every doctor's stream showed
    every seq exactly once, in order.
(b) baseline, same run, same pacing: redis.asyncio PUBLISH → a subscriber receives.
(c) idle sockets: K authenticated chat sockets, one per consultation, are opened and left idle; the
    worker's RSS (/proc/<pid>/status VmRSS) before and after gives the memory per socket. After a hold
    longer than 5 s every socket is pinged and the pongs counted (a socket the server dropped is lost).

Knobs (environment): BENCH_MESSAGES (1000), BENCH_INTERVAL_MS (20), BENCH_SENDERS (8; 0 skips (a2)),
BENCH_SENDERS_SECONDS (10), BENCH_IDLE_SOCKETS (2000),
BENCH_IDLE_HOLD (12 s; longer than the channel layer's 5 s blocking read), BENCH_SERVER_REDIS_OPTIONS
("": appended to the server's REDIS_URL as a query, e.g. "max_connections=4000" lifts redis-py's
100-connection pool limit, which 2,000 sockets closing at once exceed). Tracebacks in the server log
are counted up to the end of the hold and while the idle sockets all close at once. Never fails on
timing; exits non-zero only if a chat message was lost, doubled or reordered (in (a) or (a2)).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

IDLE = int(os.environ.get("BENCH_IDLE_SOCKETS", "2000"))
SENDERS = int(os.environ.get("BENCH_SENDERS", "8"))
os.environ["BENCH_PATIENTS"] = str(1 + IDLE + SENDERS)  # booking_storm's helpers read their knobs at import
os.environ["BENCH_WORKERS"] = "1"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backend.config.settings")
os.environ.setdefault("ACCESS_TOKEN_TTL_SECONDS", str(2 * 3600))

import booking_storm as storm  # noqa: E402  (bench/ is on sys.path)
import django  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
from chat_idle import idle_sockets  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "1000"))
INTERVAL = float(os.environ.get("BENCH_INTERVAL_MS", "20")) / 1000
HOLD = float(os.environ.get("BENCH_IDLE_HOLD", "12"))
SERVER_REDIS_OPTIONS = os.environ.get("BENCH_SERVER_REDIS_OPTIONS", "")
WARMUP = 20
CLOSED_LOOP = 500
SENDERS_SECONDS = float(os.environ.get("BENCH_SENDERS_SECONDS", "10"))
SENDERS_WARMUP = 5  # messages per sender before the clock starts


# --- data ------------------------------------------------------------------------------------------

def _prepare() -> tuple[str, str, str, list[tuple[str, str]], list[tuple[str, str]]]:
    """(chat consultation id, the patient's token, the doctor's session cookie), and (consultation, token)
    for each idle socket and for each sender."""
    from django.conf import settings
    from django.test import Client

    from backend.accounts.models import PatientProfile, User
    from backend.consultations.models import Consultation
    from tests.consultations.helpers import in_progress

    fx = storm._prepare()
    doctor = User.objects.get(username="bench_doctor")
    (token, profile_id), *others = fx.clients
    patient = PatientProfile.objects.select_related("owner").get(pk=profile_id)
    chat = in_progress(patient.owner, patient, doctor)
    client = Client()
    client.force_login(doctor)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"

    fields = [f.attname for f in Consultation._meta.concrete_fields if f.attname not in ("id", "last_seq")]
    profiles = PatientProfile.objects.filter(pk__in=[p for _, p in others]).values_list("pk", "owner_id")
    owners = {str(pk): owner for pk, owner in profiles}
    clones = Consultation.objects.bulk_create(
        [Consultation(**{f: getattr(chat, f) for f in fields} | {"patient_id": p, "account_id": owners[p]})
         for _, p in others], batch_size=1000)
    rooms = [(str(c.pk), t) for c, (t, _) in zip(clones, others, strict=True)]
    return str(chat.pk), token, cookie, rooms[:IDLE], rooms[IDLE:]


# --- measurements ----------------------------------------------------------------------------------

def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _row(label: str, values: list[float]) -> str:
    return (f"| {label} | {len(values):,} | {_pct(values, 0.5):.2f} ms | {_pct(values, 0.99):.2f} ms | "
            f"{max(values) * 1000:.2f} ms |")


async def _paced(n: int, send) -> None:
    start = time.perf_counter()
    for i in range(n):
        await asyncio.sleep(max(0.0, start + i * INTERVAL - time.perf_counter()))
        await send(i)


async def _chat(ws_base: str, consultation: str, token: str, cookie: str):
    """Latencies send → the doctor's frame and send → the ack, the seqs the doctor was shown, and the rate of
    a closed loop (each message sent when the previous one is acked)."""
    url = f"{ws_base}/ws/consultations/{consultation}/"
    opts = dict(proxy=None, ping_interval=None, max_queue=None)
    patient = await connect(f"{url}?access_token={token}", **opts)
    doctor = await connect(url, additional_headers={"Cookie": cookie}, **opts)
    sent: dict[str, float] = {}
    got: dict[str, float] = {}
    acked: dict[str, float] = {}
    ack_arrived = asyncio.Event()
    seqs: list[int] = []
    total = WARMUP + MESSAGES

    async def doctor_reads() -> None:
        while len(got) < total:
            frame = json.loads(await doctor.recv())
            if frame["type"] == "message":
                seqs.append(frame["data"]["seq"])
                if frame["data"]["client_msg_id"] in sent:
                    got[frame["data"]["client_msg_id"]] = time.perf_counter()

    async def patient_reads() -> None:  # its acks (and its own messages coming back)
        with contextlib.suppress(ConnectionClosed):
            async for raw in patient:
                frame = json.loads(raw)
                if frame["type"] == "ack":
                    acked[frame["client_msg_id"]] = time.perf_counter()
                    ack_arrived.set()

    async def send(i: int) -> None:
        cid = f"bench-{i:05d}"
        sent[cid] = time.perf_counter()
        ack_arrived.clear()
        await patient.send(json.dumps({"type": "message", "client_msg_id": cid, "kind": "text",
                                       "body": f"压测消息 {i}", "payload": {}}))

    reader, drain = asyncio.create_task(doctor_reads()), asyncio.create_task(patient_reads())
    await _paced(total, send)
    with contextlib.suppress(TimeoutError):  # a lost message shows as a short, broken stream below
        await asyncio.wait_for(reader, 60)
    started = time.perf_counter()
    for i in range(total, total + CLOSED_LOOP):  # the next message as soon as the last one is acked
        await send(i)
        await asyncio.wait_for(ack_arrived.wait(), 30)
    rate = CLOSED_LOOP / (time.perf_counter() - started)
    await patient.close()
    await doctor.close()
    await drain
    measured = sorted(sent)[WARMUP:total]
    return ([got[c] - sent[c] for c in measured if c in got], [acked[c] - sent[c] for c in measured if c in acked],
            seqs, rate)


async def _closed_loop(patient, label: str, *, count: int = 0, until: float = 0.0) -> list[float]:
    """Messages on one socket, each sent when the previous one is acked: ``count`` of them, or until the
    clock passes ``until``. Returns each message's send → ack latency."""
    latencies: list[float] = []
    while (len(latencies) < count) if count else (time.perf_counter() < until):
        cid = f"{label}-{len(latencies):06d}"
        sent = time.perf_counter()
        await patient.send(json.dumps({"type": "message", "client_msg_id": cid, "kind": "text",
                                       "body": f"压测消息 {cid}", "payload": {}}))
        while True:  # its own message comes back too; only the ack ends the wait
            frame = json.loads(await asyncio.wait_for(patient.recv(), 30))
            if frame["type"] == "error":
                raise SystemExit(f"BROKEN: sender {label} got {frame}")
            if frame["type"] == "ack" and frame["client_msg_id"] == cid:
                break
        latencies.append(time.perf_counter() - sent)
    return latencies


async def _stream(doctor, seqs: list[int]) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for raw in doctor:
            frame = json.loads(raw)
            if frame["type"] == "message":
                seqs.append(frame["data"]["seq"])


def _cpu_seconds(pid: int) -> tuple[float, float]:
    """(the worker's CPU seconds, the machine's busy CPU seconds), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    worker = sum(int(x) for x in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[11:13])
    machine = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return worker / tick, (sum(machine) - machine[3] - machine[4]) / tick  # busy: all but idle and iowait


def _stream_problem(consultation: str, seqs: list[int], n: int) -> str:
    """Empty if the doctor saw seqs 1..n, each once, in order; else what went wrong."""
    if seqs == list(range(1, n + 1)):
        return ""
    missing = sorted(set(range(1, n + 1)) - set(seqs))
    doubled = sorted({s for s in seqs if seqs.count(s) > 1})
    return (f"consultation {consultation}: {n} sent, its doctor saw {len(seqs)}; missing {missing[:10]}, "
            f"doubled {doubled[:10]}, sorted: {seqs == sorted(seqs)}, last {seqs[-5:]}")


async def _senders(ws_base: str, rooms: list[tuple[str, str]], cookie: str, pid: int) -> dict[str, Any]:
    """K patients send at once, each in a closed loop on its own consultation, for SENDERS_SECONDS; each
    consultation's doctor socket must show seqs 1..n, every one once, in order. Also the CPU the worker
    and the whole machine used meanwhile (in cores)."""
    opts = dict(proxy=None, ping_interval=None, max_queue=None)
    urls = [f"{ws_base}/ws/consultations/{c}/" for c, _ in rooms]
    patients = await asyncio.gather(*(connect(f"{ws_base}/ws/consultations/{c}/?access_token={t}", **opts)
                                      for c, t in rooms))
    doctors = await asyncio.gather(*(connect(u, additional_headers={"Cookie": cookie}, **opts) for u in urls))
    seqs: list[list[int]] = [[] for _ in rooms]
    readers = [asyncio.create_task(_stream(d, s)) for d, s in zip(doctors, seqs, strict=True)]
    await asyncio.gather(*(_closed_loop(p, f"w{k}", count=SENDERS_WARMUP) for k, p in enumerate(patients)))
    cpu_before, started = _cpu_seconds(pid), time.perf_counter()
    acks = await asyncio.gather(*(_closed_loop(p, f"s{k}", until=started + SENDERS_SECONDS)
                                  for k, p in enumerate(patients)))
    elapsed = time.perf_counter() - started
    cores = [(after - before) / elapsed for before, after in zip(cpu_before, _cpu_seconds(pid), strict=True)]
    sent = [SENDERS_WARMUP + len(a) for a in acks]
    deadline = time.perf_counter() + 30
    while any(len(s) < n for s, n in zip(seqs, sent, strict=True)) and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.gather(*(ws.close() for ws in (*patients, *doctors)))
    await asyncio.gather(*readers)
    problems = [_stream_problem(c, s, n) for (c, _), s, n in zip(rooms, seqs, sent, strict=True)]
    return {"acks": [x for a in acks for x in a], "elapsed": elapsed, "per_sender": [len(a) for a in acks],
            "worker_cores": cores[0], "machine_cores": cores[1], "ok": not any(problems),
            "problems": [p for p in problems if p]}


async def _redis_round_trips(url: str) -> list[float]:
    publisher = aioredis.Redis.from_url(url)
    subscriber = aioredis.Redis.from_url(url, socket_timeout=None)
    pubsub = subscriber.pubsub()
    await pubsub.subscribe("bench:chat:baseline")
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    sent: list[float] = [0.0] * (WARMUP + MESSAGES)
    lat: list[float] = []

    async def listen() -> None:
        while len(lat) < WARMUP + MESSAGES:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
            if message is not None:
                lat.append(time.perf_counter() - sent[int(message["data"])])

    async def send(i: int) -> None:
        sent[i] = time.perf_counter()
        await publisher.publish("bench:chat:baseline", str(i))

    listener = asyncio.create_task(listen())
    await _paced(WARMUP + MESSAGES, send)
    await asyncio.wait_for(listener, 60)
    await pubsub.aclose()
    await publisher.aclose()
    await subscriber.aclose()
    return lat[WARMUP:]


# --- the run ---------------------------------------------------------------------------------------

def _machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "?")
    return f"{model}, {os.cpu_count()} cores, {platform.platform()}, CPython {platform.python_version()}"


def _report_senders(senders: dict[str, Any] | None) -> None:
    if senders is None:
        return
    done = len(senders["acks"])
    print(f"\nclosed loop, {SENDERS} senders on {SENDERS} consultations at once (each sends on its ack), "
          f"{SENDERS_SECONDS:g} s after {SENDERS_WARMUP} warm-up each: {done:,} messages, "
          f"{done / senders['elapsed']:.0f} messages/s in total (per sender {min(senders['per_sender'])}–"
          f"{max(senders['per_sender'])}); every doctor's stream saw every seq once, in order: {senders['ok']}")
    print(f"CPU meanwhile: the worker {senders['worker_cores']:.2f} cores, the whole machine "
          f"{senders['machine_cores']:.2f} of {os.cpu_count()} (client, PostgreSQL, Redis and other users included)")
    for problem in senders["problems"]:
        print(f"BROKEN stream: {problem}")
    print("| path | messages | p50 | p99 | max |\n|---|---:|---:|---:|---:|")
    print(_row(f"{SENDERS} senders: send → its ack (stored, committed)", senders["acks"]))


def _report(chat: list[float], acks: list[float], base: list[float], idle: dict[str, float], seqs_ok: bool,
            rate: float, senders: dict[str, Any] | None) -> None:
    print(f"\nchat delivery (patient socket → doctor socket), {MESSAGES} messages, one every "
          f"{INTERVAL * 1000:g} ms, after {WARMUP} warm-up; baseline: Redis PUBLISH → subscriber, same pacing\n")
    print("| path | messages | p50 | p99 | max |\n|---|---:|---:|---:|---:|")
    print(_row("chat: patient sends → doctor's socket receives", chat))
    print(_row("chat: patient sends → its ack (stored, committed)", acks))
    print(_row("raw Redis pub/sub round trip (baseline)", base))
    print(f"\nratio chat/baseline: p50 {statistics.median(chat) / statistics.median(base):.0f}×, "
          f"p99 {_pct(chat, 0.99) / _pct(base, 0.99):.0f}×; doctor saw every seq once, in order: {seqs_ok}")
    print(f"closed loop, one socket, next message on the ack: {rate:.0f} messages/s stored and broadcast "
          f"({CLOSED_LOOP} messages); a paced rate above this only queues")
    _report_senders(senders)
    grown = idle["after"] - idle["before"]
    print(f"\nidle chat sockets on one uvicorn worker: {idle['opened']:,} opened ({idle['failed']} failed) in "
          f"{idle['open_seconds']:.1f} s ({idle['opened'] / idle['open_seconds']:.0f} /s: token check, "
          f"party check with its audit row, group join, backlog read)")
    print("| worker RSS before | after | per socket | alive after a hold |\n|---:|---:|---:|---:|")
    print(f"| {idle['before'] / 1024:.1f} MiB | {idle['after'] / 1024:.1f} MiB | "
          f"{grown / max(idle['opened'], 1):.1f} KiB | {idle['alive']:,} of {idle['opened']:,} after "
          f"{HOLD:g} s idle |")
    print(f"server log: {idle['tracebacks_held']} tracebacks up to the end of the hold, "
          f"{idle['tracebacks_closed']} while the {idle['opened']:,} sockets closed at once")
    print(f"\nserver REDIS_URL options: {SERVER_REDIS_OPTIONS or 'none (the settings as they are)'}; "
          f"machine: {_machine()}")


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:  # uvicorn can wait forever on consumers' background tasks
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


def main() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the server inherits it
    storm._prepare_database()
    django.setup()
    started = time.perf_counter()
    consultation, token, cookie, rooms, sender_rooms = _prepare()
    print(f"preparation: {1 + IDLE + SENDERS} accounts with tokens, 1 consultation through the services and "
          f"{IDLE + SENDERS} cloned, in {time.perf_counter() - started:.1f} s")

    base_redis = os.environ["REDIS_URL"]
    if SERVER_REDIS_OPTIONS:  # for the server only
        os.environ["REDIS_URL"] = f"{base_redis}{'&' if '?' in base_redis else '?'}{SERVER_REDIS_OPTIONS}"
    os.environ["CONSULT_MESSAGE_RATE"] = "1000000/60"
    port = storm._free_port()
    log = Path(os.environ.get("QIHUANG_STATE_DIR", ROOT / ".data" / "test")) / "bench-chat-server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    proc = storm._server(port, log)
    ws_base = f"ws://127.0.0.1:{port}"

    def tracebacks() -> int:
        return log.read_text(errors="replace").count("Traceback")

    try:
        chat, acks, seqs, rate = asyncio.run(_chat(ws_base, consultation, token, cookie))
        senders = asyncio.run(_senders(ws_base, sender_rooms, cookie, proc.pid)) if SENDERS else None
        base = asyncio.run(_redis_round_trips(base_redis))
        idle = asyncio.run(idle_sockets(ws_base, rooms, proc.pid, tracebacks, hold=HOLD))
    finally:
        _stop(proc)
    first = seqs[0] if seqs else 0
    seqs_ok = seqs == list(range(first, first + len(seqs))) and len(seqs) >= WARMUP + MESSAGES
    _report(chat, acks, base, idle, seqs_ok, rate, senders)
    print(f"server log: {log}")
    if not seqs_ok or (senders is not None and not senders["ok"]):
        raise SystemExit("BROKEN: a doctor's stream lost, doubled or reordered a message")


if __name__ == "__main__":
    sys.exit(main())
