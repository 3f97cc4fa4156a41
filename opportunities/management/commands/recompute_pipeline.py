"""Recompute the pipeline's learnt figures by hand (what the nightly job
`opportunities.pipeline_nightly` does, opportunities.tasks), inline, and print per tenant
what was done as JSON.

    python manage.py recompute_pipeline                 # every active tenant
    python manage.py recompute_pipeline --tenant demo   # one

For each tenant with a pipeline: the stage calibration over its last 12 months (and the
open opportunities' probabilities brought to it), this month's frozen forecast if it has
none yet (whatever the day: the rows say when they were frozen), and every ended month
that was frozen closed with what was signed and the accuracy. Frozen and closed months
are never recomputed.
"""

from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from crm.models import Tenant
from crm.tenancy import tenant_context


class Command(BaseCommand):
    help = "Calibrate stage probabilities, freeze this month's forecast, close ended months."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="Only this tenant (its slug).")

    def handle(self, *args, tenant=None, **options):
        from opportunities.tasks import recompute

        tenants = Tenant.objects.filter(is_active=True).order_by("slug")
        if tenant:
            tenants = tenants.filter(slug=tenant)
            if not tenants.exists():
                raise CommandError(f"no active tenant with the slug {tenant!r}")
        results = {}
        for row in tenants:
            started = time.perf_counter()
            with tenant_context(row):
                done = recompute(row)
            done["seconds"] = round(time.perf_counter() - started, 2)
            results[row.slug] = done
        self.stdout.write(json.dumps(results, indent=2, sort_keys=True, ensure_ascii=False))
