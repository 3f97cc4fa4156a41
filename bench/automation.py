"""Automation bench (F47): the windowed count over a large event log, the dry run over a
busy tenant's 30 days, and the engine's throughput with 50 active rules.

    .venv/bin/python bench/automation.py [--events 10000000] [--recent 1000000]
        [--customers 100000] [--rules 50] [--burst 1000] [--parts window,dry_run,engine]

Database `crm_bench_automation` (see bench/README.md). Fills tenant `bench-automation`
once (a tenant that has events already is used as it is), as the tables' owner by
INSERT … SELECT over generate_series: --events `ticket.opened` events (processed), of
which --recent in the last 30 days and the rest over the year before, keyed by one of
--customers customers, with one of 40 product models. Then, as the app role (RLS on):

- `window_count`: the rule "same customer and model ≥ 3 in 30 days"'s count for 300
  events picked at random ids (automation.conditions.window_count), spread in ms;
- `dry_run`: automation.dryrun.replay of that rule over the last 30 days, wall seconds;
- `engine`: --rules active rules on `ticket.opened` (a tenth of them with that windowed
  count, the others with a condition on the model, all notifying the manager), --burst
  new events emitted at once and drained by one process (crm.events.process_pending
  batch by batch, as crm.events_process runs): events/s and each event's time from
  emit to processed (p50, p95, max).

JSON on stdout, progress on stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402

from common import emit, log, prepare_database, setup_django, spread, vacuum_analyze  # noqa: E402

SLUG = "bench-automation"
MODELS = 40

_FILL = """
INSERT INTO crm_outboxevent
    (tenant_id, public_id, kind, object_type, object_id, key, data, at, depth, processed_at)
SELECT %(t)s, gen_random_uuid(), 'ticket.opened', 'service_feedback.ticket', g,
       'customer:' || (1 + (g * 7919) %% %(customers)s),
       jsonb_build_object('status', 'open', 'product_model', 'M' || (g * 31 %% %(models)s),
                          'product_line', '阀门', 'fault_code', '', 'flags', '',
                          'new_flags', '', 'nps', NULL, 'satisfaction', NULL,
                          'customer_id', 1 + (g * 7919) %% %(customers)s, 'province', '浙江省'),
       CASE WHEN g <= %(recent)s THEN now() - random() * interval '30 days'
            ELSE now() - interval '30 days' - random() * interval '365 days' END,
       0, now()
FROM generate_series(1::bigint, %(events)s) g
"""


def ensure_tenant():
    from django.contrib.auth import get_user_model

    from crm.models import Membership, Role, Tenant
    from crm.tenancy import tenant_context

    tenant, _ = Tenant.objects.get_or_create(
        slug=SLUG, defaults={"name": "Bench 自动化", "timezone": "Asia/Shanghai"}
    )
    user, _ = get_user_model().objects.get_or_create(username=f"{SLUG}-mgr")
    with tenant_context(tenant):
        Membership.objects.get_or_create(tenant=tenant, user=user, defaults={"role": Role.MANAGER})
    return tenant


def fill(tenant, args) -> dict:
    from django.db import connections

    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM crm_outboxevent WHERE tenant_id = %s", [tenant.pk])
        if cursor.fetchone()[0]:
            log("the tenant has events: used as it is")
            return {}
        cursor.execute("SELECT setseed(0.2026)")
        started = time.perf_counter()
        cursor.execute(
            _FILL,
            {
                "t": tenant.pk,
                "events": args.events,
                "recent": args.recent,
                "customers": args.customers,
                "models": MODELS,
            },
        )
        took = round(time.perf_counter() - started, 1)
        log(f"events: {cursor.rowcount} rows in {took} s")
    vacuum_analyze("crm_outboxevent")
    return {"rows": args.events, "s": took}


def count_rule(tenant, **fields):
    from automation.models import Rule

    return Rule(
        tenant=tenant,
        name="same model ×3",
        trigger="ticket.opened",
        count_at_least=3,
        count_days=30,
        count_same="product_model",
        action="notify",
        to_role="manager",
        is_active=True,
        **fields,
    )


def measure_window(tenant) -> dict:
    from automation import conditions
    from crm.models import OutboxEvent
    from crm.tenancy import tenant_context

    rng = random.Random(2026)
    with tenant_context(tenant):
        ids = OutboxEvent.objects.order_by("id").values_list("id", flat=True)
        low, top = ids.first(), ids.last()
        times = []
        for _ in range(300):
            at_most = rng.randint(low, top)
            event = OutboxEvent.objects.filter(id__lte=at_most).order_by("-id").first()
            started = time.perf_counter()
            conditions.window_count(event, days=30, same=["product_model"])
            times.append((time.perf_counter() - started) * 1000)
    return spread(times)


def measure_dry_run(tenant) -> dict:
    from automation import dryrun
    from crm.tenancy import tenant_context

    with tenant_context(tenant):
        started = time.perf_counter()
        result = dryrun.replay(count_rule(tenant))
        wall = time.perf_counter() - started
    return {
        "wall_s": round(wall, 1),
        "events": result.events,
        "fired": result.fired,
        "subjects": result.subject_count,
    }


def measure_engine(tenant, args) -> dict:
    from django.db import connections, transaction
    from django.utils import timezone

    from automation.models import Rule, Run
    from crm import events
    from crm.models import OutboxEvent
    from crm.tenancy import tenant_context
    from service_feedback.models import Ticket

    with tenant_context(tenant):
        Rule.objects.filter(name__startswith="bench ").delete()
        rules = []
        for i in range(args.rules):
            if i % 10 == 0:
                rule = count_rule(tenant)
            else:
                rule = Rule(
                    tenant=tenant,
                    trigger="ticket.opened",
                    condition=f'product_model == "M{i % MODELS}" and province == "浙江省"',
                    action="notify",
                    to_role="manager",
                    is_active=True,
                )
            rule.name = f"bench {i}"
            rules.append(rule)
        Rule.objects.bulk_create(rules)
    rng = random.Random(7)
    base = 10_000_000_000
    # The same workload on every run: an earlier run's burst (the same customers and
    # models, from the same seed) would make the windowed counts reach 3 for all of them.
    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "DELETE FROM crm_outboxevent WHERE tenant_id = %s AND object_id >= %s",
            [tenant.pk, base],
        )
        cursor.execute(
            "DELETE FROM automation_miss WHERE tenant_id = %s AND event_id IS NOT NULL"
            " AND NOT EXISTS (SELECT 1 FROM crm_outboxevent e"
            " WHERE e.tenant_id = automation_miss.tenant_id AND e.id = automation_miss.event_id)",
            [tenant.pk],
        )
    with tenant_context(tenant):
        rows = []
        for i in range(args.burst):
            customer = rng.randint(1, args.customers)
            ticket = Ticket(pk=base + i, tenant_id=tenant.pk)
            rows.append(
                events.event_row(
                    "ticket.opened",
                    ticket,
                    key=f"customer:{customer}",
                    status="open",
                    product_model=f"M{rng.randrange(MODELS)}",
                    province="浙江省",
                    customer_id=customer,
                )
            )
        before = OutboxEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        emitted = timezone.now()
        events.emit_many(rows)
    started = time.perf_counter()
    batches = []
    while True:
        with tenant_context(tenant), transaction.atomic():
            done = events.process_pending()
        batches.append((done, time.perf_counter() - started))
        if done == 0:
            break
    wall = time.perf_counter() - started
    with tenant_context(tenant):
        processed = list(
            OutboxEvent.objects.filter(id__gt=before).values_list("processed_at", flat=True)
        )
        fired = Run.objects.filter(
            rule__name__startswith="bench ", outcome="fired", event_id__gt=before
        ).count()
        Rule.objects.filter(name__startswith="bench ").update(is_active=False)
    latencies = [(p - emitted).total_seconds() * 1000 for p in processed if p is not None]
    return {
        "rules": args.rules,
        "events": args.burst,
        "wall_s": round(wall, 2),
        "events_per_s": round(args.burst / wall, 1),
        "fired": fired,
        "emit_to_processed_ms": spread(latencies, digits=0),
        "batches": len(batches) - 1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--recent", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument(
        "--parts", default="window,dry_run,engine", help="which measures, comma-separated"
    )
    args = parser.parse_args()
    os.environ.setdefault(
        "DATABASE_URL", "postgres://crm_app:crm_app@127.0.0.1:5432/crm_bench_automation"
    )
    os.environ.setdefault(
        "DATABASE_OWNER_URL", "postgres://postgres@127.0.0.1:5432/crm_bench_automation"
    )
    setup_django()
    prepare_database()
    tenant = ensure_tenant()
    results = {"fill": fill(tenant, args)}
    parts = set(args.parts.split(","))
    if "window" in parts:
        log("windowed count …")
        results["window_count_ms"] = measure_window(tenant)
    if "dry_run" in parts:
        log("dry run …")
        results["dry_run"] = measure_dry_run(tenant)
    if "engine" in parts:
        log("engine …")
        results["engine"] = measure_engine(tenant, args)
    emit({"bench": "automation", "args": vars(args), **results})


if __name__ == "__main__":
    main()
