"""Tickets bench: the service report (F30) and the quality-cluster statement (F29) in a
tenant of 500,000 helpdesk tickets, and the helpdesk webhook burst when this checkout has
the helpdesk intake.

    DATABASE_URL=postgres://crm_app:crm_app@127.0.0.1:5432/crm_bench_tickets \\
    DATABASE_OWNER_URL=postgres://postgres@127.0.0.1:5432/crm_bench_tickets \\
    .venv/bin/python bench/tickets.py --tickets 500000 [--requests 30] [--burst 10000] [--explain]
        [--burst-only]

Fills tenant `bench-tickets` (or --tenant; idempotent for one --tickets: ticket i is
generated from i alone, and only the missing ones are added, in chunks of COPY that are
there entirely or not at all) with a manager, a service agent, 5,000 customers (a contact
each) and --tickets tickets over the last 540 days, in arrival order, on one helpdesk
channel: 4 product lines, 8 models, 10 fault codes, 8 provinces; 85 % matched to a
customer (so the same customer's fault comes back: repeat complaints), first responses
from 1 minute to hours, 70 % resolved, 0.5 % with a refused duration; and in the last
72 hours three clusters of one model × fault code × province above the alert threshold.

Then it times:
- the service report (`service_report:service`) as the manager: the default period (the
  last 30 days, by week), a quarter (90 days, by week) and a year (365 days, by month), and
  the CSV of the regions table over the quarter (p95 target < 300 ms for the page);
- the quality-cluster statement over the 72-hour window (target < 5 s): the sweep's own
  `service_feedback.alerts.clusters_due` when this checkout has it, else the same
  grouped statement written here (the output says which);
- (c) the webhook burst, only when `crm.inbox` has a `helpdesk` handler registered (the
  helpdesk intake): --burst signed ticket webhooks (generic preset) to /hooks/<key>/
  against gunicorn, accepted per second (target ≥ 300/s), then ONE Celery worker on them,
  tickets per second (target ≥ 100/s), with bench/intake.py's client and phases. Without
  the handler the burst is skipped with a note.

JSON on stdout, progress on stderr; see bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

from common import emit, explain, log, measure, prepare_database, setup_django, vacuum_analyze

SEED = 2026
CUSTOMERS = 5_000
CHUNK = 50_000
DAYS = 540
PREFIX = "BT-"
DEFAULT_BROKER = "redis://127.0.0.1:6379/10"
# The generated tickets end at this instant (fixed per day, so a second run on the same
# day adds the same rows); the last 72 hours hold the clusters.
END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)

LINES = {
    "彩超": (("Resona 7", "DC-80"), ("E-201", "E-202", "E-215")),
    "CT": (("uCT 530", "Aquilion 64"), ("E-305", "E-318")),
    "内镜": (("EG-760R", "CV-290"), ("E-410", "E-422")),
    "监护仪": (("BeneVision N17", "iPM 12"), ("E-512", "E-520")),
}
PROVINCES = ("江苏省", "浙江省", "上海市", "安徽省", "山东省", "广东省", "福建省", "湖北省")
# (model, fault code, province): 6 tickets each in the last 72 hours (threshold 5).
CLUSTERS = (
    ("Resona 7", "E-201", "江苏省"),
    ("uCT 530", "E-305", "浙江省"),
    ("BeneVision N17", "E-512", "广东省"),
)
CLUSTER_SIZE = 6
TABLES = (
    "service_feedback_ticket",
    "service_feedback_servicesettings",
    "customers_customer",
    "customers_contact",
)
PAGES = [
    ("report_30_days", 30, {}),
    ("report_90_days", 90, {}),
    ("report_365_days", 365, {"grain": "month"}),
    ("csv_regions_90_days", 90, {"_export": "csv", "table": "province"}),
]


# -- people, customers, the channel ----------------------------------------------------------


def ensure_tenant(slug: str):
    from django.apps import apps
    from django.contrib.auth import get_user_model

    from crm.models import Membership, Role, Tenant
    from crm.tenancy import tenant_context
    from customers.models import Contact, Customer
    from service_feedback.services import settings_for

    tenant, _ = Tenant.objects.get_or_create(
        slug=slug, defaults={"name": "Bench 工单", "timezone": "Asia/Shanghai"}
    )
    User = get_user_model()
    members = {}
    for username, role in ((f"{slug}-manager", Role.MANAGER), (f"{slug}-service", Role.SERVICE)):
        user, _ = User.objects.get_or_create(username=username)
        with tenant_context(tenant):
            members[role], _ = Membership.objects.get_or_create(
                tenant=tenant, user=user, defaults={"role": role}
            )
    with tenant_context(tenant):
        settings_for(tenant)
        channel_model = apps.get_model("leads", "Channel")
        channel, _ = channel_model.objects.get_or_create(
            tenant=tenant, type="helpdesk", name="bench helpdesk"
        )
        have = Customer.objects.count()
        if have < CUSTOMERS:
            made = Customer.objects.bulk_create(
                [
                    Customer(
                        tenant=tenant,
                        name=f"工单客户{i:05d}医院",
                        province=PROVINCES[i % len(PROVINCES)],
                        created_at=END - timedelta(days=DAYS + 30),
                    )
                    for i in range(have, CUSTOMERS)
                ],
                batch_size=5_000,
            )
            Contact.objects.bulk_create(
                [
                    Contact(
                        tenant=tenant,
                        customer=c,
                        name="王工",
                        phone=f"1380{c.pk:07d}"[-11:],
                        phone_key=f"+861380{c.pk:07d}"[-14:],
                    )
                    for c in made
                ],
                batch_size=5_000,
            )
    return tenant, members[Role.MANAGER], channel


# -- one ticket --------------------------------------------------------------------------------


def plan(i: int, total: int, customers: list[int]) -> dict:
    """Ticket i of `total`, from i alone: its opening (in arrival order over the 540 days,
    as a helpdesk delivers them, so a period's rows lie together on disk), what it is
    about, its minutes."""
    rnd = random.Random(SEED * 1_000_003 + i)
    line = rnd.choice(tuple(LINES))
    models, faults = LINES[line]
    span = DAYS * 24 * 60
    opened = END - timedelta(minutes=span * (total - i) / total + rnd.uniform(0, 30))
    matched = rnd.random() < 0.85
    # A customer's tickets cluster on a few faults: repeats within 30 days happen.
    customer = customers[rnd.randrange(len(customers))] if matched else None
    first = rnd.choice((1, 3, 5, 8, 10, 12, 14, 15, 18, 25, 40, 90, 300, None))
    resolution = rnd.choice((45, 120, 300, 600, 1440, 2880, 5000)) if rnd.random() < 0.7 else None
    issue = ""
    if rnd.random() < 0.005:
        first, resolution, issue = None, None, "resolution: negative"
    return {
        "line": line,
        "model": rnd.choice(models),
        "fault": rnd.choice(faults),
        "province": rnd.choice(PROVINCES),
        "opened": opened,
        "customer": customer,
        "first": first,
        "resolution": resolution,
        "issue": issue,
    }


def ticket_columns():
    from service_feedback.models import Ticket

    return [f.column for f in Ticket._meta.concrete_fields if f.column != "id"]


def row(values: dict, columns: list[str]) -> tuple:
    return tuple(values.get(c) for c in columns)


def base_values(tenant_id: int, channel_id: int, external_id: str, p: dict) -> dict:
    opened = p["opened"]
    first_at = opened + timedelta(minutes=p["first"]) if p["first"] is not None else None
    resolved_at = (
        opened + timedelta(minutes=p["resolution"]) if p["resolution"] is not None else None
    )
    if p["issue"]:
        resolved_at = opened - timedelta(hours=2)
    status = "open" if resolved_at is None or p["issue"] else "resolved"
    return {
        "tenant_id": tenant_id,
        "public_id": uuid.uuid4(),
        "channel_id": channel_id,
        "external_id": external_id,
        "event_id": None,
        "customer_id": p["customer"],
        "contact_id": None,
        "match_key": "phone" if p["customer"] else "",
        "match_value": "",
        "customer_code": "",
        "requester_name": "王工",
        "phone_key": "",
        "email": "",
        "product_line": p["line"],
        "product_model": p["model"],
        "fault_code": p["fault"],
        "province": p["province"],
        "city": "",
        "status": status,
        "subject": f"{p['model']} {p['fault']}",
        "text": f"{p['line']}（{p['model']}）报错代码 {p['fault']}，请安排工程师处理。",
        "opened_at": opened,
        "first_response_at": first_at,
        "resolved_at": resolved_at,
        "first_response_minutes": p["first"],
        "resolution_minutes": p["resolution"],
        "duration_issue": p["issue"],
        "sentiment": None,
        "nps": None,
        "satisfaction": None,
        "flags": "[]",
        "flag_words": "[]",
        "alert_id": None,
        "received_at": opened,
        "updated_at": opened,
    }


def load_tickets(tenant, channel, target: int) -> dict:
    """Add tickets up to `target` (chunks of CHUNK, each in one owner transaction), then
    the clusters of the last 72 hours (once)."""
    from board_db import owner_transaction
    from django.db import connections

    from crm.tenancy import tenant_context
    from customers.models import Customer
    from service_feedback.models import Ticket

    columns = ticket_columns()
    with tenant_context(tenant):
        have = Ticket.objects.filter(external_id__startswith=PREFIX).count()
        customers = list(Customer.objects.order_by("id").values_list("id", flat=True))
        clustered = Ticket.objects.filter(external_id__startswith="BTC-").count()
    made = {"tickets": 0, "clusters": 0, "seconds": []}
    log(f"tickets: {have} present, {max(0, target - have)} to create")
    for start in range(have + 1, target + 1, CHUNK):
        stop = min(target, start + CHUNK - 1)
        started = time.perf_counter()
        with (
            owner_transaction(tenant) as cursor,
            cursor.copy(f"COPY service_feedback_ticket ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for i in range(start, stop + 1):
                p = plan(i, target, customers)
                copy.write_row(
                    row(base_values(tenant.pk, channel.pk, f"{PREFIX}{i:07d}", p), columns)
                )
        seconds = time.perf_counter() - started
        made["tickets"] += stop - start + 1
        made["seconds"].append(round(seconds, 1))
        log(f"  tickets {stop}/{target}: {seconds:.1f} s")
    if not clustered:
        rnd = random.Random(SEED)
        with (
            owner_transaction(tenant) as cursor,
            cursor.copy(f"COPY service_feedback_ticket ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for c, (model, fault, province) in enumerate(CLUSTERS):
                line = next(k for k, (models, _f) in LINES.items() if model in models)
                for n in range(CLUSTER_SIZE):
                    p = {
                        "line": line, "model": model, "fault": fault, "province": province,
                        "opened": END - timedelta(hours=rnd.uniform(1, 70)),
                        "customer": customers[rnd.randrange(len(customers))],
                        "first": 5, "resolution": None, "issue": "",
                    }  # fmt: skip
                    copy.write_row(
                        row(base_values(tenant.pk, channel.pk, f"BTC-{c}-{n}", p), columns)
                    )
                    made["clusters"] += 1
    connections["owner"].close()
    return made


# -- the quality-cluster statement -----------------------------------------------------------


def time_clusters(tenant, runs: int = 7) -> dict:
    """The sweep's grouped statement over the 72-hour window: the app's own
    (`service_feedback.alerts.clusters_due`) when there is one, else the same statement
    written here."""
    from django.db.models import Count
    from django.utils import timezone

    from crm.tenancy import tenant_context
    from service_feedback.models import Ticket
    from service_feedback.services import settings_for

    try:
        from service_feedback.alerts import clusters_due
    except ImportError:
        clusters_due = None

    def equivalent(tenant, settings, now):
        since = now - timedelta(hours=settings.alert_window_hours)
        return list(
            Ticket.objects.filter(opened_at__gte=since, alert__isnull=True)
            .exclude(product_model="")
            .exclude(fault_code="")
            .values("product_model", "fault_code", "province")
            .annotate(count=Count("id"))
            .filter(count__gte=settings.alert_threshold)
            .order_by()
        )

    statement = clusters_due or equivalent
    timings, found = [], 0
    for _ in range(runs):
        with tenant_context(tenant):
            settings = settings_for(tenant)
            now = timezone.now()
            started = time.perf_counter()
            found = len(statement(tenant, settings, now))
            timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {
        "statement": (
            "service_feedback.alerts.clusters_due"
            if clusters_due
            else "equivalent grouped statement in bench/tickets.py (no service_feedback.alerts)"
        ),
        "window_hours": 72,
        "clusters_found": found,
        "median_ms": round(timings[len(timings) // 2], 1),
        "max_ms": round(timings[-1], 1),
    }


# -- the webhook burst ------------------------------------------------------------------------


def helpdesk_handler():
    try:
        from crm import inbox
    except ImportError:
        return None
    return inbox.handler_for("helpdesk")


def burst_payloads(run: str, count: int) -> list[dict]:
    rnd = random.Random(run)
    now = datetime.now(UTC)
    out = []
    for i in range(count):
        line = rnd.choice(tuple(LINES))
        models, faults = LINES[line]
        out.append(
            {
                "external_id": f"burst-{run}-{i}",
                "status": "open",
                "subject": "设备报警",
                "text": f"{line} 报错，请尽快处理。",
                "opened_at": (now - timedelta(minutes=rnd.randrange(600))).isoformat(),
                "phone": f"1390{rnd.randrange(10_000_000):07d}",
                "product_line": line,
                "product_model": rnd.choice(models),
                "fault_code": rnd.choice(faults),
                "province": rnd.choice(PROVINCES),
            }
        )
    return out


def webhook_burst(
    tenant, channel, count: int, threads: int, web_workers: int, web_threads: int, pool: str
) -> dict:
    """(c): count webhooks against gunicorn, then one worker on them (bench/intake.py's
    phases, the events being ticket events of a helpdesk channel)."""
    from intake import (
        children,
        cpu_seconds,
        free_port,
        phase_accept,
        phase_worker,
        start,
        stop,
        wait_for_port,
        web_command,
    )

    from crm.celery import app
    from leads.intake.services import forget_announcements

    purged = app.control.purge()
    log(f"burst: purged {purged} message(s)")
    forget_announcements()  # the purged inbox tasks' marks
    run = uuid.uuid4().hex[:8]
    port = free_port()
    web = worker = None
    try:
        web = start(web_command(port, web_workers, web_threads), "gunicorn")
        wait_for_port(port, web)
        web_pids = children(web.pid)
        web_cpu = cpu_seconds(*web_pids)
        accept = phase_accept(port, channel, burst_payloads(run, count), threads)
        event_ids = accept.pop("event_ids")
        accept["web_workers_cpu_seconds"] = round(cpu_seconds(*web_pids) - web_cpu, 2)
        log(f"    {accept['accepted_per_s']} accepted/s")
        processing, worker = phase_worker(tenant, event_ids, pool)
        processing["tickets_per_s"] = processing.pop("leads_per_s")
        processing["tickets_per_s_with_boot"] = processing.pop("leads_per_s_with_boot")
        log(f"    {processing['tickets_per_s']} tickets/s")
    finally:
        stop(worker, "celery worker")
        stop(web, "gunicorn")
    return {"accept": accept, "worker": processing}


# -- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=500_000)
    parser.add_argument("--tenant", default="bench-tickets", help="tenant slug")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests per page")
    parser.add_argument("--burst", type=int, default=10_000, help="(c) webhooks; 0: none")
    parser.add_argument("--threads", type=int, default=8, help="(c) concurrent clients")
    parser.add_argument("--web-workers", type=int, default=2, help="(c) gunicorn processes")
    parser.add_argument(
        "--web-threads",
        type=int,
        default=8,
        help="(c) threads per process (crm/gunicorn.conf.py's default); 0: sync workers",
    )
    parser.add_argument("--pool", default="solo", help="(c) the worker's pool")
    parser.add_argument("--broker", default=DEFAULT_BROKER, help="a Redis database of its own")
    parser.add_argument(
        "--explain", action="store_true", help="add EXPLAIN ANALYZE of each page's SELECTs"
    )
    parser.add_argument(
        "--burst-only",
        action="store_true",
        help="(c) alone: load the tickets, skip the report pages and the cluster statement",
    )
    args = parser.parse_args()

    os.environ.setdefault("CELERY_BROKER_URL", args.broker)
    setup_django()
    prepare_database()

    from django.urls import reverse
    from django.utils import timezone

    started = time.perf_counter()
    tenant, manager, channel = ensure_tenant(args.tenant)
    made = load_tickets(tenant, channel, args.tickets)
    loaded = time.perf_counter()
    vacuum_analyze(*TABLES)

    url = reverse("service_report:service")
    today = timezone.localdate(timezone=tenant.tzinfo)
    pages = {}
    for label, days, extra in [] if args.burst_only else PAGES:
        params = {
            "opened_from": (today - timedelta(days=days - 1)).isoformat(),
            "opened_to": today.isoformat(),
            **extra,
        }
        log(f"measuring {label}: {url} {params}")
        result = measure(
            url,
            membership=manager,
            n=args.requests,
            warmup=args.warmup,
            params=params,
            keep_sql=args.explain,
        )
        if args.explain:
            result["explain"] = [
                {"sql": q["sql"], "ms": q["ms"], "plan": explain(q["sql"], tenant=tenant)}
                for q in result.pop("sql")
                if q["sql"].lstrip().upper().startswith("SELECT") and "set_config(" not in q["sql"]
            ]
        pages[label] = result

    clusters = None
    if not args.burst_only:
        log("timing the quality-cluster statement")
        clusters = time_clusters(tenant)

    burst = None
    if args.burst and helpdesk_handler() is not None:
        log(f"(c) {args.burst} helpdesk webhooks")
        burst = webhook_burst(
            tenant, channel, args.burst, args.threads, args.web_workers, args.web_threads, args.pool
        )
    elif args.burst:
        burst = {
            "skipped": "crm.inbox has no helpdesk handler in this checkout (the helpdesk "
            "intake): the webhook burst needs it"
        }
        log(f"(c) skipped: {burst['skipped']}")

    from crm.tenancy import tenant_context
    from service_feedback.models import Ticket

    with tenant_context(tenant):
        total = Ticket.objects.count()
    report_p95 = pages.get("report_30_days", {}).get("p95_ms")
    emit(
        {
            "bench": "tickets",
            "tenant": tenant.slug,
            "tickets": total,
            "generated": made,
            "load_seconds": round(loaded - started, 1),
            "pages": pages,
            "quality_clusters": clusters,
            "webhook_burst": burst,
            "targets": {
                "report_p95_ms_max": 300,
                "clusters_ms_max": 5000,
                "accepted_per_s_min": 300,
                "worker_tickets_per_s_min": 100,
            },
            "met": {
                "report": None if args.burst_only else report_p95 is not None and report_p95 < 300,
                "clusters": None if clusters is None else clusters["max_ms"] < 5000,
                "burst": (
                    None
                    if burst is None or "skipped" in burst
                    else burst["accept"]["accepted_per_s"] >= 300
                    and (burst["worker"]["tickets_per_s"] or 0) >= 100
                ),
            },
        }
    )


if __name__ == "__main__":
    main()
