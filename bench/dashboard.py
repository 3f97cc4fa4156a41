"""Dashboard bench (F37–F42): the manager dashboard, every metric's drill-down list and the
report pages, in one tenant of 1,000,000 leads, 200,000 opportunities and 500,000 tickets.

    DATABASE_URL=postgres://crm_app:crm_app@127.0.0.1:5432/crm_bench_dash \\
    DATABASE_OWNER_URL=postgres://postgres@127.0.0.1:5432/crm_bench_dash \\
    .venv/bin/python bench/dashboard.py [--requests 30] [--no-measure]

Fills tenant `bench-dashboard` (idempotent: only what is missing is added) with the other
benches' generators, all by COPY as the tables' owner:

- bench/board.py's people, catalogue, 150,000 customers, 1,000,000 leads over 180 days
  and 2,000,000 follow-ups (200 reps, 8 channels, the provinces of its city list);
- bench/pipeline.py's 200,000 opportunities over 540 days on those customers and reps
  (won ones are given an origin lead of their customer, for the lead-to-contract cycle);
- bench/tickets.py's 500,000 helpdesk tickets on those customers.

Then, as the manager (each page `--requests` times, after `--warmup` untimed ones, with
bench/common.py's `measure`):

- `/dashboard/` with its default period, filtered by the busiest region, and by that
  region and its busiest rep (first render p95 target < 300 ms);
- every registered metric's drill-down list (`metric_rows`, the default period's first
  page; p95 target < 150 ms each);
- the report pages that exist in the checkout: the metric catalogue, the process report,
  the lead-to-contract cycle, the self-test, the water levels;
- EXPLAIN (ANALYZE, BUFFERS) of every dashboard statement that reads the lead table, and
  whether any plan scans the tenant's whole lead table sequentially (target: none).

Pages whose URL name does not resolve are skipped with a note. JSON on stdout, progress on
stderr; see bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

os.environ.setdefault("DATABASE_URL", "postgres://crm_app:crm_app@127.0.0.1:5432/crm_bench_dash")
os.environ.setdefault("DATABASE_OWNER_URL", "postgres://postgres@127.0.0.1:5432/crm_bench_dash")

from board_data import SIZE
from common import emit, explain, log, measure, prepare_database, setup_django

SLUG = "bench-dashboard"
OPPORTUNITIES = 200_000
TICKETS = 500_000
TARGETS = {"dashboard_p95_ms_max": 300, "drill_down_p95_ms_max": 150, "lead_seq_scans": 0}


def fill(args) -> dict:
    """The tenant's rows, by the three generators (each adds only what is missing)."""
    import pipeline
    import tickets
    from board_db import analyze, vacuum_analyze
    from board_leads import fill_leads, lead_window, link_revisits_and_firsts
    from board_plan import Plan
    from board_tenant import customer_maps, ensure_catalogue, ensure_people, fill_customers

    from crm.models import Tenant
    from crm.tenancy import tenant_context
    from opportunities.setup import ensure_defaults

    SIZE.slug = SLUG
    phases: dict = {}
    t0 = time.perf_counter()
    tenant, _ = Tenant.objects.get_or_create(
        slug=SLUG, defaults={"name": "Bench 管理驾驶舱", "timezone": "Asia/Shanghai"}
    )
    with tenant_context(tenant):
        reps, manager, _marketing = ensure_people(tenant)
        ensure_defaults(tenant)
    catalogue = ensure_catalogue(tenant)
    start, end = lead_window(tenant)
    made = fill_customers(tenant, reps, start)
    phases["people_and_customers_s"] = round(time.perf_counter() - t0, 2)

    t = time.perf_counter()
    made |= fill_leads(
        tenant, Plan(start, end, reps, catalogue, chosen_index=0), customer_maps(tenant)
    )
    analyze()
    made |= link_revisits_and_firsts(tenant)
    phases["leads_s"] = round(time.perf_counter() - t, 2)

    t = time.perf_counter()
    made["opportunities"] = pipeline.load_opportunities(tenant, reps, args.opportunities)
    made["origin_leads"] = link_origin_leads(tenant)
    phases["opportunities_s"] = round(time.perf_counter() - t, 2)

    t = time.perf_counter()
    _tenant, _manager, channel = tickets.ensure_tenant(SLUG)
    made["tickets"] = tickets.load_tickets(tenant, channel, args.tickets)
    phases["tickets_s"] = round(time.perf_counter() - t, 2)

    if args.no_vacuum:
        phases["vacuum_analyze_s"] = None
    else:
        phases["vacuum_analyze_s"] = round(vacuum_analyze() + vacuum_analyze_all(), 2)
    phases["total_s"] = round(time.perf_counter() - t0, 2)
    log(f"phases: {phases}")
    return {"tenant": tenant, "manager": manager, "reps": reps, "phases": phases, "made": made}


def vacuum_analyze_all() -> float:
    """The whole database's planner statistics and visibility map, as autovacuum would
    leave them: board_db's list covers the board's tables only, and a table never
    analyzed (the opportunities, their events, the tickets, the leads' tags and timeline,
    the audit trail) is planned blind (a PostgreSQL started with autovacuum off never
    catches up)."""
    from django.db import connections

    started = time.perf_counter()
    with connections["owner"].cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
    return time.perf_counter() - started


def link_origin_leads(tenant) -> int:
    """Won opportunities without an origin lead get their customer's earliest lead created
    before the opportunity, so the lead-to-contract cycle has rows (one statement)."""
    from board_db import owner_transaction

    with owner_transaction(tenant) as cursor:
        cursor.execute(
            """
            UPDATE opportunities_opportunity o
               SET origin_lead_id = l.id,
                   cycle_started_at = coalesce(l.verified_at, l.created_at),
                   lead_to_contract_days = greatest(
                       0, extract(day FROM o.won_at - coalesce(l.verified_at, l.created_at))
                   )::int
              FROM leads_lead l
             WHERE o.tenant_id = %s AND o.origin_lead_id IS NULL AND o.status = 'won'
               AND l.id = (
                    SELECT f.id FROM leads_lead f
                     WHERE f.tenant_id = o.tenant_id AND f.customer_id = o.customer_id
                       AND f.created_at <= o.won_at
                     ORDER BY f.created_at LIMIT 1
                   )
            """,
            [tenant.pk],
        )
        return cursor.rowcount


def resolves(name: str, *args) -> str | None:
    from django.urls import NoReverseMatch, reverse

    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def busiest(tenant):
    """The region with most leads in the default period, and its rep with most leads."""
    from django.db.models import Count

    from crm.tenancy import tenant_context
    from leads.models import Lead

    with tenant_context(tenant):
        region = (
            Lead.objects.exclude(province="")
            .values("province")
            .annotate(n=Count("id"))
            .order_by("-n")
            .first()["province"]
        )
        rep = (
            Lead.objects.filter(province=region, owner__isnull=False)
            .values("owner")
            .annotate(n=Count("id"))
            .order_by("-n")
            .first()["owner"]
        )
    return region, rep


def lead_plans(tenant, statements: list[dict]) -> dict:
    """EXPLAIN each captured SELECT that reads the lead table; count sequential scans of it."""
    plans, seq_scans = [], 0
    for statement in statements:
        sql = statement["sql"]
        if "leads_lead" not in sql or not sql.lstrip().upper().startswith("SELECT"):
            continue
        lines = explain(sql, tenant=tenant)
        scans = sum("Seq Scan on leads_lead" in line for line in lines)
        seq_scans += scans
        plans.append({"sql": sql[:400], "seq_scans_of_leads": scans, "plan": lines[:25]})
    return {"statements": len(plans), "lead_seq_scans": seq_scans, "plans": plans}


def measure_all(args, world) -> dict:
    from crm import metrics

    tenant, manager = world["tenant"], world["manager"]
    n, warmup = args.requests, args.warmup
    pages: dict = {}
    dashboard = resolves("dashboard")
    if args.skip_dashboard:
        pages["dashboard"] = {"skipped": "--skip-dashboard"}
    elif dashboard is None:
        pages["dashboard"] = {"skipped": "no URL named 'dashboard' in this checkout"}
    else:
        region, rep = busiest(tenant)
        log(f"dashboard (busiest region {region}, rep {rep})")
        first = measure(dashboard, membership=manager, n=n, warmup=warmup, keep_sql=True)
        pages["dashboard"] = {k: v for k, v in first.items() if k != "sql"}
        pages["dashboard_explain"] = lead_plans(tenant, first.get("sql", []))
        pages["dashboard_region"] = measure(
            dashboard, membership=manager, n=n, warmup=warmup, params={"region": region}
        )
        pages["dashboard_region_rep"] = measure(
            dashboard,
            membership=manager,
            n=n,
            warmup=warmup,
            params={"region": region, "rep": rep},
        )
    drills = {}
    if resolves("metric_rows", "leads.delivered") is None:
        drills["skipped"] = "no URL named 'metric_rows' in this checkout"
    else:
        chosen = set(filter(None, args.metrics.split(","))) if args.metrics else None
        for metric in metrics.metrics():
            if chosen is not None and metric.key not in chosen:
                continue
            log(f"drill-down {metric.key}")
            drills[metric.key] = measure(
                resolves("metric_rows", metric.key), membership=manager, n=n, warmup=2
            )
    pages["drill_downs"] = drills
    reports = ("metrics", "process_report", "opportunity_reports:cycle", "self_test", "levels")
    if args.reports is not None:
        reports = tuple(filter(None, args.reports.split(",")))
    for name in reports:
        path = resolves(name)
        if path is None:
            pages[name] = {"skipped": f"no URL named {name!r} in this checkout"}
            continue
        log(name)
        pages[name] = measure(path, membership=manager, n=max(5, n // 3), warmup=2)
    return pages


def verdict(pages: dict) -> dict:
    out = {}
    if "p95_ms" in pages.get("dashboard", {}):
        worst = max(
            pages[k]["p95_ms"]
            for k in ("dashboard", "dashboard_region", "dashboard_region_rep")
            if "p95_ms" in pages.get(k, {})
        )
        out["dashboard_worst_p95_ms"] = worst
        out["dashboard_ok"] = worst < TARGETS["dashboard_p95_ms_max"]
        out["lead_seq_scans"] = pages["dashboard_explain"]["lead_seq_scans"]
    timed = {k: v["p95_ms"] for k, v in pages.get("drill_downs", {}).items() if "p95_ms" in v}
    if timed:
        key = max(timed, key=timed.get)
        out["drill_down_worst"] = {"metric": key, "p95_ms": timed[key]}
        out["drill_downs_ok"] = timed[key] < TARGETS["drill_down_p95_ms_max"]
    return out


def counts(tenant) -> dict:
    from crm.tenancy import tenant_context
    from leads.models import Lead
    from opportunities.models import Opportunity
    from service_feedback.models import Ticket

    with tenant_context(tenant):
        return {
            "leads": Lead.objects.count(),
            "opportunities": Opportunity.objects.count(),
            "tickets": Ticket.objects.count(),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--opportunities", type=int, default=OPPORTUNITIES)
    parser.add_argument("--tickets", type=int, default=TICKETS)
    parser.add_argument("--no-measure", action="store_true", help="generate only")
    parser.add_argument(
        "--no-vacuum", action="store_true", help="no VACUUM (ANALYZE) after the load"
    )
    parser.add_argument("--skip-dashboard", action="store_true", help="no /dashboard/ pages")
    parser.add_argument(
        "--metrics", default="", help="only these drill-downs (metric keys, comma-separated)"
    )
    parser.add_argument(
        "--reports", default=None, help="only these report pages (URL names, comma-separated)"
    )
    args = parser.parse_args()

    setup_django()
    prepare_database()
    world = fill(args)
    rows = counts(world["tenant"])
    log(f"rows: {rows}")
    pages = {} if args.no_measure else measure_all(args, world)
    emit(
        {
            "bench": "dashboard",
            "tenant": SLUG,
            "rows": rows,
            "generation": {"phases": world["phases"]},
            "targets": TARGETS,
            "verdict": verdict(pages),
            "pages": pages,
        }
    )


if __name__ == "__main__":
    main()
