"""Score customers' health now (what the nightly job does, health.tasks), inline, and
print per tenant how many customers were scored.

    python manage.py recompute_health                  # every active tenant, today
    python manage.py recompute_health --tenant demo    # one
    python manage.py recompute_health --tenant demo --day 2026-11-30
    python manage.py recompute_health --json           # the figures as JSON

Idempotent: a second run for the same day writes the same rows.
"""

from __future__ import annotations

import json as json_lib
import time
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from crm.models import Tenant
from crm.tenancy import tenant_context


class Command(BaseCommand):
    help = "Score every customer's health for today (or --day) and settle the risk list."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="Only this tenant (its slug).")
        parser.add_argument("--day", help="The tenant's local day, YYYY-MM-DD (default: today).")
        parser.add_argument("--json", action="store_true", help="Print the results as JSON.")

    def handle(self, *args, tenant=None, day=None, json=False, **options):
        from health import compute

        if day:
            try:
                day = date.fromisoformat(day)
            except ValueError:
                raise CommandError(f"--day {day!r} is not a date (YYYY-MM-DD)") from None
        tenants = Tenant.objects.filter(is_active=True).order_by("slug")
        if tenant:
            tenants = tenants.filter(slug=tenant)
            if not tenants.exists():
                raise CommandError(f"no active tenant with the slug {tenant!r}")
        results = {}
        for row in tenants:
            started = time.perf_counter()
            with tenant_context(row):
                done = compute.recompute(row, day=day).as_dict()
            done["seconds"] = round(time.perf_counter() - started, 2)
            results[row.slug] = done
            if not json:
                self.stdout.write(
                    f"{row.slug}: {done['scored']} customers scored for {done['day']}"
                    f" ({done['with_score']} with a score; risk list +{done['risk_entered']}"
                    f" −{done['risk_left']}) in {done['seconds']} s"
                )
        if json:
            self.stdout.write(json_lib.dumps(results, indent=2, sort_keys=True))
