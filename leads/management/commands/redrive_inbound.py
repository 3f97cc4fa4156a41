"""Run the inbox re-drive sweep by hand (the `leads.redrive_inbound_events` beat job).

    python manage.py redrive_inbound                   # queue them again for the workers
    python manage.py redrive_inbound --process-inline  # no worker: process them here

Events left `received` for over 2 minutes (a lost broker message, a worker that was down)
are queued again; with --process-inline each is turned into a lead in this process,
inside its own tenant's context, one transaction per event. Processing is idempotent: an
event a worker took meanwhile is skipped, never made into a second lead.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from crm.models import Tenant
from crm.tenancy import tenant_context
from leads.intake import services
from leads.models import EventStatus


class Command(BaseCommand):
    help = "Queue again (or with --process-inline, process here) inbound events stuck as received."

    def add_arguments(self, parser):
        parser.add_argument(
            "--process-inline",
            action="store_true",
            help="Process the events in this process instead of queuing them (no worker needed).",
        )
        parser.add_argument(
            "--limit",
            type=int,
            default=1000,
            help="At most this many events per run, oldest first (default 1000).",
        )

    def handle(self, *args, process_inline: bool = False, limit: int = 1000, **options):
        stale = services.stale_inbound_events(limit=limit)
        if not process_inline:
            from leads.tasks import process_inbound_event

            for tenant_id, event_id in stale:
                process_inbound_event.delay(tenant_id, event_id)
            self.stdout.write(f"queued {len(stale)} inbound event(s) again")
            return

        tenants = {t.pk: t for t in Tenant.objects.filter(pk__in={t for t, _ in stale})}
        counts = {"processed": 0, "failed": 0, "skipped": 0}
        for tenant_id, event_id in stale:
            tenant = tenants.get(tenant_id)
            if tenant is None or not tenant.is_active:
                counts["skipped"] += 1
                continue
            with tenant_context(tenant):
                event = services.inbound_event_process(event_id=event_id)
            if event is None:  # taken by a worker meanwhile, or no longer `received`
                counts["skipped"] += 1
            elif event.status == EventStatus.PROCESSED:
                counts["processed"] += 1
            else:
                counts["failed"] += 1
        self.stdout.write(
            f"processed {len(stale)} inbound event(s) inline: {counts['processed']} became "
            f"leads, {counts['failed']} failed, {counts['skipped']} skipped"
        )
