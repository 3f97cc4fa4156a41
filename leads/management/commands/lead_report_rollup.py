"""Bring the lead-quality report's daily roll-ups up to date by hand (what the beat jobs
`leads.report_rollup` and `leads.report_cover` do), inline, and print the days
recomputed per tenant as JSON.

    python manage.py lead_report_rollup                     # days with changes, every tenant
    python manage.py lead_report_rollup --cover             # + days with leads but no roll-up
    python manage.py lead_report_rollup --tenant demo --rebuild   # every day from scratch

The report is exact without it (days not rolled up are counted live); it is only slower.
"""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from crm.models import Tenant
from crm.tenancy import tenant_context


class Command(BaseCommand):
    help = "Recompute the lead-quality report's daily roll-ups; print the days per tenant."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="Only this tenant (its slug).")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument(
            "--cover", action="store_true", help="Also roll up days that have none yet."
        )
        mode.add_argument(
            "--rebuild", action="store_true", help="Drop the roll-ups and recompute every day."
        )

    def handle(self, *args, tenant=None, cover=False, rebuild=False, **options):
        from leads.reports import rollups

        tenants = Tenant.objects.filter(is_active=True).order_by("slug")
        if tenant:
            tenants = tenants.filter(slug=tenant)
            if not tenants.exists():
                raise CommandError(f"no active tenant with the slug {tenant!r}")
        results = {}
        for row in tenants:
            started = time.perf_counter()
            with tenant_context(row):
                days = rollups.cover(row) if cover else rollups.refresh(row, rebuild=rebuild)
            results[row.slug] = {"days": days, "seconds": round(time.perf_counter() - started, 2)}
        self.stdout.write(json.dumps(results, indent=2, sort_keys=True))
