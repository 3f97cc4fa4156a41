"""Record the water levels now (what the nightly job does, crm.levels), inline, and print
per tenant the days recorded and the anomalies found and told.

    python manage.py record_levels                          # every active tenant: the
                                                            # days of the last week missing
    python manage.py record_levels --tenant demo --day 2026-11-30   # that day, again

Idempotent: recording a day again replaces its rows; an anomaly is told once.
"""

from __future__ import annotations

from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from crm import levels
from crm.models import Tenant
from crm.tenancy import tenant_context


class Command(BaseCommand):
    help = "Record the water levels of the days not recorded yet (or of --day), per tenant."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="Only this tenant (its slug).")
        parser.add_argument("--day", help="This local day again, YYYY-MM-DD.")

    def handle(self, *args, tenant=None, day=None, **options):
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
        for row in tenants:
            with tenant_context(row):
                if day is None:
                    today = timezone.localdate(timezone=row.tzinfo)
                    days = levels.days_to_record(row, today)
                else:
                    days = [day]
                done = [levels.record_day(row, each) for each in days]
            if not done:
                self.stdout.write(f"{row.slug}: every day of the last week is recorded")
            for recorded in done:
                self.stdout.write(
                    f"{row.slug}: {recorded.day} recorded, {recorded.anomalies} anomalies,"
                    f" {recorded.told} told"
                )
