"""Queues by job class (issue 19, item 3): one tenant's webhook → assigned lead while
another tenant's nightly health recompute of 1,000,000 customers runs.

    DATABASE_URL=postgres://crm_app:crm_app@127.0.0.1:5432/crm_bench_queues \\
    DATABASE_OWNER_URL=postgres://postgres@127.0.0.1:5432/crm_bench_queues \\
    .venv/bin/python bench/queues.py [--customers 1000000] [--rows 2000000] \\
        [--rate 10] [--duration 30] [--contrast]

Two tenants on the bench database: `bench-queues-health` with --customers customers and
--rows follow-up, signal, link and ticket rows (bench/health.py's generator, by COPY),
and `bench-intake` with its webhook channel and 20 reps (bench/intake.py's). The script
starts gunicorn (production's crm/gunicorn.conf.py) and, as docker-compose.yml runs
them, one Celery worker per queue class: `-Q intake,celery`, `-Q notifications`,
`-Q reports`, `-Q automation` (each `--pool solo`, one task at a time: the smallest
pool of each class). Then:

(a) baseline: --rate signed webhooks a second for --duration seconds to bench-intake;
    for each, the time from the client's send to the lead's `assigned_at` (same clock);
(b) during the recompute: `health.recompute` of bench-queues-health is queued (routed to
    `reports`, as beat's hourly fan-out queues it) and, once its worker has started it,
    the same webhooks again; the recompute must still be running when the last lead is
    assigned (`overlap`), and its own duration is reported;
(c) with --contrast: the same as (b) with ONE worker consuming every queue (`celery
    worker` without -Q, solo pool), what a one-box install runs: the webhooks wait
    behind the recompute.

The broker is a Redis database of its own (--broker), purged first. JSON to stdout,
progress to stderr.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

_HERE = Path(__file__).resolve().parent


def _bench_module(name: str):
    """A sibling bench script as a module of its own name (bench/health.py would lose the
    import of `health` to the app of that name)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", _HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


from common import _percentile, emit, load_average, log, prepare_database, setup_django  # noqa: E402

DEFAULT_BROKER = "redis://127.0.0.1:6379/12"
HEALTH_SLUG = "bench-queues-health"
# One worker per class, as docker-compose.yml runs them (`worker` takes the default queue).
SPLIT = {"intake": "intake,celery", "notifications": "notifications", "reports": "reports",
         "automation": "automation"}  # fmt: skip


def worker_command(name: str, queues: str | None) -> list[str]:
    from intake import VENV_BIN

    cmd = [
        str(VENV_BIN / "celery"),
        "-A",
        "crm",
        "worker",
        "--pool",
        "solo",
        "-l",
        "INFO",
        "-n",
        f"bench-queues-{name}-{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
    ]
    if queues:
        cmd += ["-Q", queues]
    return cmd


def zone_past_two() -> str:
    """A time zone where it is 02:00 or later now: the nightly run scores only from 02:00
    local time (health.tasks.NIGHTLY_HOUR)."""
    for zone in ("Asia/Shanghai", "UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"):
        if 2 <= datetime.now(ZoneInfo(zone)).hour <= 22:
            return zone
    return "Pacific/Kiritimati"


def reset_night(tenant) -> None:
    """Today not scored yet: the queued run does the whole recompute (snapshots and risk
    entries of earlier runs removed, so each run is a first run of the day)."""
    from django.db import connections

    with connections["owner"].cursor() as cur:
        # This bench database's only scores are this tenant's (as bench/health.py does).
        cur.execute("TRUNCATE health_healthsnapshot, health_riskentry CASCADE")
        cur.execute(
            "UPDATE health_healthsettings SET computed_on = NULL WHERE tenant_id = %s",
            [tenant.pk],
        )


def scored(tenant) -> bool:
    """Today's run is done (the settings' `computed_on` set)."""
    from django.db import connections

    with connections["owner"].cursor() as cur:
        cur.execute(
            "SELECT computed_on IS NOT NULL FROM health_healthsettings WHERE tenant_id = %s",
            [tenant.pk],
        )
        row = cur.fetchone()
    return bool(row and row[0])


def recompute_running() -> bool:
    """The recompute's statement is running on the server as the app role: the scoring
    statement reads the customers' table (its text past the first kilobyte, where
    pg_stat_activity cuts it, names the health tables)."""
    from django.db import connections

    with connections["owner"].cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = 'crm_app'"
            " AND datname = current_database() AND state = 'active'"
            " AND (query ILIKE '%%customers_customer%%' OR query ILIKE '%%health%%')"
            " AND pid <> pg_backend_pid()"
        )
        return cur.fetchone()[0] > 0


def latency(port, tenant, channel, payloads, rate: float, timeout: float) -> dict:
    """The webhooks at `rate`; send → lead assigned for each (intake.phase_latency's
    measure, with a wait long enough for a worker held up by the recompute)."""
    from intake import Client, wait_processed

    from crm.tenancy import tenant_context
    from leads.models import InboundEvent

    client = Client(port, channel.key, channel.secret)
    sent_at: dict[str, float] = {}
    begin = time.perf_counter() + 0.2
    for i, payload in enumerate(payloads):
        pause = begin + i / rate - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        status, answer, sent, _seconds = client.post(payload)
        if status != 202:
            raise RuntimeError(f"webhook answered {status}: {answer}")
        sent_at[answer["event"]] = sent
    sent_seconds = time.perf_counter() - begin
    ids = list(sent_at)
    counts = wait_processed(tenant, ids, timeout=timeout)
    with tenant_context(tenant):
        rows = list(
            InboundEvent.objects.filter(public_id__in=ids).values_list(
                "public_id", "lead__assigned_at"
            )
        )
    assigned = [(a.timestamp() - sent_at[str(p)]) * 1000 for p, a in rows if a]
    last = max((a for _p, a in rows if a), default=None)
    return {
        "webhooks": len(payloads),
        "rate_per_s": rate,
        "sent_seconds": round(sent_seconds, 1),
        "statuses": counts,
        "assigned": len(assigned),
        "to_assigned_ms_p50": round(statistics.median(assigned), 1) if assigned else None,
        "to_assigned_ms_p95": round(_percentile(assigned, 95), 1) if assigned else None,
        "to_assigned_ms_max": round(max(assigned), 1) if assigned else None,
        "last_assigned_at": last,
    }


def during_recompute(label, port, intake_tenant, channel, health_tenant, args, run) -> dict:
    """Queue the health recompute (reports queue), wait until it runs, send the webhooks."""
    from django.utils import timezone
    from intake import make_payloads

    from crm.celery import app

    reset_night(health_tenant)
    queued = time.perf_counter()
    app.send_task("health.recompute", args=[health_tenant.pk])
    deadline = time.monotonic() + 300
    while not recompute_running():
        if scored(health_tenant):
            raise RuntimeError("the recompute ended before it was seen running")
        if time.monotonic() > deadline:
            raise RuntimeError("the recompute did not start within 300 s")
        time.sleep(0.2)
    started = time.perf_counter()
    log(f"({label}) recompute running after {started - queued:.1f} s; webhooks")
    count = int(args.rate * args.duration)
    figures = latency(
        port,
        intake_tenant,
        channel,
        make_payloads(run + label, count),
        args.rate,
        timeout=1800,
    )
    still_running = not scored(health_tenant)
    while not scored(health_tenant):
        time.sleep(1)
    done = timezone.now()
    figures["recompute"] = {
        "seconds_from_start": round(time.perf_counter() - started, 1),
        "finished_at": done,
    }
    # Every lead was assigned before the recompute ended: the figures are "during" it.
    figures["overlap"] = bool(
        still_running and figures["last_assigned_at"] and figures["last_assigned_at"] < done
    )
    log(
        f"({label}) p95 {figures['to_assigned_ms_p95']} ms to assigned; recompute"
        f" {figures['recompute']['seconds_from_start']} s; overlap {figures['overlap']}"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=2_000_000, help="health rows (all tables)")
    parser.add_argument("--rate", type=float, default=10, help="webhooks per second")
    parser.add_argument("--duration", type=float, default=30, help="seconds of webhooks")
    parser.add_argument("--contrast", action="store_true", help="(c): one worker, all queues")
    parser.add_argument("--broker", default=DEFAULT_BROKER, help="a Redis database of its own")
    parser.add_argument("--load-only", action="store_true", help="load the data, measure nothing")
    args = parser.parse_args()

    os.environ.setdefault(
        "DATABASE_URL", "postgres://crm_app:crm_app@127.0.0.1:5432/crm_bench_queues"
    )
    os.environ.setdefault(
        "DATABASE_OWNER_URL", "postgres://postgres@127.0.0.1:5432/crm_bench_queues"
    )
    os.environ.setdefault("CELERY_BROKER_URL", args.broker)
    os.environ.setdefault("EMAIL_URL", "dummymail://")
    setup_django()
    prepare_database()
    health = _bench_module("health")
    import intake
    from django.conf import settings

    from crm.celery import app
    from leads.intake.services import forget_announcements

    load_at_start = load_average()
    started = time.perf_counter()
    health_tenant, reps, hd_channel, action = health.ensure_tenant(HEALTH_SLUG)
    health_tenant.timezone = zone_past_two()
    health_tenant.save(update_fields=["timezone"])
    ids = health.load_customers(health_tenant, reps, args.customers)
    loaded = health.load_rows(health_tenant, ids, args.rows, reps, hd_channel, action)
    load_seconds = time.perf_counter() - started
    if any(v["seconds"] for v in loaded.values()):
        health.vacuum_analyze(*health.TABLES)
    if args.load_only:
        log(f"loaded in {load_seconds:.0f} s")
        return
    intake_tenant, channel = intake.ensure_channel()
    intake.retire_leftovers(intake_tenant)
    purged = app.control.purge()
    forget_announcements()
    log(f"broker {settings.CELERY_BROKER_URL}: purged {purged}; loaded in {load_seconds:.0f} s")

    run = uuid.uuid4().hex[:8]
    port = intake.free_port()
    web = None
    workers: dict[str, object] = {}
    out: dict = {}
    try:
        web = intake.start(intake.web_command(port, 2, 8), "gunicorn")
        intake.wait_for_port(port, web)
        for name, queues in SPLIT.items():
            workers[name] = intake.start(worker_command(name, queues), f"worker {name}")
        log("warm-up: 20 webhooks")
        out["warm_up"] = latency(
            port, intake_tenant, channel, intake.make_payloads(run + "w", 20), 10, timeout=180
        )
        log(f"(a) baseline: {args.rate}/s for {args.duration} s")
        out["baseline"] = latency(
            port,
            intake_tenant,
            channel,
            intake.make_payloads(run + "a", int(args.rate * args.duration)),
            args.rate,
            timeout=300,
        )
        log(f"    p95 {out['baseline']['to_assigned_ms_p95']} ms to assigned")
        out["during_recompute"] = during_recompute(
            "b", port, intake_tenant, channel, health_tenant, args, run
        )
        if args.contrast:
            for name in list(workers):
                intake.stop(workers.pop(name), f"worker {name}")
            workers["all"] = intake.start(worker_command("all", None), "worker (every queue)")
            time.sleep(5)
            out["one_worker_every_queue"] = during_recompute(
                "c", port, intake_tenant, channel, health_tenant, args, run
            )
    finally:
        for name in list(workers):
            intake.stop(workers.pop(name), f"worker {name}")
        intake.stop(web, "gunicorn")

    emit(
        {
            "bench": "queues",
            "load_average_at_start": load_at_start,
            "broker": settings.CELERY_BROKER_URL.rsplit("@", 1)[-1],
            "workers": SPLIT,
            "pool": "solo (one task at a time per worker)",
            "health_tenant": {
                "customers": len(ids),
                "rows": loaded,
                "time_zone": health_tenant.timezone,
            },
            **out,
        }
    )


if __name__ == "__main__":
    main()
