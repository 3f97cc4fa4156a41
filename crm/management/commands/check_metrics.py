"""Recount every registered figure from its rows now (what the nightly check does,
crm.metric_checks), inline, and print per tenant what did not add up.

    python manage.py check_metrics                     # every active tenant, its yesterday
    python manage.py check_metrics --tenant demo       # one
    python manage.py check_metrics --tenant demo --day 2026-11-30
    python manage.py check_metrics --json              # every figure checked, as JSON

The results replace the check of the same day (the admin's "Metric checks"), and a
mismatch alerts the platform admins as the nightly run does. Exits with an error when a
figure does not add up.
"""

from __future__ import annotations

import json as json_lib
from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from crm.models import Tenant
from crm.tenancy import tenant_context


class Command(BaseCommand):
    help = "Recount every metric's figure from its drill-down rows, per tenant."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="Only this tenant (its slug).")
        parser.add_argument(
            "--day", help="The tenant's local day, YYYY-MM-DD (default: its yesterday)."
        )
        parser.add_argument("--json", action="store_true", help="Print every figure as JSON.")

    def handle(self, *args, tenant=None, day=None, json=False, **options):
        from crm.metric_checks import run_check

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
        results, failed = {}, 0
        for row in tenants:
            checked = day or timezone.localdate(timezone=row.tzinfo) - timedelta(days=1)
            with tenant_context(row):
                outcomes = run_check(row, checked)
            bad = [o for o in outcomes if not o.ok]
            failed += len(bad)
            results[row.slug] = {
                "day": checked.isoformat(),
                "checked": len(outcomes),
                "mismatches": len(bad),
                "figures": [o.as_dict() for o in outcomes],
            }
            if not json:
                self.stdout.write(
                    f"{row.slug}: {len(outcomes)} figures checked for {checked},"
                    f" {len(bad)} not adding up"
                )
                for o in bad:
                    found = o.error or f"figure {o.figure}, rows {o.recount}"
                    self.stdout.write(f"  {o.metric} ({o.start} – {o.end}): {found}")
        if json:
            self.stdout.write(json_lib.dumps(results, indent=2, sort_keys=True))
        if failed:
            raise CommandError(f"{failed} figure(s) do not add up to their rows")
