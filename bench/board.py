"""Board bench (F15, F36): the daily board of a rep with 300 open items, and the
lead-quality report over 90 days, in a tenant of 1,000,000 leads, 200 reps and
2,000,000 follow-ups.

    .venv/bin/python bench/board.py [--requests 50] [--report-requests 30] [--explain]

Fills tenant `bench-board` (idempotent: only what is missing is added) by PostgreSQL
COPY as the tables' owner, in transactions of 50,000 leads each with their follow-ups:

- 200 reps with rep profiles, a manager and a marketing member; 8 channels; the tenant's
  invalid reasons, follow-up presets and status rules (created by the services' defaults);
- 150,000 customers with ~200,000 contacts;
- 1,000,000 leads over 180 days: 63 % verified valid (linked to their customer and
  contact), 33 % invalid with a reason, 4 % in the pool, 0.1 % still open (about 5 per
  rep); 1 in 20 a revisit (of a lead up to ~11 days older, same person and owner), 1 in
  33 suspect; assignment, first and last touch, touch count and verification times
  consistent with each other (the time to verify is log-normal, median ~1.2 h times the
  rep's pace, so a few % take more than 24 h);
- 2,000,000 follow-ups (customers.Interaction) by the leads' owners: chains of 0–12 per
  valid lead (10 % on the customer only), each closed by the next one; the last one is
  left open for 30 % of the chains whose due date is at most 14 days before the end
  (1.5 % of all, ~150 per rep, due dates spread around today), closed otherwise.

One rep (`bench-board-rep001`, the *chosen* rep) has no open item from the bulk data and
gets exactly 300 on top (realigned to today on every run): 60 leads to verify (12 past
their 24 h clock), 40 revisits to verify, 200 follow-ups due (60 today, 140 overdue), and
120 follow-ups due later (not on the board). Then the lead-quality roll-ups of every day
missing or changed (`leads.reports.rollups.cover`, what the beat jobs do), `VACUUM (ANALYZE)`,
and the figures:

- `board`: `/board/` as the chosen rep, as the manager with `?rep=<uuid>`, and as
  another rep (`rep002`, the bulk data's share of items: the query count must match);
- `report`: `/reports/lead-quality/` over the last 90 days as the manager, read from the
  roll-ups; `report_default_range` (30 days); `report_recent_days_live` with change marks
  on the last three days (counted live); `report_without_rollups` with every day marked
  (all live), after which the days are rolled up again.

Pages not there yet are skipped with a message. JSON on stdout; see bench/README.md
("Board and lead-quality report").

This script is the entry point; its parts are board_data.py (size, vocabulary,
deterministic helpers), board_db.py (COPY, reserved ids, the owner's transaction,
statistics), board_tenant.py (people, catalogue, customers and contacts), board_plan.py
(lead i and its follow-ups), board_leads.py (the leads' load and links), board_chosen.py
(the chosen rep's items) and board_measure.py (roll-ups and the pages measured).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

from board_chosen import chosen_items
from board_data import SIZE, resize
from board_db import analyze, vacuum_analyze
from board_leads import fill_leads, lead_window, link_revisits_and_firsts
from board_measure import measure_pages, roll_up
from board_plan import Plan
from board_tenant import customer_maps, ensure_catalogue, ensure_people, fill_customers
from common import emit, log, prepare_database, setup_django


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=50, help="timed board requests")
    parser.add_argument("--report-requests", type=int, default=30, help="timed report requests")
    parser.add_argument("--warmup", type=int, default=5, help="untimed requests per page")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="add EXPLAIN ANALYZE of each page's 5 slowest SELECTs",
    )
    parser.add_argument("--no-measure", action="store_true", help="generate only")
    parser.add_argument("--tenant", default=SIZE.slug, help=f"tenant slug (default {SIZE.slug})")
    parser.add_argument("--leads", type=int, default=SIZE.leads, help="leads (a smoke run: fewer)")
    parser.add_argument("--customers", type=int, default=SIZE.customers)
    parser.add_argument("--interactions", type=int, default=SIZE.interactions)
    args = parser.parse_args()
    resize(args)

    setup_django()
    prepare_database()

    from django.utils import timezone

    from crm.models import Tenant
    from crm.tenancy import tenant_context
    from customers.models import Customer, Interaction
    from leads.models import Lead

    phases = {}
    t0 = time.perf_counter()
    tenant, _ = Tenant.objects.get_or_create(
        slug=SIZE.slug, defaults={"name": "Bench 工作台", "timezone": "Asia/Shanghai"}
    )
    with tenant_context(tenant):  # memberships are row-level secured too
        reps, manager, _marketing = ensure_people(tenant)
    catalogue = ensure_catalogue(tenant)
    phases["people_and_catalogue_s"] = round(time.perf_counter() - t0, 2)

    start, end = lead_window(tenant)
    log(f"window {start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC")
    t = time.perf_counter()
    made = fill_customers(tenant, reps, start)
    phases["customers_s"] = round(time.perf_counter() - t, 2)

    t = time.perf_counter()
    cmap = customer_maps(tenant)
    plan = Plan(start, end, reps, catalogue, chosen_index=0)
    made |= fill_leads(tenant, plan, cmap)
    phases["leads_and_follow_ups_s"] = round(time.perf_counter() - t, 2)

    t = time.perf_counter()
    analyze()
    phases["analyze_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    made |= link_revisits_and_firsts(tenant)
    phases["links_s"] = round(time.perf_counter() - t, 2)

    t = time.perf_counter()
    chosen = reps[0]
    composition = chosen_items(tenant, chosen, plan, catalogue, timezone.now())
    phases["chosen_rep_s"] = round(time.perf_counter() - t, 2)
    # What the beat jobs do: roll up every day with leads that has no roll-up yet or has
    # changed (on the first run all 180 days; afterwards the chosen rep's realigned days).
    t = time.perf_counter()
    phases["rollup_days"] = roll_up(tenant)
    phases["rollup_s"] = round(time.perf_counter() - t, 2)
    phases["vacuum_analyze_s"] = round(vacuum_analyze(), 2)
    phases["total_s"] = round(time.perf_counter() - t0, 2)
    log(f"phases: {phases}")
    log(f"chosen rep {chosen.user.username}: {composition}")

    with tenant_context(tenant):
        rows = {
            "leads": Lead.objects.count(),
            "customers": Customer.objects.count(),
            "interactions": Interaction.objects.count(),
            "open_interactions": Interaction.objects.filter(next_done_at__isnull=True).count(),
            "reps": len(reps),
        }
        by_status = dict(Counter(Lead.objects.values_list("status", flat=True).iterator()))
    rows["by_status"] = by_status
    log(f"rows: {rows}")

    pages = {} if args.no_measure else measure_pages(args, tenant, chosen, reps[1], manager)
    emit(
        {
            "bench": "board",
            "tenant": SIZE.slug,
            "generation": {"phases": phases, "made": made},
            "rows": rows,
            "chosen_rep": {
                "username": chosen.user.username,
                "membership": str(chosen.public_id),
                **composition,
            },
            "targets": {
                "board_p95_ms_max": 150,
                "report_p95_ms_max": 500,
                "queries_constant": True,
            },
            "pages": pages,
        }
    )


if __name__ == "__main__":
    main()
