"""Run the SLA sweep by hand (the `leads.sla_sweep_all` beat job), inline, and print what
fired as JSON: {tenant slug: {threshold: count}}.

    python manage.py sla_sweep                                  # every active tenant, now
    python manage.py sla_sweep --tenant demo
    python manage.py sla_sweep --tenant demo --now 2026-03-02T09:30   # as if at that time

A time without a UTC offset is read in each tenant's own time zone. Safe next to beat:
each threshold fires once per lead and dispatch round, whoever runs the sweep.
"""

from __future__ import annotations

import json
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from crm.models import Tenant
from crm.tenancy import tenant_context


class Command(BaseCommand):
    help = "Run the SLA clocks (alerts and returns to the pool) now, inline; print the counts."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="Only this tenant (its slug).")
        parser.add_argument(
            "--now",
            help="Sweep as if at this time (ISO 8601, e.g. 2026-03-02T09:30 or …+08:00).",
        )

    def handle(self, *args, tenant: str | None = None, now: str | None = None, **options):
        from leads.assignment.sla import sla_sweep

        at = None
        if now:
            at = parse_datetime(now)
            if at is None:
                raise CommandError(f"--now {now!r} is not an ISO 8601 date and time")
        tenants = Tenant.objects.filter(is_active=True).order_by("slug")
        if tenant:
            tenants = tenants.filter(slug=tenant)
            if not tenants.exists():
                raise CommandError(f"no active tenant with the slug {tenant!r}")
        results = {}
        for row in tenants:
            with tenant_context(row):
                results[row.slug] = sla_sweep(_aware(at, row) if at else None)
        self.stdout.write(json.dumps(results, indent=2, sort_keys=True))


def _aware(at: datetime, tenant: Tenant) -> datetime:
    if timezone.is_aware(at):
        return at
    return timezone.make_aware(at, tenant.tzinfo)
