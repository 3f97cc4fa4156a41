"""Intake bench: signed webhooks against a real gunicorn, leads made by one Celery worker.

    .venv/bin/python bench/intake.py [--requests 3000] [--threads 8] [--rate 20] [--duration 30]

Three figures, in this order, on the bench database (`crm_bench`, see bench/README.md):

(a) accept: --requests signed POSTs to /hooks/<key>/ from --threads client threads (one
    http.client connection each, kept alive where the server allows) against gunicorn with
    --web-workers processes of --web-threads threads (production's crm/gunicorn.conf.py;
    --web-threads 0: sync workers); accepted (202) requests per second. No worker runs, so the
    events stay `received` and their messages wait in the broker.
(b) worker: then ONE Celery worker (`celery -A crm worker -c 1 --pool solo`) is started and
    the events of (a) are timed until all are processed (the DB is polled): leads per second,
    from the first to the last `processed_at`, and the wall time including the worker's boot.
(c) latency: with that worker running, --rate webhooks per second for --duration seconds;
    for each, lead.created_at and lead.assigned_at minus the client's send time (same
    machine, same clock). The tenant has 20 reps with profiles (capacity unlimited: nobody
    verifies the bench's leads), so every lead is decided among 20 candidates.

The script starts and stops gunicorn and the worker itself (free port; the broker is a
Redis database of its own, --broker, purged first, so no other process's tasks are eaten
and none of ours reach another worker). JSON to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from common import REPO_ROOT, _percentile, emit, log, prepare_database, setup_django

TENANT_SLUG = "bench-intake"
CHANNEL_NAME = "bench webhook"
DEFAULT_BROKER = "redis://127.0.0.1:6379/9"
REPS = 20
VENV_BIN = Path(sys.executable).parent

PREFIXES = [
    f"1{p}" for p in (39, 38, 37, 36, 35, 50, 51, 52, 58, 59, 86, 87, 88, 89, 80, 81, 33, 53, 77)
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛"]
CITIES = ["南京", "苏州", "杭州", "宁波", "合肥", "济南", "青岛", "福州", "厦门", "上海"]
KINDS = [
    "市第一人民医院",
    "市中医院",
    "康泰医疗器械有限公司",
    "华康体检中心",
    "仁和医疗科技有限公司",
]
MESSAGES = [
    "想了解DR的报价和配置",
    "我院计划采购64排CT，急需参数和报价",
    "超声项目预计下月发布采购公告",
    "现有监护仪需要替换老型号",
    "请问呼吸机的售后维保怎么收费",
]
TAGS = [("紧急", "danger", "急需,招标,替换老型号"), ("影像设备", "info", "DR,CT,MRI,超声")]


# -- setup ------------------------------------------------------------------------------


def ensure_channel():
    """The bench tenant and its webhook channel (no preset: lead field names), with the
    demo's tagging rules so tagging is part of the work. Returns (tenant, channel)."""
    from crm.models import Tenant
    from crm.tenancy import tenant_context
    from leads.models import Channel, ChannelType, Tag, TaggingRule

    tenant, _ = Tenant.objects.get_or_create(
        slug=TENANT_SLUG, defaults={"name": "Bench 线索", "timezone": "Asia/Shanghai"}
    )
    with tenant_context(tenant):
        channel = Channel.objects.filter(name=CHANNEL_NAME).first()
        if channel is None:
            channel = Channel.objects.create(
                tenant=tenant, name=CHANNEL_NAME, type=ChannelType.WEB_FORM
            )
        for name, color, keywords in TAGS:
            tag, _ = Tag.objects.get_or_create(tenant=tenant, name=name, defaults={"color": color})
            if not TaggingRule.objects.filter(tag=tag).exists():
                TaggingRule.objects.create(tenant=tenant, tag=tag, keywords=keywords)
        ensure_reps(tenant)
    return tenant, channel


def ensure_reps(tenant, count: int = REPS) -> None:
    """Reps to assign to, with varied profiles. Their capacity is unlimited here: the bench
    sends thousands of leads nobody verifies, and a rep at capacity would make the lead
    wait instead of measuring the decision."""
    from django.contrib.auth import get_user_model

    from crm.models import Membership, Role
    from leads.models import Industry, RepProfile

    provinces = ["江苏省", "浙江省", "上海市", "安徽省", "山东省", "福建省"]
    industries = list(Industry.values)
    User = get_user_model()
    for i in range(count):
        user, _ = User.objects.get_or_create(username=f"bench-intake-rep{i}")
        member, _ = Membership.objects.get_or_create(
            tenant=tenant, user=user, defaults={"role": Role.REP}
        )
        RepProfile.objects.update_or_create(
            membership=member,
            defaults={
                "tenant": tenant,
                "provinces": [provinces[i % len(provinces)]],
                "industries": [industries[i % len(industries)]],
                "product_lines": ["CT"] if i % 3 == 0 else ["DR", "超声"],
                "capacity": 1_000_000,
            },
        )


def retire_leftovers(tenant) -> int:
    """Events an earlier, interrupted run left `received` would be worked on in (b)."""
    from crm.tenancy import tenant_context
    from leads.models import EventStatus, InboundEvent

    with tenant_context(tenant):
        return InboundEvent.objects.filter(status=EventStatus.RECEIVED).update(
            status=EventStatus.FAILED, error="bench: left over by an interrupted run"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], name: str) -> subprocess.Popen:
    log(f"starting {name}: {' '.join(cmd)}")
    # Their output goes to stderr: stdout carries only the JSON figures.
    return subprocess.Popen(  # noqa: S603 (our own fixed argv)
        cmd, cwd=REPO_ROOT, env=os.environ.copy(), start_new_session=True, stdout=sys.stderr
    )


def stop(proc: subprocess.Popen | None, name: str) -> None:
    if proc is None or proc.poll() is not None:
        return
    log(f"stopping {name} (pid {proc.pid})")
    os.killpg(proc.pid, signal.SIGTERM)  # its own session: gunicorn's or celery's children
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def web_command(port: int, workers: int, threads: int) -> list[str]:
    """gunicorn as production runs it (crm/gunicorn.conf.py: `workers` processes of
    `threads` threads each, the per-connection I/O timeout of crm/wsgi_worker.py), on a
    free port, without the access log (10,000 lines of it would bury the progress on
    stderr); `threads=0`: plain sync workers, one request per process at a time."""
    cmd = [str(VENV_BIN / "gunicorn"), "crm.wsgi:application"]
    if threads:
        cmd[1:1] = ["-c", "crm/gunicorn.conf.py"]
        cmd += ["--threads", str(threads), "--access-logfile", "/dev/null"]
    return [
        *cmd,
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
    ]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("gunicorn exited at start")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("POST", "/hooks/warm-up/", body=b"{}")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer on port {port}")


def cpu_seconds(*pids: int) -> float:
    """User + system CPU seconds of these processes (Linux /proc; 0 elsewhere)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    try:
        ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = ticks[3] + ticks[4]  # idle + iowait
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


# -- the client -------------------------------------------------------------------------


class Client:
    """Signed webhooks over one kept-alive http.client connection (re-opened by
    http.client itself whenever the server closes it)."""

    def __init__(self, port: int, key: str, secret: str):
        from leads.intake.hooks import sign

        self.sign = sign
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.path = f"/hooks/{key}/"
        self.secret = secret

    def post(self, payload: dict) -> tuple[int, dict, float, float]:
        """(status, JSON answer, wall send time, seconds until the answer)."""
        body = json.dumps(payload, ensure_ascii=False).encode()
        sent = time.time()
        started = time.perf_counter()
        timestamp = str(int(sent))
        headers = {
            "Content-Type": "application/json",
            "X-CRM-Timestamp": timestamp,
            "X-CRM-Signature": self.sign(self.secret, timestamp, body),
        }
        try:
            self.conn.request("POST", self.path, body=body, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        except (http.client.HTTPException, OSError):
            # The server closed a kept-alive connection under us: once more, fresh.
            self.conn.close()
            self.conn.request("POST", self.path, body=body, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        return response.status, json.loads(data or b"{}"), sent, time.perf_counter() - started


def make_payloads(run: str, count: int, start: int = 0) -> list[dict]:
    """Distinct lead payloads (a run id in utm_content: never a replay of an earlier run)."""
    rnd = random.Random(f"{run}-{start}")
    payloads = []
    for i in range(start, start + count):
        while True:
            tail = f"{rnd.randint(0, 99_999_999):08d}"
            if len(set(tail)) > 2:
                break
        name = rnd.choice(SURNAMES) + rnd.choice(GIVEN)
        payloads.append(
            {
                "company": rnd.choice(CITIES) + rnd.choice(KINDS),
                "contact_name": name,
                "phone": rnd.choice(PREFIXES) + tail,
                "industry": "医疗卫生",
                "message": rnd.choice(MESSAGES),
                "utm_source": "bench",
                "utm_content": f"{run}-{i}",
            }
        )
    return payloads


# -- the phases -------------------------------------------------------------------------


def phase_accept(port, channel, payloads, threads: int) -> dict:
    jobs = iter(enumerate(payloads))
    lock = threading.Lock()
    results: list[tuple[int, float, str]] = []
    errors: list[str] = []
    barrier = threading.Barrier(threads + 1)

    def worker():
        client = Client(port, channel.key, channel.secret)
        barrier.wait()
        local = []
        while True:
            with lock:
                job = next(jobs, None)
            if job is None:
                break
            try:
                status, answer, _sent, seconds = client.post(job[1])
            except Exception as exc:  # report, do not hang the bench
                errors.append(repr(exc))
                continue
            local.append((status, seconds, answer.get("event", "")))
        with lock:
            results.extend(local)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    barrier.wait()
    started = time.perf_counter()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    accepted = sum(1 for status, _, _ in results if status == 202)
    timings = [s * 1000 for _, s, _ in results]
    client_cpu = (usage_after.ru_utime - usage_before.ru_utime) + (
        usage_after.ru_stime - usage_before.ru_stime
    )
    statuses: dict[str, int] = {}
    for status, _, _ in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {
        "requests": len(payloads),
        "threads": threads,
        "statuses": statuses,
        "errors": errors[:5],
        "seconds": round(elapsed, 2),
        "accepted_per_s": round(accepted / elapsed, 1),
        "response_ms_p50": round(statistics.median(timings), 1) if timings else None,
        "response_ms_p95": round(_percentile(timings, 95), 1) if timings else None,
        "client_cpu_seconds": round(client_cpu, 2),
        "event_ids": [e for status, _, e in results if status == 202],
    }


def count_done(tenant, event_ids: list[str]) -> dict[str, int]:
    from django.db.models import Count

    from crm.tenancy import tenant_context
    from leads.models import InboundEvent

    with tenant_context(tenant):
        rows = (
            InboundEvent.objects.filter(public_id__in=event_ids)
            .values("status")
            .annotate(n=Count("id"))
        )
        return {r["status"]: r["n"] for r in rows}


def wait_processed(tenant, event_ids: list[str], timeout: float, poll: float = 0.25) -> dict:
    deadline = time.monotonic() + timeout
    last_report = 0.0
    while True:
        counts = count_done(tenant, event_ids)
        if counts.get("received", 0) == 0 and sum(counts.values()) >= len(event_ids):
            return counts
        if time.monotonic() > deadline:
            raise RuntimeError(f"not all events processed after {timeout:.0f} s: {counts}")
        if time.monotonic() - last_report > 5:
            log(f"  {counts}")
            last_report = time.monotonic()
        time.sleep(poll)


def phase_worker(tenant, event_ids: list[str], pool: str) -> tuple[dict, subprocess.Popen]:
    from django.db.models import Max, Min

    from crm.tenancy import tenant_context
    from leads.models import InboundEvent

    cmd = [
        str(VENV_BIN / "celery"),
        "-A",
        "crm",
        "worker",
        "-c",
        "1",
        "--pool",
        pool,
        "-l",
        "WARNING",
        "-n",
        f"bench-intake-{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
    ]
    started = time.perf_counter()
    busy, total = machine_busy()
    proc = start(cmd, "celery worker")
    try:
        counts = wait_processed(tenant, event_ids, timeout=60 + len(event_ids) / 10)
    except BaseException:
        stop(proc, "celery worker")
        raise
    wall = time.perf_counter() - started
    worker_cpu = cpu_seconds(proc.pid, *children(proc.pid))
    busy_after, total_after = machine_busy()
    with tenant_context(tenant):
        span = InboundEvent.objects.filter(public_id__in=event_ids).aggregate(
            first=Min("processed_at"), last=Max("processed_at")
        )
    seconds = (span["last"] - span["first"]).total_seconds()
    return (
        {
            "events": len(event_ids),
            "pool": pool,
            "statuses": counts,
            "processing_seconds": round(seconds, 2),
            "leads_per_s": round((len(event_ids) - 1) / seconds, 1) if seconds else None,
            "wall_seconds_with_boot": round(wall, 2),
            "leads_per_s_with_boot": round(len(event_ids) / wall, 1),
            "worker_cpu_seconds_with_boot": round(worker_cpu, 2),
            "machine_cpu_busy_share": (
                round((busy_after - busy) / (total_after - total), 2)
                if total_after > total
                else None
            ),
        },
        proc,
    )


def phase_latency(port, tenant, channel, payloads, rate: float) -> dict:
    from crm.tenancy import tenant_context
    from leads.models import InboundEvent

    client = Client(port, channel.key, channel.secret)
    sent_at: dict[str, float] = {}
    responses = []
    begin = time.perf_counter() + 0.5
    late = 0
    for i, payload in enumerate(payloads):
        target = begin + i / rate
        pause = target - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        else:
            late += 1
        status, answer, sent, seconds = client.post(payload)
        if status != 202:
            raise RuntimeError(f"webhook answered {status}: {answer}")
        sent_at[answer["event"]] = sent
        responses.append(seconds * 1000)
    elapsed = time.perf_counter() - begin
    ids = list(sent_at)
    wait_processed(tenant, ids, timeout=120)
    with tenant_context(tenant):
        rows = InboundEvent.objects.filter(public_id__in=ids).values_list(
            "public_id", "lead__created_at", "processed_at", "lead__assigned_at"
        )
        created = [(str(p), c, done, a) for p, c, done, a in rows]
    to_lead = [(c.timestamp() - sent_at[p]) * 1000 for p, c, _, _ in created if c]
    to_processed = [(done.timestamp() - sent_at[p]) * 1000 for p, _, done, _ in created]
    # Assignment runs in the task that creates the lead: assigned_at is set there.
    to_assigned = [(a.timestamp() - sent_at[p]) * 1000 for p, _, _, a in created if a]
    return {
        "rate_per_s": rate,
        "requests": len(payloads),
        "seconds": round(elapsed, 1),
        "sends_behind_schedule": late,
        "leads": len(to_lead),
        "post_to_lead_ms_p50": round(statistics.median(to_lead), 1),
        "post_to_lead_ms_p95": round(_percentile(to_lead, 95), 1),
        "post_to_lead_ms_max": round(max(to_lead), 1),
        "post_to_processed_ms_p95": round(_percentile(to_processed, 95), 1),
        "assigned": len(to_assigned),
        "post_to_assigned_ms_p50": round(statistics.median(to_assigned), 1)
        if to_assigned
        else None,
        "post_to_assigned_ms_p95": round(_percentile(to_assigned, 95), 1) if to_assigned else None,
        "response_ms_p50": round(statistics.median(responses), 1),
        "response_ms_p95": round(_percentile(responses, 95), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="(a) webhooks to send")
    parser.add_argument("--threads", type=int, default=8, help="(a) concurrent clients")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn processes")
    parser.add_argument(
        "--web-threads",
        type=int,
        default=8,
        help="threads per gunicorn process (crm/gunicorn.conf.py's default); 0: sync workers",
    )
    parser.add_argument("--pool", default="solo", help="(b, c) the worker's pool: solo, prefork")
    parser.add_argument("--rate", type=float, default=20, help="(c) webhooks per second")
    parser.add_argument("--duration", type=float, default=30, help="(c) seconds")
    parser.add_argument("--broker", default=DEFAULT_BROKER, help="a Redis database of its own")
    parser.add_argument("--port", type=int, default=0, help="gunicorn's port (default: free)")
    args = parser.parse_args()

    os.environ.setdefault("CELERY_BROKER_URL", args.broker)
    setup_django()
    prepare_database()

    from django.conf import settings

    from crm.celery import app
    from leads.intake.services import forget_announcements

    broker = settings.CELERY_BROKER_URL
    tenant, channel = ensure_channel()
    retired = retire_leftovers(tenant)
    purged = app.control.purge()
    forget_announcements()  # the purged inbox tasks' marks
    log(f"broker {broker}: purged {purged} message(s); {retired} leftover event(s) retired")

    run = uuid.uuid4().hex[:8]
    # Other work on the machine skews every figure here: look at this before comparing runs.
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    port = args.port or free_port()
    web = worker = None
    try:
        web = start(web_command(port, args.web_workers, args.web_threads), "gunicorn")
        wait_for_port(port, web)

        log(f"(a) {args.requests} webhooks from {args.threads} threads")
        warm = Client(port, channel.key, channel.secret)
        for payload in make_payloads(run + "w", 20):  # warm both workers' imports
            warm.post(payload)
        web_pids = children(web.pid)
        web_cpu, (busy, total) = cpu_seconds(*web_pids), machine_busy()
        accept = phase_accept(port, channel, make_payloads(run, args.requests), args.threads)
        busy_after, total_after = machine_busy()
        event_ids = accept.pop("event_ids")
        # What the web workers used against what the whole machine was busy with: when
        # another process takes a CPU meanwhile, the figures drop (2 vCPUs here).
        accept["web_workers_cpu_seconds"] = round(cpu_seconds(*web_pids) - web_cpu, 2)
        accept["machine_cpu_busy_share"] = (
            round((busy_after - busy) / (total_after - total), 2) if total_after > total else None
        )
        log(f"    {accept['accepted_per_s']} accepted/s")

        log(f"(b) one worker ({args.pool}) on {len(event_ids)} queued events")
        warm_ids = warm_events(tenant, run)
        processing, worker = phase_worker(tenant, event_ids + warm_ids, args.pool)
        log(f"    {processing['leads_per_s']} leads/s")

        count = int(args.rate * args.duration)
        log(f"(c) {count} webhooks at {args.rate}/s")
        latency = phase_latency(
            port, tenant, channel, make_payloads(run + "c", count, start=0), args.rate
        )
        log(
            f"    p95 {latency['post_to_lead_ms_p95']} ms to the lead,"
            f" {latency['post_to_assigned_ms_p95']} ms to its assignment"
        )
    finally:
        stop(worker, "celery worker")
        stop(web, "gunicorn")

    emit(
        {
            "bench": "intake",
            "load_average_at_start": load_at_start,
            "broker": broker.rsplit("@", 1)[-1],
            "web_workers": args.web_workers,
            "web_threads": args.web_threads,
            "accept": accept,
            "worker": processing,
            "latency": latency,
            "targets": {
                "accepted_per_s_min": 300,
                "worker_leads_per_s_min": 100,
                "post_to_lead_ms_p95_max": 1000,
            },
            "met": {
                "accept": accept["accepted_per_s"] >= 300,
                "worker": (processing["leads_per_s"] or 0) >= 100,
                "latency": latency["post_to_lead_ms_p95"] < 1000,
            },
        }
    )


def warm_events(tenant, run: str) -> list[str]:
    """The warm-up requests' events: queued too, so (b) waits for them as well."""
    from crm.tenancy import tenant_context
    from leads.models import InboundEvent

    with tenant_context(tenant):
        return [
            str(p)
            for p in InboundEvent.objects.filter(
                payload__utm_content__startswith=run + "w-"
            ).values_list("public_id", flat=True)
        ]


if __name__ == "__main__":
    main()
