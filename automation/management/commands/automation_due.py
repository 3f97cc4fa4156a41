"""Act on the automation rules' due time conditions now, for every active tenant (what the
beat job automation.due_sweep_all queues)."""

from django.core.management.base import BaseCommand

from automation.engine import sweep_due
from crm.models import Tenant
from crm.tenancy import tenant_context


class Command(BaseCommand):
    help = "Act on the automation rules' due time conditions now (every active tenant)."

    def handle(self, *args, **options):
        for tenant in Tenant.objects.filter(is_active=True).order_by("pk"):
            with tenant_context(tenant):
                done = sweep_due()
            self.stdout.write(f"{tenant.slug}: {done}")
